"""The in-place KV cache (creditgym/agents/hf/kv_cache.py) gives what DynamicCache gives."""

from __future__ import annotations

import inspect

import pytest
import torch
from transformers import DynamicCache

from creditgym.agents.hf.kv_cache import (
    GrowingLayer,
    batch_cache,
    growing_cache,
    output_cache,
    row_cache,
)
from creditgym.train.corpus import load_tiny


@pytest.fixture(scope="module")
def model():
    return load_tiny(["creditgym/HouseholdEasy-v0"], device="cpu").model.eval()


def forward(model, cache, **inputs):
    """`model(...)` with `cache` under the keyword this transformers version reads."""
    keyword = (
        "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    )
    return model(**inputs, **{keyword: cache}, use_cache=True)


def decode(model, cache, ids: torch.Tensor, steps: int, drop_row_at: int | None = None):
    """Prefill `ids`, then greedy steps; optionally one row leaves the batch, and the cache is
    cropped by one token and the step replayed (as the IGPO scoring path does)."""
    batch, length = ids.shape
    mask = torch.ones(batch, length, dtype=torch.long)
    out = forward(model, cache, input_ids=ids, attention_mask=mask)
    cache, logits, seen = output_cache(out), out.logits[:, -1], [out.logits[:, -1]]
    position = torch.full((batch, 1), length)
    for step in range(steps):
        token = logits.argmax(-1, keepdim=True)
        if step == drop_row_at:
            keep = torch.arange(1, token.shape[0])
            cache.batch_select_indices(keep)
            token, mask, position = token[keep], mask[keep], position[keep]
        if step == 1:  # write a token, crop it away, write again: the crop must hold
            probe = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], -1)
            forward(model, cache, input_ids=token, attention_mask=probe, position_ids=position)
            cache.crop(-1)
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], -1)
        out = forward(model, cache, input_ids=token, attention_mask=mask, position_ids=position)
        cache, logits = output_cache(out), out.logits[:, -1]
        seen.append(logits)
        position = position + 1
    return seen, cache


@torch.no_grad()
def test_growing_cache_decodes_exactly_like_dynamic_cache(model):
    ids = torch.randint(5, 200, (4, 90), generator=torch.Generator().manual_seed(0))
    # 90 prompt tokens fill a buffer of 90 * 1.25 + 64 = 176: 100 steps force reallocations
    expected, _ = decode(model, DynamicCache(), ids, steps=100, drop_row_at=40)
    got, cache = decode(model, growing_cache(), ids, steps=100, drop_row_at=40)
    assert all(isinstance(layer, GrowingLayer) for layer in cache.layers)
    for want, have in zip(expected, got):
        torch.testing.assert_close(have, want, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_rows_moved_out_and_back_into_a_batch_cache_keep_their_keys_and_values(model):
    ids = torch.randint(5, 200, (3, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, :5] = 0  # row 1 is left-padded: 7 real tokens
    out = forward(model, growing_cache(), input_ids=ids, attention_mask=mask)
    rows = [row_cache(output_cache(out), row, mask[row]) for row in range(3)]
    assert rows[1][0][0].shape[2] == 7
    rebuilt = batch_cache([rows[1], None, rows[0]], [7, 0, 12])
    layer = rebuilt.layers[0]
    assert layer.keys.shape[:3] == (3, layer.keys.shape[1], 12)
    torch.testing.assert_close(layer.keys[0, :, 5:], rows[1][0][0][0])
    torch.testing.assert_close(layer.keys[2], rows[0][0][0][0])
    assert not layer.keys[1].any() and not layer.keys[0, :, :5].any()
    # the rebuilt cache grows in place: its buffer has room beyond the 12 positions
    assert layer._key_buffer.shape[2] > 12

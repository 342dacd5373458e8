"""KV caches for batched sampling: one that grows in place, and moving rows in and out of it.

transformers' `DynamicCache` appends each decoding step's keys and values with `torch.cat`, so
every generated token copies the whole cache: with a batch of long conversations (hundreds of
tokens each) that copying, not the model, dominates sampling on a small model. A
`GrowingLayer` keeps its keys and values in a buffer with spare room and writes each step in
place; the tensors the model reads are views of the buffer's filled part, so attention sees
exactly what a `DynamicCache` would give it (same values, same shapes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicLayer

__all__ = ["GrowingLayer", "batch_cache", "growing_cache", "output_cache", "row_cache"]

#: Room a buffer leaves for later tokens when it (re)allocates: a quarter more plus a few
#: decoding steps, so a growing cache copies O(log n) times instead of once per token.
_GROWTH, _HEADROOM = 1.25, 64

RowCache = list[tuple[torch.Tensor, torch.Tensor]]


class GrowingLayer(DynamicLayer):
    """A `DynamicLayer` whose `update` writes into a preallocated buffer instead of copying.

    `keys` / `values` stay views of the buffer's first `n` positions, so `crop` (a shorter
    view) keeps working, and the next `update` writes over the cropped positions.
    """

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        self._key_buffer: torch.Tensor | None = None
        self._value_buffer: torch.Tensor | None = None

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        filled = self.get_seq_length()
        end = filled + key_states.shape[-2]
        if not self._fits(key_states, filled, end):
            self._reallocate(key_states, value_states, filled, end)
        self._key_buffer[..., filled:end, :] = key_states
        self._value_buffer[..., filled:end, :] = value_states
        self.keys = self._key_buffer[..., :end, :]
        self.values = self._value_buffer[..., :end, :]
        return self.keys, self.values

    def _fits(self, key_states: torch.Tensor, filled: int, end: int) -> bool:
        buffer = self._key_buffer
        return (
            buffer is not None
            and buffer.shape[0] == key_states.shape[0]
            and end <= buffer.shape[-2]
            and (filled == 0 or self.keys.data_ptr() == buffer.data_ptr())
        )

    def _reallocate(
        self, key_states: torch.Tensor, value_states: torch.Tensor, filled: int, end: int
    ) -> None:
        capacity = int(end * _GROWTH) + _HEADROOM
        shape = (*key_states.shape[:2], capacity, key_states.shape[-1])
        keys, values = key_states.new_empty(shape), value_states.new_empty(shape)
        if filled:
            keys[..., :filled, :] = self.keys
            values[..., :filled, :] = self.values
        self._key_buffer, self._value_buffer = keys, values

    def adopt(self, keys: torch.Tensor, values: torch.Tensor, filled: int) -> None:
        """Take `keys` / `values` (batch, heads, capacity, head dim) as the buffers, their first
        `filled` positions as the cache so far."""
        self.lazy_initialization(keys, values)
        self._key_buffer, self._value_buffer = keys, values
        self.keys, self.values = keys[..., :filled, :], values[..., :filled, :]

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep the `indices` rows (buffer and all: the next update still writes in place)."""
        filled = self.get_seq_length()
        if filled > 0:
            self._key_buffer = self._key_buffer[indices]
            self._value_buffer = self._value_buffer[indices]
            self.keys = self._key_buffer[..., :filled, :]
            self.values = self._value_buffer[..., :filled, :]


def growing_cache() -> Cache:
    """An empty cache of `GrowingLayer`s (layers are added as the model first writes them)."""
    return Cache(layer_class_to_replicate=GrowingLayer)


def batch_cache(rows: Sequence[RowCache | None], lengths: Sequence[int]) -> Cache:
    """One growing batch cache from per-row caches (`row_cache`'s output, None for an empty
    row), each left-padded to the longest of `lengths` (pad positions are zeros; mask them)."""
    longest = max(lengths)
    capacity = int(longest * _GROWTH) + _HEADROOM
    template = next(row for row, length in zip(rows, lengths) if length)
    cache = growing_cache()
    for index, (keys0, values0) in enumerate(template):
        shape = (len(rows), keys0.shape[1], capacity, keys0.shape[3])
        keys, values = keys0.new_empty(shape), values0.new_empty(shape)
        for row, (layers, length) in enumerate(zip(rows, lengths)):
            pad = longest - length
            keys[row, :, :pad] = 0
            values[row, :, :pad] = 0
            if length:
                keys[row, :, pad:longest] = layers[index][0][0]
                values[row, :, pad:longest] = layers[index][1][0]
        layer = GrowingLayer()
        layer.adopt(keys, values, longest)
        cache.layers.append(layer)
    return cache


def row_cache(past: Cache, row: int, mask: torch.Tensor) -> RowCache:
    """One row of a batch KV cache, its masked-out (padding) positions left out: per layer
    (keys, values) of shape (1, heads, real tokens, head dim)."""
    keep = mask.nonzero().squeeze(-1)
    return [
        (
            layer.keys[row : row + 1].index_select(2, keep),
            layer.values[row : row + 1].index_select(2, keep),
        )
        for layer in past.layers
    ]


def output_cache(outputs: Any) -> Any:
    """The KV cache of a forward pass, under its transformers 5.2x name or the older one."""
    cache = outputs.get("cache")
    return cache if cache is not None else outputs.past_key_values

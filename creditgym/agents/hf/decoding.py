"""The decoding loop of an `HFPolicy`: batched sampling with a KV cache.

Each function takes the policy first; `sample_responses` is the policy's ``_sample_responses``
(what `HFPolicy.generate` and `HFPolicy.generate_chat` run). The prompts are prefilled
left-padded (a conversation's rows prefill only what their cached context lacks:
`chat_inputs`), teacher-forced targets are scored from the prompts' cache
(`score_from_cache`), then one token per step is drawn (`draw`) from the policy's sampling
distribution (``HFPolicy._distribution``, masked by ``HFPolicy._allowed_mask`` in constrained
mode), recording each token's log-prob.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch

from creditgym.agents.base import Generation
from creditgym.agents.hf.chat import ChatState
from creditgym.agents.hf.kv_cache import batch_cache, growing_cache, output_cache, row_cache
from creditgym.agents.hf.scoring import left_pad

__all__ = ["DecodingModel", "chat_inputs", "draw", "sample_responses", "score_from_cache"]


class DecodingModel(Protocol):
    """What decoding reads of an `HFPolicy` (its own module imports this one, not the reverse)."""

    device: torch.device
    pad_token_id: int
    stop_token_ids: set[int]
    max_new_tokens: int
    temperature: float
    top_p: float
    generator: torch.Generator | None
    prefilled_tokens: int

    def _forward(self, **inputs: Any) -> Any: ...

    def _allowed_mask(
        self, tries: Sequence[Any], prefixes: Sequence[Sequence[int]], vocab: int
    ) -> torch.Tensor | None: ...

    def _distribution(self, logits: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor: ...


def draw(policy: DecodingModel, logprobs: torch.Tensor) -> torch.Tensor:
    """Draw one token per row from log-probs (rows, vocab); greedy at temperature 0."""
    if policy.temperature == 0:
        return logprobs.argmax(dim=-1)
    probs = logprobs.exp()
    if policy.top_p < 1:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # Drop a token when the mass of the likelier tokens already reaches top_p.
        outside = sorted_probs.cumsum(dim=-1) - sorted_probs >= policy.top_p
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=policy.generator).squeeze(-1)


def sample_responses(
    policy: DecodingModel,
    prompt_ids: list[list[int]],
    tries: list[Any],
    out: list[Generation],
    forced: list[tuple[list[int], int] | None],
    chats: list[ChatState] | None = None,
) -> None:
    """The decoding loop: prefill the left-padded prompts, then one token per step with the
    KV cache. With `chats`, each row prefills only what its conversation's cache lacks, and
    its cache is taken back into its `ChatState` when its response ends."""
    past_in = None
    if chats is None:
        input_ids, attention_mask, position_ids = left_pad(
            prompt_ids, policy.pad_token_id, policy.device
        )
    else:
        input_ids, attention_mask, position_ids, past_in = chat_inputs(policy, prompt_ids, chats)
    policy.prefilled_tokens += int(attention_mask[:, -input_ids.shape[1] :].sum())
    budgets = [policy.max_new_tokens if trie is None else trie.max_length for trie in tries]
    outputs = policy._forward(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        use_cache=True,
        logits_to_keep=1,
        past_key_values=growing_cache() if past_in is None else past_in,
    )
    past, logits = output_cache(outputs), outputs.logits[:, -1]
    next_position = position_ids[:, -1:] + 1
    if any(f is not None for f in forced):
        past = score_from_cache(policy, past, attention_mask, next_position, logits, forced, out)
    # Per batch slot, the row of `out` it generates (None once finished). A finished row
    # stays in the batch, fed padding and masked out, until half the slots are finished:
    # then they all leave the batch and its KV cache (a copy of the whole cache each time).
    slots: list[int | None] = list(range(len(prompt_ids)))
    for _ in range(max(budgets)):
        live = [slot for slot, row in enumerate(slots) if row is not None]
        rows = [slots[slot] for slot in live]
        allowed = policy._allowed_mask(
            [tries[i] for i in rows], [out[i].token_ids for i in rows], logits.shape[-1]
        )
        live_logits = logits if len(live) == len(slots) else logits[live]
        logprobs = policy._distribution(live_logits, allowed)  # (live, vocab)
        tokens = draw(policy, logprobs)
        token_logprobs = logprobs.gather(-1, tokens[:, None]).squeeze(-1)
        for slot, row, token, logprob in zip(live, rows, tokens.tolist(), token_logprobs.tolist()):
            out[row].token_ids.append(token)
            out[row].logprobs.append(logprob)
            if token in policy.stop_token_ids or len(out[row].token_ids) >= budgets[row]:
                slots[slot] = None
                if chats is not None:  # the cache holds all but the last sampled token
                    chats[row].cache = row_cache(past, slot, attention_mask[slot])
                    chats[row].cached = int(attention_mask[slot].sum())
        going = [slot for slot in live if slots[slot] is not None]
        if not going:
            break
        step = torch.full((len(slots),), policy.pad_token_id, device=policy.device)
        step[live] = tokens
        column = attention_mask.new_zeros((len(slots), 1))
        column[going] = 1
        if len(going) <= len(slots) // 2:
            index = torch.tensor(going, device=policy.device)
            past.batch_select_indices(index)
            step, column = step[index], column[index]
            attention_mask, next_position = attention_mask[index], next_position[index]
            slots = [slots[slot] for slot in going]
        attention_mask = torch.cat([attention_mask, column], dim=-1)
        outputs = policy._forward(
            input_ids=step[:, None],
            attention_mask=attention_mask,
            position_ids=next_position,
            past_key_values=past,
            use_cache=True,
        )
        past, logits = output_cache(outputs), outputs.logits[:, -1]
        next_position = next_position + 1


def chat_inputs(
    policy: DecodingModel, prompt_ids: list[list[int]], chats: list[ChatState]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any]:
    """Prefill inputs of conversations: each row's cached tokens come from its own cache,
    left-padded into one batch cache; its new tokens follow, left-padded too (padding is
    masked out, positions count each row's real tokens)."""
    cached = [state.cached if state.cache is not None else 0 for state in chats]
    new = [ids[c:] for ids, c in zip(prompt_ids, cached)]
    input_ids, new_mask, _ = left_pad(new, policy.pad_token_id, policy.device)
    width = input_ids.shape[1]
    position_ids = torch.zeros_like(input_ids)
    for row, (c, ids) in enumerate(zip(cached, new)):
        position_ids[row, width - len(ids) :] = torch.arange(c, c + len(ids))
    longest = max(cached)
    if longest == 0:
        return input_ids, new_mask, position_ids, None
    past_mask = new_mask.new_zeros((len(chats), longest))
    for row, c in enumerate(cached):
        past_mask[row, longest - c :] = 1 if c else 0
    cache = batch_cache([state.cache for state in chats], cached)
    return input_ids, torch.cat([past_mask, new_mask], dim=-1), position_ids, cache


def score_from_cache(
    policy: DecodingModel,
    past: Any,
    attention_mask: torch.Tensor,
    next_position: torch.Tensor,
    last_logits: torch.Tensor,
    forced: list[tuple[list[int], int] | None],
    out: list[Generation],
) -> Any:
    """Teacher-force each row's tokens after its prefilled prompt; returns the cache cropped
    back.

    Rows are right-padded here (their prompts all end at the same position); padding is
    masked out and never read. `last_logits` (rows, vocab) predicts each row's first token.
    """
    rows = [[] if f is None else f[0] for f in forced]
    longest = max(len(ids) for ids in rows)
    ids = torch.full(
        (len(rows), longest), policy.pad_token_id, dtype=torch.long, device=policy.device
    )
    mask = torch.zeros((len(rows), longest), dtype=attention_mask.dtype, device=policy.device)
    for row, row_ids in enumerate(rows):
        ids[row, : len(row_ids)] = torch.tensor(row_ids, dtype=torch.long)
        mask[row, : len(row_ids)] = 1
    outputs = policy._forward(
        input_ids=ids,
        attention_mask=torch.cat([attention_mask, mask], dim=-1),
        position_ids=next_position + torch.arange(longest, device=policy.device),
        past_key_values=past,
        use_cache=True,
    )
    # logits[:, j] predicts ids[:, j]: the prompt's last logits, then the forced tokens' own
    logits = torch.cat([last_logits[:, None], outputs.logits[:, :-1]], dim=1)
    logprobs = policy._distribution(logits, None).gather(-1, ids[..., None]).squeeze(-1)
    for row, f in enumerate(forced):
        if f is not None:
            end = len(f[0])
            out[row].teacher_forced_logprobs = logprobs[row, end - f[1] : end].float().tolist()
    cache = output_cache(outputs)
    cache.crop(-longest)  # back to the prompts alone for sampling
    return cache

"""Teacher-forced scoring with an `HFPolicy`: the log-probs the trainer differentiates, the
log-probs judges and IGPO read, and the hidden states a value head reads.

Each function takes the policy first and is also its method (`HFPolicy.score` is `score`).
They score under the distribution the policy samples from: ``log_softmax(mask(logits /
temperature))``, the mask keeping, in constrained mode, the tokens that continue some
admissible action. Rows are left-padded into one batch, so every sequence ends at the last
position; logits are computed only where a scored token is predicted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch

__all__ = [
    "ScoredModel",
    "forced_tokens",
    "hidden_states",
    "left_pad",
    "logprobs",
    "score",
    "score_spans",
]


class ScoredModel(Protocol):
    """What scoring reads of an `HFPolicy` (its own module imports this one, not the reverse)."""

    model: Any
    device: torch.device
    pad_token_id: int

    def encode_prompt(self, prompt: str) -> list[int]: ...

    def encode_response(self, text: str, *, add_eos: bool = True) -> list[int]: ...

    def score(self, *args: Any, **kwargs: Any) -> Any: ...

    def _tries(
        self, admissible_actions: Sequence[Sequence[str] | None] | None, batch: int
    ) -> list[Any]: ...

    def _forward(self, **inputs: Any) -> Any: ...

    def _allowed_mask(
        self, tries: Sequence[Any], prefixes: Sequence[Sequence[int]], vocab: int
    ) -> torch.Tensor | None: ...

    def _distribution(self, logits: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor: ...


def left_pad(
    rows: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, ...]:
    """Left-pad token rows; returns input_ids, attention_mask, position_ids (batch, length)."""
    length = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            input_ids[i, length - len(row) :] = torch.tensor(row, dtype=torch.long)
            attention_mask[i, length - len(row) :] = 1
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    return input_ids.to(device), attention_mask.to(device), position_ids.to(device)


def score(
    policy: ScoredModel,
    prompt_ids: list[list[int]],
    response_ids: list[list[int]],
    admissible_actions: list[list[str]] | None = None,
    *,
    with_entropy: bool = False,
) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
    """Per-token log-probs (and entropies) of responses under the sampling distribution.

    Differentiable when grad mode is on (the trainer's PPO loss); the same distribution as
    `generate` (temperature; the admissible-action mask when constrained and
    `admissible_actions` is given). One padded forward pass for the whole batch:
    micro-batch in the caller.

    Returns:
        per row a tensor of shape (response tokens,) of log-probs, and the same for
        entropies when `with_entropy` (else None).
    """
    if len(prompt_ids) != len(response_ids):
        raise ValueError(
            f"got {len(prompt_ids)} prompts but {len(response_ids)} responses; give one each"
        )
    if not prompt_ids:
        return [], ([] if with_entropy else None)
    if any(len(ids) == 0 for ids in prompt_ids):
        raise ValueError("an empty prompt cannot be scored: the first response token needs context")
    tries = policy._tries(admissible_actions, len(prompt_ids))
    rows = [list(p) + list(r) for p, r in zip(prompt_ids, response_ids)]
    input_ids, attention_mask, position_ids = left_pad(rows, policy.pad_token_id, policy.device)
    longest = max(len(r) for r in response_ids)
    outputs = policy._forward(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        use_cache=False,
        logits_to_keep=longest + 1,
    )
    # Rows are left-padded, so every response ends at the last position; logits[:, j]
    # predicts the token at position (length - longest + j).
    logits = outputs.logits[:, -(longest + 1) : -1]  # (batch, longest, vocab)
    logprobs, entropies = [], []
    for row, (response, trie) in enumerate(zip(response_ids, tries)):
        row_logits = logits[row, longest - len(response) :]
        prefixes = [response[:t] for t in range(len(response))]
        allowed = (
            None
            if trie is None
            else policy._allowed_mask([trie] * len(response), prefixes, row_logits.shape[-1])
        )
        distribution = policy._distribution(row_logits, allowed)  # (response tokens, vocab)
        targets = torch.tensor(response, dtype=torch.long, device=policy.device)
        logprobs.append(distribution.gather(-1, targets[:, None]).squeeze(-1))
        if with_entropy:
            entropies.append(-(distribution.exp() * distribution).sum(-1))
    return logprobs, (entropies if with_entropy else None)


def forced_tokens(
    policy: ScoredModel,
    response_ids: Sequence[Sequence[int]],
    admissible_actions: Sequence[Sequence[str] | None] | None = None,
) -> list[list[bool]]:
    """Per response, which of its tokens the decoding constraint forced: where it allowed
    exactly one token, so the token's log-prob is 0 whatever the weights (no gradient).

    Unconstrained responses (no admissible actions, or a policy that is not constrained) have
    none, but for think-act responses' forced ``<think>``/``</think>`` tokens.
    """
    tries = policy._tries(admissible_actions, len(response_ids))
    forced: list[list[bool]] = []
    for response, trie in zip(response_ids, tries):
        response = [int(token) for token in response]
        if trie is None:
            forced.append([False] * len(response))
            continue
        allowed = (trie.allowed_next_tokens(response[:t]) for t in range(len(response)))
        forced.append([tokens is not None and len(tokens) == 1 for tokens in allowed])
    return forced


def score_spans(
    policy: ScoredModel,
    sequences: list[list[int]],
    spans: list[list[tuple[int, int]]],
    admissible_actions: list[list[list[str] | None]] | None = None,
    *,
    with_entropy: bool = False,
) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]] | None]:
    """`score` for several responses inside one sequence: a whole conversation in one pass.

    `spans[row]` lists the (start, end) token ranges of the row's responses (start >= 1);
    `admissible_actions[row]` gives each span's actions when constrained. Returns per row
    per span a tensor of log-probs (and entropies with `with_entropy`), each equal to
    `score` of that span's response after the tokens before it.
    """
    if len(sequences) != len(spans):
        raise ValueError(f"got {len(sequences)} sequences but {len(spans)} span lists")
    if not sequences:
        return [], ([] if with_entropy else None)
    if any(start < 1 for row in spans for start, _ in row):
        raise ValueError("a span cannot start at token 0: its first token needs context")
    input_ids, attention_mask, position_ids = left_pad(
        sequences, policy.pad_token_id, policy.device
    )
    width = input_ids.shape[1]
    # logits only where a response token is predicted: most of a conversation is context
    needed = sorted(
        {
            width - len(ids) + t
            for ids, row_spans in zip(sequences, spans)
            for start, end in row_spans
            for t in range(start - 1, end - 1)
        }
    )
    logits = policy._forward(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        use_cache=False,
        logits_to_keep=torch.tensor(needed, device=policy.device),
    ).logits  # (rows, positions kept, vocab), or every position if the model keeps all
    column = (
        {p: i for i, p in enumerate(needed)}
        if logits.shape[1] == len(needed)
        else {p: p for p in needed}
    )
    logprobs: list[list[torch.Tensor]] = []
    entropies: list[list[torch.Tensor]] = []
    for row, (ids, row_spans) in enumerate(zip(sequences, spans)):
        pad = width - len(ids)
        actions = None if admissible_actions is None else admissible_actions[row]
        tries = policy._tries(actions, len(row_spans))
        logprobs.append([])
        entropies.append([])
        for (start, end), trie in zip(row_spans, tries):
            response = list(ids[start:end])
            columns = [column[pad + t] for t in range(start - 1, end - 1)]
            row_logits = logits[row, columns]
            allowed = (
                None
                if trie is None
                else policy._allowed_mask(
                    [trie] * len(response),
                    [response[:t] for t in range(len(response))],
                    row_logits.shape[-1],
                )
            )
            distribution = policy._distribution(row_logits, allowed)
            targets = torch.tensor(response, dtype=torch.long, device=policy.device)
            logprobs[-1].append(distribution.gather(-1, targets[:, None]).squeeze(-1))
            if with_entropy:
                entropies[-1].append(-(distribution.exp() * distribution).sum(-1))
    return logprobs, (entropies if with_entropy else None)


@torch.no_grad()
def logprobs(
    policy: ScoredModel,
    prompts: Sequence[str],
    continuations: Sequence[str],
    admissible_actions: Sequence[Sequence[str]] | None = None,
    *,
    add_eos: bool = True,
    batch_size: int = 16,
) -> list[np.ndarray]:
    """Teacher-forced log-probs of each continuation's tokens (float32, no grad).

    A continuation is tokenised alone (`encode_response`) and, with `add_eos`, closed by
    EOS as a finished generation is. A free-form sample may decode to text that
    re-tokenises differently from the ids sampled; to rescore a rollout exactly, use
    `score` with the recorded ids.
    """
    if len(prompts) != len(continuations):
        raise ValueError(
            f"got {len(prompts)} prompts but {len(continuations)} continuations; give one each"
        )
    prompt_ids = [policy.encode_prompt(p) for p in prompts]
    response_ids = [policy.encode_response(c, add_eos=add_eos) for c in continuations]
    # Score in batches of similar length: left padding to the batch's longest row is waste.
    order = sorted(range(len(prompts)), key=lambda i: len(prompt_ids[i]) + len(response_ids[i]))
    results: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * len(prompts)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        chunk_actions = (
            None if admissible_actions is None else [admissible_actions[i] for i in chunk]
        )
        scores, _ = policy.score(
            [prompt_ids[i] for i in chunk], [response_ids[i] for i in chunk], chunk_actions
        )
        for i, row in zip(chunk, scores):
            results[i] = row.float().cpu().numpy()
    return results


@torch.no_grad()
def hidden_states(
    policy: ScoredModel,
    prompt_ids: list[list[int]],
    *,
    positions: list[list[int]] | None = None,
    batch_tokens: int = 8192,
) -> torch.Tensor:
    """The final layer's hidden state at each prompt's last token (no grad, float32, CPU).

    What a value head reads (the ``ppo`` estimator's ``critic: head``): one row per prompt,
    shape (len(prompt_ids), hidden size). With `positions`, the rows are the states at those
    token positions of each sequence instead, sequences in order: the turns of one
    conversation, whose prompts are prefixes of its last, read in one pass. Sequences are
    left-padded in batches of similar length, at most `batch_tokens` padded tokens each.
    """
    if positions is None:
        positions = [[len(ids) - 1] for ids in prompt_ids]
    if len(positions) != len(prompt_ids):
        raise ValueError(f"got {len(prompt_ids)} sequences but {len(positions)} position lists")
    for ids, wanted in zip(prompt_ids, positions):
        if any(not 0 <= p < len(ids) for p in wanted):
            raise ValueError(
                f"positions {wanted} are not all within a sequence of {len(ids)} tokens "
                "(an empty prompt has no last token to read a hidden state at)"
            )
    # batches of similar length (ascending), each at most `batch_tokens` once padded
    chunks: list[list[int]] = [[]]
    for i in sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i])):
        if chunks[-1] and (len(chunks[-1]) + 1) * len(prompt_ids[i]) > batch_tokens:
            chunks.append([])
        chunks[-1].append(i)
    rows: list[torch.Tensor] = [torch.zeros(0)] * len(prompt_ids)
    for chunk in chunks if prompt_ids else []:
        input_ids, attention_mask, position_ids = left_pad(
            [prompt_ids[i] for i in chunk], policy.pad_token_id, policy.device
        )
        outputs = policy._forward(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False,
            output_hidden_states=True,
            logits_to_keep=1,
        )
        final = outputs.hidden_states[-1]  # (chunk, width, hidden)
        width = final.shape[1]
        for row, i in enumerate(chunk):
            at = [width - len(prompt_ids[i]) + p for p in positions[i]]
            rows[i] = final[row, at].float().cpu()
    if not rows:
        return torch.zeros(0, policy.model.config.hidden_size)
    return torch.cat(rows)

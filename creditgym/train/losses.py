"""The token-level policy-gradient loss: PPO-clip with an optional KL penalty and entropy bonus.

Follows PPO (Schulman et al. 2017, arXiv 1707.06347, eq. 7) with the names CleanRL uses
(`ratio`, `pg_loss1`, `pg_loss2`, `approx_kl`). Each turn's advantage is broadcast to every
token of that turn's response. The KL term to a frozen reference uses the k3 estimator of GRPO
(arXiv 2402.03300, eq. 4): exp(ref - logp) - (ref - logp) - 1, always >= 0.

How the per-token terms are summed into one loss (``train.loss_agg``; `aggregation_weights`
gives each token its weight, a "sequence" being one turn's response):

* ``token_mean``: every token of the mini-batch weighs the same, 1 / tokens; DAPO's
  token-level policy-gradient loss (Yu et al. 2025, arXiv 2503.14476, sec. 3.3, eq. 12) and
  verl's "token-mean". Longer responses and longer episodes weigh more.
* ``seq_mean_token_mean``: the mean over each response's tokens, then over responses; GRPO's
  objective (Shao et al. 2024, arXiv 2402.03300, eq. 3, 1/G sum_i 1/|o_i| sum_t). A short
  response's tokens weigh more than a long one's.
* ``seq_mean_token_sum_norm``: each response's token sum divided by one constant
  (``train.loss_norm_tokens``), then the mean over responses; Dr. GRPO (Liu et al. 2025,
  arXiv 2503.20783, sec. 3.1), which drops GRPO's 1/|o_i| length bias.
* ``episode_mean``: every episode of the mini-batch weighs the same, spread evenly over its
  tokens: 1 / (episodes x the episode's tokens). A 15-turn failed episode then weighs as much
  as a 7-turn success instead of twice as much (its turns' advantages no longer dominate the
  mass of the update).

Tokens the decoding constraint forced (one allowed token: log-prob 0 whatever the weights, so
no gradient) can be left out of every count (``train.count_forced_tokens=false``); a response
or an episode with no free token then counts in no denominator either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "LOSS_AGGREGATIONS",
    "BatchCounts",
    "PPOLossOutput",
    "aggregation_weights",
    "batch_counts",
    "ppo_clip_loss",
    "pad_sequences",
]

LOSS_AGGREGATIONS = ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm", "episode_mean")


@dataclass(frozen=True)
class BatchCounts:
    """What a mini-batch's denominators count (summed over ranks in distributed training)."""

    tokens: float  # counted tokens
    turns: float  # responses with at least one counted token
    episodes: float  # episodes with at least one counted token


def batch_counts(counted: Sequence[Sequence[bool]], episodes: Sequence[int]) -> BatchCounts:
    """The counts of one rank's share of a mini-batch: `counted[i]` marks turn i's counted
    tokens, `episodes[i]` names the episode turn i belongs to."""
    tokens = [sum(row) for row in counted]
    return BatchCounts(
        tokens=float(sum(tokens)),
        turns=float(sum(1 for n in tokens if n > 0)),
        episodes=float(len({e for e, n in zip(episodes, tokens) if n > 0})),
    )


def aggregation_weights(
    mode: str,
    counted: Sequence[Sequence[bool]],
    episodes: Sequence[int],
    totals: BatchCounts,
    *,
    norm_tokens: int = 1,
) -> list[list[float]]:
    """Each token's weight in the loss under `mode` (see the module docstring), per turn.

    Args:
        counted: per turn, per response token, whether the token counts (False: forced).
        episodes: per turn, the episode it belongs to (an episode lives on one rank).
        totals: the mini-batch's counts over every rank (`batch_counts`, summed).
        norm_tokens: Dr. GRPO's constant, for ``seq_mean_token_sum_norm``.
    """
    if mode not in LOSS_AGGREGATIONS:
        raise ValueError(f"train.loss_agg={mode!r}; choose one of {', '.join(LOSS_AGGREGATIONS)}")
    lengths = [sum(row) for row in counted]
    episode_tokens: dict[int, int] = {}
    for episode, n in zip(episodes, lengths):
        episode_tokens[episode] = episode_tokens.get(episode, 0) + n
    weights = []
    for row, n, episode in zip(counted, lengths, episodes):
        if n == 0:
            weights.append([0.0] * len(row))
            continue
        if mode == "token_mean":
            weight = 1.0 / totals.tokens
        elif mode == "seq_mean_token_mean":
            weight = 1.0 / (totals.turns * n)
        elif mode == "seq_mean_token_sum_norm":
            weight = 1.0 / (totals.turns * norm_tokens)
        else:
            weight = 1.0 / (totals.episodes * episode_tokens[episode])
        weights.append([weight if keep else 0.0 for keep in row])
    return weights


@dataclass
class PPOLossOutput:
    loss: torch.Tensor  # scalar, differentiable
    pg_loss: float
    approx_kl: float  # KL(old || new) estimate, (ratio - 1) - log ratio
    clip_fraction: float
    ref_kl: float  # k3 KL to the reference policy (0 without one)
    entropy: float
    approx_kl_sum: float = 0.0  # the approx KL summed over `mask`'s tokens (no denominator)


def pad_sequences(
    sequences: list[torch.Tensor], pad_value: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad 1-D tensors to (batch, max_len) and return them with a float mask."""
    values = torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True, padding_value=pad_value)
    lengths = torch.tensor([len(s) for s in sequences], device=values.device)
    mask = (torch.arange(values.shape[1], device=values.device)[None, :] < lengths[:, None]).to(
        values.dtype
    )
    return values, mask


def ppo_clip_loss(
    logprobs: torch.Tensor,  # (batch, tokens) log pi_theta(token), differentiable
    old_logprobs: torch.Tensor,  # (batch, tokens) behaviour policy's log-probs
    advantages: torch.Tensor,  # (batch,) per row, broadcast to its tokens; or (batch, tokens)
    mask: torch.Tensor,  # (batch, tokens) 1 for response tokens, 0 for padding
    *,
    clip_eps: float = 0.2,
    token_count: float | None = None,
    ref_logprobs: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    entropy: torch.Tensor | None = None,  # (batch, tokens)
    entropy_coef: float = 0.0,
    token_weights: torch.Tensor | None = None,  # (batch, tokens)
) -> PPOLossOutput:
    """PPO-clip loss averaged over tokens.

    Args:
        token_count: the divisor of the token mean. Pass the number of response tokens of the
            whole mini-batch when it is split into micro-batches, so gradients accumulated
            over micro-batches equal the gradient of the full batch. Defaults to `mask.sum()`.
        token_weights: each token's weight in the loss (`aggregation_weights`), replacing the
            token mean for the loss terms; the statistics stay token means over `mask`.
    """
    mask = mask.to(logprobs.dtype)
    denominator = float(token_count) if token_count is not None else mask.sum().clamp(min=1.0)
    advantages = advantages.to(logprobs.dtype)
    # a row is one turn (one advantage) or a whole conversation (each turn's tokens its own)
    token_advantages = advantages if advantages.dim() == 2 else advantages[:, None]
    token_advantages = token_advantages.expand_as(logprobs)

    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    pg_loss1 = -token_advantages * ratio
    pg_loss2 = -token_advantages * torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    if token_weights is None:
        pg_loss = (torch.max(pg_loss1, pg_loss2) * mask).sum() / denominator
    else:
        token_weights = token_weights.to(logprobs.dtype)
        pg_loss = (torch.max(pg_loss1, pg_loss2) * token_weights).sum()
    loss = pg_loss

    ref_kl = torch.zeros((), dtype=logprobs.dtype, device=logprobs.device)
    if ref_logprobs is not None and kl_coef > 0:
        delta = ref_logprobs - logprobs
        ref_kl = ((torch.exp(delta) - delta - 1.0) * mask).sum() / denominator
        if token_weights is None:
            loss = loss + kl_coef * ref_kl
        else:
            loss = loss + kl_coef * ((torch.exp(delta) - delta - 1.0) * token_weights).sum()

    mean_entropy = torch.zeros((), dtype=logprobs.dtype, device=logprobs.device)
    if entropy is not None:
        mean_entropy = (entropy * mask).sum() / denominator
        if entropy_coef:
            weighted = mean_entropy if token_weights is None else (entropy * token_weights).sum()
            loss = loss - entropy_coef * weighted

    with torch.no_grad():
        approx_kl_sum = (((ratio - 1.0) - log_ratio) * mask).sum()
        approx_kl = approx_kl_sum / denominator
        clipped = ((ratio - 1.0).abs() > clip_eps).to(mask.dtype)
        clip_fraction = (clipped * mask).sum() / denominator
    return PPOLossOutput(
        loss=loss,
        pg_loss=float(pg_loss.detach()),
        approx_kl=float(approx_kl),
        clip_fraction=float(clip_fraction),
        ref_kl=float(ref_kl.detach()),
        entropy=float(mean_entropy.detach()),
        approx_kl_sum=float(approx_kl_sum),
    )

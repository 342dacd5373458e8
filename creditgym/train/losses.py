"""The token-level policy-gradient loss: PPO-clip with an optional KL penalty and entropy bonus.

Follows PPO (Schulman et al. 2017, arXiv 1707.06347, eq. 7) with the names CleanRL uses
(`ratio`, `pg_loss1`, `pg_loss2`, `approx_kl`). Each turn's advantage is broadcast to every
token of that turn's response; the loss is a token mean (as in DAPO/verl's "token-mean").
The KL term to a frozen reference uses the k3 estimator of GRPO (arXiv 2402.03300, eq. 4):
exp(ref - logp) - (ref - logp) - 1, always >= 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["PPOLossOutput", "ppo_clip_loss", "pad_sequences"]


@dataclass
class PPOLossOutput:
    loss: torch.Tensor  # scalar, differentiable
    pg_loss: float
    approx_kl: float  # KL(old || new) estimate, (ratio - 1) - log ratio
    clip_fraction: float
    ref_kl: float  # k3 KL to the reference policy (0 without one)
    entropy: float


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
) -> PPOLossOutput:
    """PPO-clip loss averaged over tokens.

    Args:
        token_count: the divisor of the token mean. Pass the number of response tokens of the
            whole mini-batch when it is split into micro-batches, so gradients accumulated
            over micro-batches equal the gradient of the full batch. Defaults to `mask.sum()`.
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
    pg_loss = (torch.max(pg_loss1, pg_loss2) * mask).sum() / denominator
    loss = pg_loss

    ref_kl = torch.zeros((), dtype=logprobs.dtype, device=logprobs.device)
    if ref_logprobs is not None and kl_coef > 0:
        delta = ref_logprobs - logprobs
        ref_kl = ((torch.exp(delta) - delta - 1.0) * mask).sum() / denominator
        loss = loss + kl_coef * ref_kl

    mean_entropy = torch.zeros((), dtype=logprobs.dtype, device=logprobs.device)
    if entropy is not None:
        mean_entropy = (entropy * mask).sum() / denominator
        if entropy_coef:
            loss = loss - entropy_coef * mean_entropy

    with torch.no_grad():
        approx_kl = (((ratio - 1.0) - log_ratio) * mask).sum() / denominator
        clipped = ((ratio - 1.0).abs() > clip_eps).to(mask.dtype)
        clip_fraction = (clipped * mask).sum() / denominator
    return PPOLossOutput(
        loss=loss,
        pg_loss=float(pg_loss.detach()),
        approx_kl=float(approx_kl),
        clip_fraction=float(clip_fraction),
        ref_kl=float(ref_kl.detach()),
        entropy=float(mean_entropy.detach()),
    )

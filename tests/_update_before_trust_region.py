"""The PPO update as it was before the trust-region options (train.loss_agg, target_kl, ...),
frozen verbatim: `tests/test_update_options.py` checks that the defaults still take exactly
these steps. Only the loss and the loop are frozen; the scoring helpers are shared.
Do not edit it to follow later changes: it is the yardstick those changes are measured by."""

# ruff: noqa: E501
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from creditgym.train.distributed import ALONE, Distributed
from creditgym.train.losses import PPOLossOutput, pad_sequences
from creditgym.train.units import TrainSequence, TrainTurn
from creditgym.train.units import micro_batches as _micro_batches
from creditgym.train.units import old_logprobs as _old_logprobs
from creditgym.train.units import token_advantages as _token_advantages
from creditgym.train.units import trains as _trains
from creditgym.train.update import score_units as _score

Unit = TrainTurn | TrainSequence


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


def micro_batch_loss(
    policy: Any,
    micro: Sequence[Unit],
    *,
    token_count: float,
    clip_eps: float = 0.2,
    kl_coef: float = 0.0,
    entropy_coef: float = 0.0,
) -> Any:
    """The PPO-clip loss of one micro-batch (a share of the mini-batch's token mean)."""
    device = next(iter(policy.model.parameters())).device
    logprobs, entropies = _score(policy, micro, with_entropy=True)
    new_logprobs, mask = pad_sequences(logprobs)
    old_logprobs, _ = pad_sequences(
        [torch.tensor(_old_logprobs(t), dtype=torch.float32) for t in micro]
    )
    ref = None
    if kl_coef > 0:
        ref, _ = pad_sequences([t.ref_logprobs.float() for t in micro])
        ref = ref.to(device)
    entropy = pad_sequences(entropies)[0] if entropies is not None else None
    if all(isinstance(t, TrainTurn) and t.token_advantages is None for t in micro):
        advantages = torch.tensor([t.advantage for t in micro], dtype=torch.float32)
    else:
        advantages, _ = pad_sequences(
            [torch.tensor(_token_advantages(t), dtype=torch.float32) for t in micro]
        )
    return ppo_clip_loss(
        new_logprobs.float(),
        old_logprobs.to(device),
        advantages.to(device),
        mask.float(),
        clip_eps=clip_eps,
        token_count=token_count,
        ref_logprobs=ref,
        kl_coef=kl_coef,
        entropy=entropy.float() if entropy is not None else None,
        entropy_coef=entropy_coef,
    )


def ppo_update(
    policy: Any,
    optimizer: torch.optim.Optimizer,
    turns: list[TrainTurn] | list[TrainSequence],
    *,
    ppo_epochs: int = 1,
    mini_batches: int = 1,
    micro_batch_turns: int = 64,
    clip_eps: float = 0.2,
    kl_coef: float = 0.0,
    entropy_coef: float = 0.0,
    max_grad_norm: float = 1.0,
    skip_zero_advantage: bool = True,
    rng: np.random.Generator | None = None,
    distributed: Distributed = ALONE,
) -> dict[str, float]:
    """Run the PPO-clip update on `turns` and return averaged loss statistics.

    Turns whose advantage is 0 contribute nothing to the clipped policy-gradient term, so with
    no KL or entropy term they are left out of the forward pass (`skip_zero_advantage`), while
    still counted in the token-mean divisor so the gradient is unchanged.

    Under `distributed` training each rank passes its own turns: the token-mean divisor and the
    gradients are summed over ranks, so with one mini-batch the step is the one a single process
    takes on all ranks' turns; the statistics returned are the global ones.
    """
    rng = rng or np.random.default_rng(0)
    parameters = [p for p in policy.model.parameters() if p.requires_grad]
    statistics = ("pg_loss", "approx_kl", "clip_fraction", "ref_kl", "entropy")
    sums = dict.fromkeys((*statistics, "grad_norm"), 0.0)  # the same keys on every rank
    steps = 0
    # every rank must take the same optimizer steps: a fixed split count (some splits may be empty)
    splits = max(1, mini_batches) if distributed.enabled else max(1, min(mini_batches, len(turns)))
    for _ in range(ppo_epochs):
        order = rng.permutation(len(turns))
        for batch_indices in np.array_split(order, splits):
            batch = [turns[i] for i in batch_indices]
            token_count = distributed.sum(sum(len(t.response_ids) for t in batch))
            if skip_zero_advantage and kl_coef == 0 and entropy_coef == 0:
                batch = [t for t in batch if _trains(t)]
            if distributed.sum(len(batch)) == 0 or token_count == 0:
                continue
            optimizer.zero_grad(set_to_none=True)
            for micro in _micro_batches(batch, micro_batch_turns):
                out = micro_batch_loss(
                    policy,
                    micro,
                    token_count=token_count,
                    clip_eps=clip_eps,
                    kl_coef=kl_coef,
                    entropy_coef=entropy_coef,
                )
                out.loss.backward()
                for name in statistics:
                    sums[name] += getattr(out, name)
            distributed.sum_gradients(parameters)
            grad_norm = torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
            optimizer.step()
            sums["grad_norm"] += float(grad_norm)
            steps += 1
    # loss statistics are per mini-batch sums of micro-batch parts (and of ranks' parts, each a
    # share of the global token mean); grad_norm is already global, the same on every rank
    if distributed.enabled:
        sums = {
            name: value if name == "grad_norm" else distributed.sum(value)
            for name, value in sorted(sums.items())
        }
    return {f"update/{name}": value / max(steps, 1) for name, value in sums.items()} | {
        "update/steps": steps
    }

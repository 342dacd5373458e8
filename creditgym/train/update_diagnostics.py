"""How far one update moved the policy on the turns it trained on (`train.update_diagnostics`).

One more forward pass, no gradient, over the turns with a nonzero advantage: every token's log
ratio to the behaviour policy (the rollout's recorded log-probs), and each turn's log-prob change
on its sampled action against its advantage. Cheap next to the update, and the only way to see
whether a step moved the policy where the credit asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from creditgym.train.distributed import ALONE, Distributed
from creditgym.train.units import (
    Unit,
    mark_forced_tokens,
    micro_batches,
    old_logprobs,
    trains,
    turn_advantages,
    turn_lengths,
)
from creditgym.train.update import score_units

__all__ = ["update_diagnostics"]


@torch.no_grad()
def update_diagnostics(
    policy: Any,
    turns: Sequence[Unit],
    micro_batch_turns: int = 64,
    distributed: Distributed = ALONE,
) -> dict[str, float]:
    """How the update moved the policy on the turns it trained on (one more forward pass over
    the turns with a nonzero advantage: where a group's outcomes are all equal, most of a
    batch, scoring every turn cost more than the update itself).

    Every token's log ratio is log pi_new - log pi_behaviour (the rollout's recorded log-probs,
    which the PPO ratio starts from); tokens the constraint forced (always ratio 1) are left
    out. Returns, over the batch (every rank's turns):

    * ``update/kl_after``: the k3 estimate of KL(behaviour || new), mean((r - 1) - log r);
    * ``update/ratio_std``, ``_min``, ``_max``, ``_p05``, ``_p95``: the spread of r;
    * ``update/logprob_change_corr``: the Pearson correlation, over turns, of each turn's
      log-prob change (the sum of its tokens' log ratios: the sampled action's) with its
      advantage; 1 when every action moved in proportion to its advantage;
    * ``update/logprob_change_mean`` and ``_abs_mean``: the turns' mean (absolute) change;
    * ``update/forced_token_share``: the share of response tokens the constraint forced.
    """
    turns = [unit for unit in turns if trains(unit)]
    mark_forced_tokens(policy, turns)
    changes: list[float] = []
    advantages: list[float] = []
    log_ratios: list[float] = []
    forced_tokens = total_tokens = 0
    for micro in micro_batches(list(turns), micro_batch_turns):
        logprobs, _ = score_units(policy, micro, with_entropy=False)
        for unit, new in zip(micro, logprobs):
            delta = new.detach().float().cpu() - torch.tensor(old_logprobs(unit))
            free = (
                torch.tensor([not f for f in unit.forced])
                if unit.forced is not None
                else torch.ones(len(delta), dtype=torch.bool)
            )
            log_ratios += delta[free].tolist()
            forced_tokens += int((~free).sum())
            total_tokens += len(delta)
            start = 0
            for length, advantage in zip(turn_lengths(unit), turn_advantages(unit)):
                changes.append(float(delta[start : start + length].sum()))
                advantages.append(advantage)
                start += length
    if distributed.enabled:
        changes, advantages = distributed.gather(changes), distributed.gather(advantages)
        log_ratios = distributed.gather(log_ratios)
        forced_tokens = int(distributed.sum(forced_tokens))
        total_tokens = int(distributed.sum(total_tokens))
    if not log_ratios:
        return {}
    log_ratio = np.asarray(log_ratios)
    ratio = np.exp(log_ratio)
    change = np.asarray(changes)
    return {
        "update/kl_after": float(np.mean((ratio - 1.0) - log_ratio)),
        "update/ratio_std": float(np.std(ratio)),
        "update/ratio_min": float(ratio.min()),
        "update/ratio_max": float(ratio.max()),
        "update/ratio_p05": float(np.percentile(ratio, 5)),
        "update/ratio_p95": float(np.percentile(ratio, 95)),
        "update/logprob_change_corr": _pearson(change, np.asarray(advantages)),
        "update/logprob_change_mean": float(change.mean()),
        "update/logprob_change_abs_mean": float(np.abs(change).mean()),
        "update/forced_token_share": forced_tokens / max(total_tokens, 1),
    }


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's correlation; 0 where either side is constant (no direction to agree on)."""
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])

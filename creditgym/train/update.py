"""One policy-gradient update over a rollout batch: turns -> token tensors -> PPO-clip steps.

Each turn contributes its response tokens; its advantage is broadcast to them (or, where the
estimator gave per-token advantages, each token gets its own). The batch is
split into `mini_batches` optimizer steps per epoch and each of those into micro-batches of
`micro_batch_turns` turns whose gradients are accumulated, with the token mean taken over the
whole mini-batch so micro-batching never changes the gradient.

In ``conversation`` context mode a turn's prompt holds the episode's earlier turns, so the
update reads an episode as one sequence (`TrainSequence`, from `flatten_sequences`): one
forward pass scores the responses of all its turns, each turn's tokens weighted by that turn's
advantage and behaviour log-probs. It gives the same loss and gradient as scoring each turn
after its own prompt, for a fraction of the tokens.

How the token terms sum into the loss is `train.loss_agg` (`creditgym.train.losses`), with the
tokens the decoding constraint forced counted or not (`train.count_forced_tokens`). With
`target_kl` > 0 the epochs stop early, before the step of the first mini-batch whose approx KL
to the behaviour policy (k3, measured in its forward pass, averaged over the tokens it scores
that the constraint did not force) exceeds it (Spinning Up's PPO early stop).
`creditgym.train.update_diagnostics` then says how far the policy moved and whether each
turn's log-prob moved the way its advantage asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from creditgym.train.distributed import ALONE, Distributed
from creditgym.train.losses import (
    BatchCounts,
    aggregation_weights,
    batch_counts,
    pad_sequences,
    ppo_clip_loss,
)
from creditgym.train.units import (
    TrainSequence,
    TrainTurn,
    Unit,
    counted_rows,
    flatten_sequences,
    flatten_turns,
    free_tokens,
    group_turns,
    mark_forced_tokens,
    micro_batches,
    old_logprobs,
    token_advantages,
    trains,
    turn_count,
)

__all__ = [
    "TrainSequence",
    "TrainTurn",
    "flatten_sequences",
    "flatten_turns",
    "group_turns",
    "mark_forced_tokens",
    "micro_batch_loss",
    "ppo_update",
    "reference_logprobs",
]


def score_units(
    policy: Any, turns: Sequence[Unit], with_entropy: bool
) -> tuple[list[torch.Tensor], list | None]:
    """Per unit, the log-probs (and entropies) of its response tokens, one row each."""
    if turns and isinstance(turns[0], TrainSequence):
        admissible = [a for t in turns for a in t.admissible_actions]
        constrained = getattr(policy, "constrained", False) and all(
            a is not None for a in admissible
        )
        logprobs, entropies = policy.score_spans(
            [t.ids for t in turns],
            [t.spans for t in turns],
            [t.admissible_actions for t in turns] if constrained else None,
            with_entropy=with_entropy,
        )
        return [torch.cat(row) for row in logprobs], (
            [torch.cat(row) for row in entropies] if entropies is not None else None
        )
    admissible = [t.admissible_actions for t in turns]
    return policy.score(
        [t.prompt_ids for t in turns],
        [t.response_ids for t in turns],
        admissible
        if getattr(policy, "constrained", False) and all(a is not None for a in admissible)
        else None,
        with_entropy=with_entropy,
    )


@torch.no_grad()
def reference_logprobs(reference: Any, turns: Sequence[Unit], micro_batch_turns: int) -> None:
    """Fill `turn.ref_logprobs` with the frozen reference policy's log-probs."""
    for chunk in micro_batches(turns, micro_batch_turns):
        logprobs, _ = score_units(reference, chunk, with_entropy=False)
        for turn, values in zip(chunk, logprobs):
            turn.ref_logprobs = values.detach()


def _mini_batch_weights(
    batch: Sequence[Unit],
    loss_agg: str,
    count_forced: bool,
    norm_tokens: int,
    distributed: Distributed,
) -> tuple[float, dict[int, list[float]], dict[int, list[float]]]:
    """The mini-batch's counted tokens (over ranks), and per unit (by id) its tokens' loss
    weights and counted mask (1.0 counted, 0.0 forced)."""
    rows = [counted_rows(unit, count_forced) for unit in batch]
    flat_rows = [row for unit_rows in rows for row in unit_rows]
    episodes = [unit.episode for unit in batch for _ in range(turn_count(unit))]
    local = batch_counts(flat_rows, episodes)
    totals = BatchCounts(
        tokens=distributed.sum(local.tokens),
        turns=distributed.sum(local.turns),
        episodes=distributed.sum(local.episodes),
    )
    if totals.tokens == 0:
        return 0.0, {}, {}
    weights = iter(
        aggregation_weights(loss_agg, flat_rows, episodes, totals, norm_tokens=norm_tokens)
    )
    unit_weights, unit_counted = {}, {}
    for unit, unit_rows in zip(batch, rows):
        unit_weights[id(unit)] = [w for _ in unit_rows for w in next(weights)]
        unit_counted[id(unit)] = [float(keep) for row in unit_rows for keep in row]
    return totals.tokens, unit_weights, unit_counted


def micro_batch_loss(
    policy: Any,
    micro: Sequence[Unit],
    *,
    token_count: float,
    clip_eps: float = 0.2,
    kl_coef: float = 0.0,
    entropy_coef: float = 0.0,
    token_weights: Sequence[list[float]] | None = None,
    counted: Sequence[list[float]] | None = None,
) -> Any:
    """The PPO-clip loss of one micro-batch (a share of the mini-batch's loss).

    Without `token_weights` it is a share of the token mean over `token_count` tokens; with
    them (per unit, per response token) each token weighs its own, and `counted` (per unit,
    1.0 or 0.0 per token) marks the tokens the statistics average over.
    """
    device = next(iter(policy.model.parameters())).device
    logprobs, entropies = score_units(policy, micro, with_entropy=True)
    new_logprobs, mask = pad_sequences(logprobs)
    behaviour_logprobs, _ = pad_sequences(
        [torch.tensor(old_logprobs(t), dtype=torch.float32) for t in micro]
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
            [torch.tensor(token_advantages(t), dtype=torch.float32) for t in micro]
        )
    weights = None
    if token_weights is not None:
        weights = pad_sequences([torch.tensor(w, dtype=torch.float32) for w in token_weights])[0]
        weights = weights.to(device)
        if counted is not None:
            mask = pad_sequences([torch.tensor(c, dtype=torch.float32) for c in counted])[0]
    return ppo_clip_loss(
        new_logprobs.float(),
        behaviour_logprobs.to(device),
        advantages.to(device),
        mask.float().to(device),
        clip_eps=clip_eps,
        token_count=token_count,
        ref_logprobs=ref,
        kl_coef=kl_coef,
        entropy=entropy.float() if entropy is not None else None,
        entropy_coef=entropy_coef,
        token_weights=weights,
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
    loss_agg: str = "token_mean",
    count_forced_tokens: bool = True,
    loss_norm_tokens: int = 1,
    target_kl: float = 0.0,
    rng: np.random.Generator | None = None,
    distributed: Distributed = ALONE,
) -> dict[str, float]:
    """Run the PPO-clip update on `turns` and return averaged loss statistics.

    Turns whose advantage is 0 contribute nothing to the clipped policy-gradient term, so with
    no KL or entropy term they are left out of the forward pass (`skip_zero_advantage`), while
    still counted in the loss's denominators so the gradient is unchanged.

    `loss_agg`, `count_forced_tokens` and `loss_norm_tokens` choose how token terms sum into
    the loss (`creditgym.train.losses`); the default is the token mean over every response
    token. With `target_kl` > 0, the update stops before the step of the first mini-batch
    whose approx KL (k3, over ranks and the tokens it scores that were not forced) exceeds
    it; ``update/stopped_epoch`` and ``update/stopped_step`` (1-based, the step counted over
    all epochs; 0 when it ran to the end) say where, ``update/checked_kl`` is the last KL
    checked.

    Under `distributed` training each rank passes its own turns: the denominators and the
    gradients are summed over ranks, so with one mini-batch the step is the one a single process
    takes on all ranks' turns; the statistics returned are the global ones.
    """
    rng = rng or np.random.default_rng(0)
    parameters = [p for p in policy.model.parameters() if p.requires_grad]
    statistics = ("pg_loss", "approx_kl", "clip_fraction", "ref_kl", "entropy")
    sums = dict.fromkeys((*statistics, "grad_norm"), 0.0)  # the same keys on every rank
    steps = epochs = stopped_epoch = stopped_step = 0
    # today's loss (a token mean over every response token) keeps its own, unweighted path
    weighted = loss_agg != "token_mean" or not count_forced_tokens
    if (weighted and not count_forced_tokens) or target_kl > 0:
        mark_forced_tokens(policy, turns)
    checked_kl = 0.0  # the approx KL of the last mini-batch checked against target_kl
    # every rank must take the same optimizer steps: a fixed split count (some splits may be empty)
    splits = max(1, mini_batches) if distributed.enabled else max(1, min(mini_batches, len(turns)))
    for epoch in range(ppo_epochs):
        if stopped_step:
            break
        epochs += 1
        order = rng.permutation(len(turns))
        for batch_indices in np.array_split(order, splits):
            batch = [turns[i] for i in batch_indices]
            unit_weights: dict[int, list[float]] = {}
            unit_counted: dict[int, list[float]] = {}
            if weighted:
                token_count, unit_weights, unit_counted = _mini_batch_weights(
                    batch, loss_agg, count_forced_tokens, loss_norm_tokens, distributed
                )
            else:
                token_count = distributed.sum(sum(len(t.response_ids) for t in batch))
            if skip_zero_advantage and kl_coef == 0 and entropy_coef == 0:
                batch = [t for t in batch if trains(t)]
            if distributed.sum(len(batch)) == 0 or token_count == 0:
                continue
            optimizer.zero_grad(set_to_none=True)
            batch_sums = dict.fromkeys(statistics, 0.0)
            kl_sum = 0.0
            for micro in micro_batches(batch, micro_batch_turns):
                out = micro_batch_loss(
                    policy,
                    micro,
                    token_count=token_count,
                    clip_eps=clip_eps,
                    kl_coef=kl_coef,
                    entropy_coef=entropy_coef,
                    token_weights=[unit_weights[id(t)] for t in micro] if weighted else None,
                    counted=[unit_counted[id(t)] for t in micro] if weighted else None,
                )
                out.loss.backward()
                for name in statistics:
                    batch_sums[name] += getattr(out, name)
                kl_sum += out.approx_kl_sum
            if target_kl > 0:
                free = distributed.sum(sum(free_tokens(t) for t in batch))
                checked_kl = distributed.sum(kl_sum) / max(free, 1.0)
                if checked_kl > target_kl:  # moved too far from the behaviour policy: no step
                    stopped_epoch, stopped_step = epoch + 1, steps + 1
                    optimizer.zero_grad(set_to_none=True)
                    break
            distributed.sum_gradients(parameters)
            grad_norm = torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
            optimizer.step()
            for name in statistics:
                sums[name] += batch_sums[name]
            sums["grad_norm"] += float(grad_norm)
            steps += 1
    # loss statistics are per mini-batch sums of micro-batch parts (and of ranks' parts, each a
    # share of the global token mean); grad_norm is already global, the same on every rank
    if distributed.enabled:
        sums = {
            name: value if name == "grad_norm" else distributed.sum(value)
            for name, value in sorted(sums.items())
        }
    return (
        {f"update/{name}": value / max(steps, 1) for name, value in sums.items()}
        | {
            "update/steps": steps,
            "update/epochs": epochs,
            "update/stopped_epoch": stopped_epoch,
            "update/stopped_step": stopped_step,
        }
        | ({"update/checked_kl": checked_kl} if target_kl > 0 else {})
    )

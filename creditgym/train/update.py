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
`update_diagnostics` then scores the batch once more and says how far the policy moved and
whether each turn's log-prob moved the way its advantage asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from creditgym.agents.protocols import ForcedTokenPolicy
from creditgym.envs import info as keys
from creditgym.train.distributed import ALONE, Distributed
from creditgym.train.losses import (
    BatchCounts,
    aggregation_weights,
    batch_counts,
    pad_sequences,
    ppo_clip_loss,
)
from creditgym.trajectory import Episode, Turn

T = TypeVar("T")

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
    "update_diagnostics",
]


@dataclass
class TrainTurn:
    """A turn ready for the loss: token ids, behaviour log-probs and its advantage."""

    prompt_ids: list[int]
    response_ids: list[int]
    old_logprobs: list[float]
    advantage: float
    admissible_actions: list[str] | None
    ref_logprobs: torch.Tensor | None = None
    token_advantages: list[float] | None = None  # one per response token, replacing `advantage`
    episode: int = 0  # which episode of the batch it came from (for train.loss_agg)
    forced: list[bool] | None = None  # per response token: forced by the constraint


@dataclass
class TrainSequence:
    """Consecutive turns of one conversation as one token sequence.

    `ids` is the last turn's prompt and response; `spans[k]` is where turn k's response lies
    in it (each turn's prompt and response are a prefix of the next turn's prompt).
    """

    ids: list[int]
    spans: list[tuple[int, int]]
    old_logprobs: list[list[float]]
    advantages: list[float]
    admissible_actions: list[list[str] | None]
    ref_logprobs: list[torch.Tensor] | None = None
    token_advantages: list[list[float]] | None = None  # per turn, one per response token
    episode: int = 0  # which episode of the batch it came from (for train.loss_agg)
    forced: list[bool] | None = None  # per response token of every span: forced

    @property
    def trains(self) -> bool:
        """Whether any of its tokens has a nonzero advantage (else the update skips it)."""
        if self.token_advantages is not None:
            return any(a != 0.0 for row in self.token_advantages for a in row)
        return any(a != 0.0 for a in self.advantages)

    @property
    def response_ids(self) -> list[int]:
        return [token for start, end in self.spans for token in self.ids[start:end]]


def flatten_sequences(
    episodes: Sequence[Episode],
    advantages: Sequence[np.ndarray],
    token_advantages: Sequence[Sequence[np.ndarray]] | None = None,
) -> list[TrainSequence]:
    """Each episode's turns with response tokens, as few sequences as their prompts allow:
    a turn joins the previous turn's sequence when its prompt extends that turn's prompt and
    response (a conversation whose oldest turns the context budget dropped starts anew).
    With `token_advantages` (per episode, one array per turn), tokens are weighted by those."""
    sequences: list[TrainSequence] = []
    for index, (episode, episode_advantages) in enumerate(zip(episodes, advantages)):
        current: TrainSequence | None = None
        for k, (turn, advantage) in enumerate(zip(episode.turns, episode_advantages)):
            if not turn.response_ids or len(turn.logprobs) != len(turn.response_ids):
                continue
            prompt, response = list(turn.prompt_ids), list(turn.response_ids)
            if current is None or prompt[: len(current.ids)] != current.ids:
                current = TrainSequence([], [], [], [], [], episode=index)
                if token_advantages is not None:
                    current.token_advantages = []
                sequences.append(current)
            if current.token_advantages is not None:
                current.token_advantages.append(_token_row(token_advantages[index][k], turn))
            start = len(prompt)
            current.ids = prompt + response
            current.spans.append((start, start + len(response)))
            current.old_logprobs.append(list(turn.logprobs))
            current.advantages.append(float(advantage))
            admissible = turn.info.get(keys.ADMISSIBLE_ACTIONS)
            current.admissible_actions.append(list(admissible) if admissible is not None else None)
    return sequences


def flatten_turns(
    episodes: Sequence[Episode],
    advantages: Sequence[np.ndarray],
    token_advantages: Sequence[Sequence[np.ndarray]] | None = None,
) -> list[TrainTurn]:
    """Every turn that has response tokens, paired with its advantage (and with
    `token_advantages`, per episode one array per turn, its tokens' own advantages)."""
    flat = []
    for index, (episode, episode_advantages) in enumerate(zip(episodes, advantages)):
        for k, (turn, advantage) in enumerate(zip(episode.turns, episode_advantages)):
            if turn.response_ids and len(turn.logprobs) == len(turn.response_ids):
                flat.append(_train_turn(turn, float(advantage)))
                flat[-1].episode = index
                if token_advantages is not None:
                    flat[-1].token_advantages = _token_row(token_advantages[index][k], turn)
    return flat


def _token_row(row: np.ndarray, turn: Turn) -> list[float]:
    if len(row) != len(turn.response_ids):
        raise ValueError(
            f"a turn has {len(turn.response_ids)} response tokens but {len(row)} token "
            "advantages; the estimator must give one per response token"
        )
    return [float(a) for a in row]


def _train_turn(turn: Turn, advantage: float) -> TrainTurn:
    admissible = turn.info.get(keys.ADMISSIBLE_ACTIONS)
    return TrainTurn(
        prompt_ids=turn.prompt_ids,
        response_ids=turn.response_ids,
        old_logprobs=turn.logprobs,
        advantage=advantage,
        admissible_actions=list(admissible) if admissible is not None else None,
    )


Unit = TrainTurn | TrainSequence


def _score(
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


def _turn_count(unit: Unit) -> int:
    return len(unit.spans) if isinstance(unit, TrainSequence) else 1


def _token_length(unit: Unit) -> int:
    if isinstance(unit, TrainSequence):
        return len(unit.ids)
    return len(unit.prompt_ids) + len(unit.response_ids)


def group_turns(
    units: Iterable[T], max_turns: int, turn_count: Callable[[T], int]
) -> list[list[T]]:
    """Consecutive units in groups of up to `max_turns` turns each (at least one unit)."""
    groups: list[list[T]] = []
    turns = 0
    for unit in units:
        if not groups or turns + turn_count(unit) > max_turns:
            groups.append([])
            turns = 0
        groups[-1].append(unit)
        turns += turn_count(unit)
    return groups


def _micro_batches(units: Sequence[Unit], micro_batch_turns: int) -> list[list[Unit]]:
    """Units in micro-batches of up to `micro_batch_turns` turns each (at least one unit).

    Units of similar length go together, so a padded forward pass wastes little on padding
    (conversations differ by hundreds of tokens); the grouping leaves the summed loss as it is.
    """
    return group_turns(sorted(units, key=_token_length), micro_batch_turns, _turn_count)


def _old_logprobs(unit: Unit) -> list[float]:
    if isinstance(unit, TrainSequence):
        return [value for turn in unit.old_logprobs for value in turn]
    return unit.old_logprobs


def _token_advantages(unit: Unit) -> list[float]:
    if unit.token_advantages is not None:
        if isinstance(unit, TrainSequence):
            return [a for row in unit.token_advantages for a in row]
        return list(unit.token_advantages)
    if isinstance(unit, TrainSequence):
        return [a for a, (s, e) in zip(unit.advantages, unit.spans) for _ in range(e - s)]
    return [unit.advantage] * len(unit.response_ids)


def _trains(unit: Unit) -> bool:
    """Whether any of the unit's tokens has a nonzero advantage."""
    if isinstance(unit, TrainSequence):
        return unit.trains
    if unit.token_advantages is not None:
        return any(a != 0.0 for a in unit.token_advantages)
    return unit.advantage != 0.0


@torch.no_grad()
def reference_logprobs(reference: Any, turns: Sequence[Unit], micro_batch_turns: int) -> None:
    """Fill `turn.ref_logprobs` with the frozen reference policy's log-probs."""
    for chunk in _micro_batches(turns, micro_batch_turns):
        logprobs, _ = _score(reference, chunk, with_entropy=False)
        for turn, values in zip(chunk, logprobs):
            turn.ref_logprobs = values.detach()


def _turn_lengths(unit: Unit) -> list[int]:
    """Response tokens of each of the unit's turns."""
    if isinstance(unit, TrainSequence):
        return [end - start for start, end in unit.spans]
    return [len(unit.response_ids)]


def _turn_advantages(unit: Unit) -> list[float]:
    """Each of the unit's turns' advantage (the mean of its tokens' when they have their own)."""
    if isinstance(unit, TrainSequence):
        if unit.token_advantages is not None:
            return [float(np.mean(row)) if row else 0.0 for row in unit.token_advantages]
        return list(unit.advantages)
    if unit.token_advantages is not None:
        return [float(np.mean(unit.token_advantages)) if unit.token_advantages else 0.0]
    return [unit.advantage]


def _counted_rows(unit: Unit, count_forced: bool) -> list[list[bool]]:
    """Per turn of the unit, which response tokens count in the loss denominators."""
    rows, start = [], 0
    for length in _turn_lengths(unit):
        if count_forced or unit.forced is None:
            rows.append([True] * length)
        else:
            rows.append([not forced for forced in unit.forced[start : start + length]])
        start += length
    return rows


def _free_tokens(unit: Unit) -> float:
    """Response tokens of the unit that the constraint did not force (all, if unknown)."""
    if unit.forced is None:
        return float(len(_old_logprobs(unit)))
    return float(sum(not forced for forced in unit.forced))


def mark_forced_tokens(policy: Any, units: Sequence[Unit]) -> None:
    """Fill each unit's `forced` (per response token) from the policy's decoding constraint,
    as the update scores it: constrained only where every unit has its admissible actions.
    A policy that cannot say (not a `ForcedTokenPolicy`) leaves `forced` unset."""
    if not units or not isinstance(policy, ForcedTokenPolicy):
        return
    if isinstance(units[0], TrainSequence):
        turns = [
            (unit.ids[start:end], actions)
            for unit in units
            for (start, end), actions in zip(unit.spans, unit.admissible_actions)
        ]
    else:
        turns = [(unit.response_ids, unit.admissible_actions) for unit in units]
    constrained = getattr(policy, "constrained", False) and all(a is not None for _, a in turns)
    forced = policy.forced_tokens(
        [list(ids) for ids, _ in turns], [a for _, a in turns] if constrained else None
    )
    rows = iter(forced)
    for unit in units:
        unit.forced = [flag for _ in range(_turn_count(unit)) for flag in next(rows)]


def _mini_batch_weights(
    batch: Sequence[Unit],
    loss_agg: str,
    count_forced: bool,
    norm_tokens: int,
    distributed: Distributed,
) -> tuple[float, dict[int, list[float]], dict[int, list[float]]]:
    """The mini-batch's counted tokens (over ranks), and per unit (by id) its tokens' loss
    weights and counted mask (1.0 counted, 0.0 forced)."""
    rows = [_counted_rows(unit, count_forced) for unit in batch]
    flat_rows = [row for unit_rows in rows for row in unit_rows]
    episodes = [unit.episode for unit in batch for _ in range(_turn_count(unit))]
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
    weights = None
    if token_weights is not None:
        weights = pad_sequences([torch.tensor(w, dtype=torch.float32) for w in token_weights])[0]
        weights = weights.to(device)
        if counted is not None:
            mask = pad_sequences([torch.tensor(c, dtype=torch.float32) for c in counted])[0]
    return ppo_clip_loss(
        new_logprobs.float(),
        old_logprobs.to(device),
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
                batch = [t for t in batch if _trains(t)]
            if distributed.sum(len(batch)) == 0 or token_count == 0:
                continue
            optimizer.zero_grad(set_to_none=True)
            batch_sums = dict.fromkeys(statistics, 0.0)
            kl_sum = 0.0
            for micro in _micro_batches(batch, micro_batch_turns):
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
                free = distributed.sum(sum(_free_tokens(t) for t in batch))
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
    turns = [unit for unit in turns if _trains(unit)]
    mark_forced_tokens(policy, turns)
    changes: list[float] = []
    advantages: list[float] = []
    log_ratios: list[float] = []
    forced_tokens = total_tokens = 0
    for micro in _micro_batches(list(turns), micro_batch_turns):
        logprobs, _ = _score(policy, micro, with_entropy=False)
        for unit, new in zip(micro, logprobs):
            delta = new.detach().float().cpu() - torch.tensor(_old_logprobs(unit))
            free = (
                torch.tensor([not f for f in unit.forced])
                if unit.forced is not None
                else torch.ones(len(delta), dtype=torch.bool)
            )
            log_ratios += delta[free].tolist()
            forced_tokens += int((~free).sum())
            total_tokens += len(delta)
            start = 0
            for length, advantage in zip(_turn_lengths(unit), _turn_advantages(unit)):
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

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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from creditgym.envs import info as keys
from creditgym.train.distributed import ALONE, Distributed
from creditgym.train.losses import pad_sequences, ppo_clip_loss
from creditgym.trajectory import Episode, Turn

T = TypeVar("T")

__all__ = [
    "TrainSequence",
    "TrainTurn",
    "flatten_sequences",
    "flatten_turns",
    "group_turns",
    "micro_batch_loss",
    "ppo_update",
    "reference_logprobs",
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
                current = TrainSequence([], [], [], [], [])
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

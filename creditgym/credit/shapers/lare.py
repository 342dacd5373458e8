"""LaRe: latent reward factors of each turn, decoded into per-turn proxy rewards.

Qu et al., "Latent Reward: LLM-Empowered Credit Assignment in Episodic Reinforcement
Learning", arXiv:2412.11120. A factor function ``evaluate(state, action) -> list[float]``
describes each turn (LaRe has an LLM write it from the task and the documented
``symbolic_state`` fields; creditgym also takes a hand-written one), and a small MLP decoder
maps the factors to a proxy reward per turn, trained online so that the predicted turn
rewards of an episode add up to its return:

* ``rd`` (return decomposition): loss = mean over episodes of (sum_t r_hat_t - R)^2;
* ``rrd`` (randomized return decomposition, Ren et al. 2022): each episode's return is
  estimated from a random subset of its turns, R_hat = T/|S| sum_(t in S) r_hat_t, and
  loss = mean (R_hat - R)^2 (the biased, low-variance form, without the variance term).

In multi-agent rollouts (episodes sharing ``metadata["team_rollout"]``) the decomposition
runs over all agents' turns of a rollout together: the agents' predicted rewards add up to the
team return, which is what gives each agent its own share of the credit (LaRe's multi-agent
setting). The shaper ``lare`` replaces the env's episodic reward by these proxy rewards
(``shapers: [lare]``); the factors of a turn are computed from the ``symbolic_state`` the step
returned (``turn.next_info``, what the action achieved) and the action. The factor function
and the decoder live in a `LatentReward` handed to the shaper as
``CreditContext(extras={"lare": ...})``; LLM-written factor code runs only in the sandbox.

**Bad factor code does not end training.** When the sandbox fails on a batch (any
`SandboxError`: rejected code, a crash, a timeout, a memory bomb, a wrong shape) or the factors
change width from the decoder's, that batch falls back to the env's own turn rewards (what the
run would get without LaRe), and the decoder is left as it was (it learns nothing from a batch
without factors). Each fallback is counted in ``LatentReward.stats`` (the iteration's metrics
``lare/fallbacks`` and ``lare/fallbacks_<kind>``, kinds as in `SandboxError`), warned about
once per kind, and marked on every turn of the batch in ``credit_details["lare"]`` (``fallback``
and ``error``), which the episode log and viewer show. Sandboxed code gets a CPU time limit per
turn (`sandboxed_factors`' ``item_time_limit``), so a large batch is no reason to fail.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from creditgym.credit.context import CreditContext
from creditgym.credit.modules import Requirement
from creditgym.credit.registry import register_shaper
from creditgym.credit.sandbox.result import KINDS, SandboxError
from creditgym.credit.sandbox.runner import run_sandboxed
from creditgym.info_keys import SYMBOLIC_STATE
from creditgym.trajectory import Episode

__all__ = [
    "RewardDecoder",
    "LatentReward",
    "sandboxed_factors",
    "decomposition_loss",
    "lare_rewards",
]

FactorFunction = Callable[[Sequence[tuple[dict[str, Any], str]]], list[list[float]]]
VARIANTS = ("rd", "rrd")


class RewardDecoder(nn.Module):
    """factors (K) -> proxy reward (1): a two-layer MLP."""

    def __init__(self, n_factors: int, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_factors, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, factors: torch.Tensor) -> torch.Tensor:  # (turns, K) -> (turns,)
        return self.net(factors).squeeze(-1)


def decomposition_loss(
    turn_rewards: torch.Tensor,
    episode_of_turn: torch.Tensor,
    returns: torch.Tensor,
    variant: str = "rd",
    generator: torch.Generator | None = None,
    subset_size: int = 4,
) -> torch.Tensor:
    """The return-decomposition loss over a flat batch of predicted turn rewards.

    Args:
        turn_rewards: (turns,) predicted rewards, episodes one after another.
        episode_of_turn: (turns,) index of each turn's episode.
        returns: (episodes,) the episodes' returns.
        variant: ``"rd"`` or ``"rrd"`` (see the module docstring).
        generator: randomness of the RRD subsets.
        subset_size: turns sampled per episode by RRD (all turns of shorter episodes).
    """
    n_episodes = len(returns)
    lengths = torch.bincount(episode_of_turn, minlength=n_episodes).to(turn_rewards.dtype)
    if variant == "rd":
        predicted = torch.zeros(n_episodes, dtype=turn_rewards.dtype).index_add(
            0, episode_of_turn, turn_rewards
        )
    elif variant == "rrd":
        # a random subset per episode: rank the turns of each episode by random keys
        keys = torch.rand(len(turn_rewards), generator=generator)
        order = torch.argsort(episode_of_turn.to(keys.dtype) * 2 + keys)  # by episode, then random
        starts = torch.cumsum(lengths, 0) - lengths
        rank = torch.empty_like(order)
        rank[order] = torch.arange(len(order)) - starts[episode_of_turn[order]].long()
        chosen = rank < subset_size
        taken = torch.clamp(lengths, max=subset_size)
        sums = torch.zeros(n_episodes, dtype=turn_rewards.dtype).index_add(
            0, episode_of_turn[chosen], turn_rewards[chosen]
        )
        predicted = sums * lengths / taken.clamp(min=1)
    else:
        raise ValueError(f"variant={variant!r} is not one of {VARIANTS}")
    return torch.mean((predicted - returns) ** 2)


def sandboxed_factors(
    code: str, *, time_limit: float = 10.0, item_time_limit: float = 1.0, memory_mb: int = 512
) -> FactorFunction:
    """A factor function from untrusted code: one sandboxed process per batch of turns.

    Each turn gets `item_time_limit` CPU seconds of its own and the batch `time_limit` on top
    of those (start-up, module code): the limit grows with the batch, an endless loop still
    fails after one turn's limit. Failures raise `SandboxError` (the shaper falls back).
    """

    def factors(inputs: Sequence[tuple[dict[str, Any], str]]) -> list[list[float]]:
        return run_sandboxed(
            code,
            inputs,
            time_limit=time_limit,
            item_time_limit=item_time_limit,
            memory_mb=memory_mb,
        )

    return factors


def _fresh_stats() -> dict[str, int]:
    return {"fallbacks": 0, **{f"fallbacks_{kind}": 0 for kind in KINDS}}


@dataclass
class LatentReward:
    """A factor function and the decoder learning to turn its factors into turn rewards.

    Attributes:
        factors: ``inputs -> factor lists`` for a batch of ``(symbolic_state, action)``
            pairs; wrap a trusted Python function with `trusted`, untrusted code with
            `sandboxed_factors`.
        hidden: the decoder's hidden width.
        seed: seeds the decoder's initialisation and RRD's subsets.
        stats: batches that fell back to the env's rewards since the run began, in all and by
            `SandboxError` kind (logged per iteration as ``lare/fallbacks...``).
    """

    factors: FactorFunction
    hidden: int = 32
    seed: int = 0
    stats: dict[str, int] = field(default_factory=_fresh_stats)
    _warned: set[str] = field(default_factory=set, repr=False)
    decoder: RewardDecoder | None = field(default=None, repr=False)
    _optimizer: torch.optim.Optimizer | None = field(default=None, repr=False)
    _generator: torch.Generator | None = field(default=None, repr=False)

    def factors_or_fallback(
        self, inputs: Sequence[tuple[dict[str, Any], str]]
    ) -> tuple[np.ndarray | None, SandboxError | None]:
        """The batch's factors as a (turns, K) array, or None and the reason to fall back.

        Only untrusted code fails this way (a `SandboxError`); a trusted function's exception
        propagates, since it is a bug to fix. Factors of another width than the decoder's
        (code whose factor count depends on the data) fall back too, as kind ``shape``.
        """
        try:
            factors = np.asarray(self.factors(inputs), dtype=np.float64)
        except SandboxError as error:
            return None, error
        width = None if self.decoder is None else self.decoder.net[0].in_features
        if factors.ndim != 2 or (width is not None and factors.shape[1] != width):
            shape = tuple(factors.shape)
            reason = f"factors of shape {shape}; the decoder takes {width} per turn"
            return None, SandboxError(reason, "shape")
        return factors, None

    def record_fallback(self, error: SandboxError) -> None:
        """Count a batch that fell back; warn the first time each kind happens."""
        self.stats["fallbacks"] += 1
        self.stats[f"fallbacks_{error.kind}"] += 1
        if error.kind not in self._warned:
            self._warned.add(error.kind)
            warnings.warn(
                f"lare: the factor code failed ({error.kind}: {error}); this batch uses the "
                "env's rewards instead, and so will later ones that fail this way (counted in "
                f"lare/fallbacks_{error.kind}; not warned again)",
                stacklevel=3,
            )

    @staticmethod
    def trusted(fn: Callable[[dict[str, Any], str], Sequence[float]]) -> FactorFunction:
        """Batch a trusted per-turn function (for example a hand-written one) in-process."""
        return lambda inputs: [[float(v) for v in fn(state, action)] for state, action in inputs]

    def _setup(self, n_factors: int, lr: float) -> None:
        generator = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng():  # seed the decoder's init without touching global RNG
            torch.manual_seed(self.seed)
            self.decoder = RewardDecoder(n_factors, self.hidden)
        self._optimizer = torch.optim.Adam(self.decoder.parameters(), lr=lr)
        self._generator = generator

    def state_dict(self) -> dict[str, Any]:
        """What the decoder has learned, for checkpoints ({} before the first batch)."""
        if self.decoder is None:
            return {}
        return {
            "n_factors": self.decoder.net[0].in_features,
            "lr": self._optimizer.param_groups[0]["lr"],
            "decoder": self.decoder.state_dict(),
            "optimizer": self._optimizer.state_dict(),
            "generator": self._generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()`'s output (so a resumed run continues exactly)."""
        if not state:
            return
        state = copy.deepcopy(state)  # Adam would otherwise share its moments with the source
        self._setup(state["n_factors"], state["lr"])
        self.decoder.load_state_dict(state["decoder"])
        self._optimizer.load_state_dict(state["optimizer"])
        self._generator.set_state(state["generator"])

    def fit_and_predict(
        self,
        factors: np.ndarray,
        episode_of_turn: np.ndarray,
        returns: np.ndarray,
        *,
        variant: str = "rd",
        updates: int = 50,
        lr: float = 1e-2,
    ) -> np.ndarray:
        """Train the decoder on this batch (`updates` Adam steps), then predict every turn's
        reward."""
        if variant not in VARIANTS:
            raise ValueError(f"lare: variant={variant!r} is not one of {VARIANTS}")
        x = torch.as_tensor(factors, dtype=torch.float32)
        if x.ndim != 2 or x.shape[0] != len(episode_of_turn):
            raise ValueError(
                f"lare: factors of shape {tuple(x.shape)} for {len(episode_of_turn)} turns"
            )
        if self.decoder is None:
            self._setup(x.shape[1], lr)
        index = torch.as_tensor(episode_of_turn, dtype=torch.long)
        target = torch.as_tensor(returns, dtype=torch.float32)
        for _ in range(updates):
            loss = decomposition_loss(self.decoder(x), index, target, variant, self._generator)
            self._optimizer.zero_grad()
            loss.backward()
            self._optimizer.step()
        with torch.no_grad():
            return self.decoder(x).numpy().astype(np.float64)


def lare_rewards(
    episodes: Sequence[Episode],
    context: CreditContext | None,
    *,
    variant: str = "rd",
    updates: int = 50,
    lr: float = 1e-2,
) -> list[np.ndarray]:
    """Decoded latent rewards per turn, the decoder first trained on this batch's returns.

    Args:
        episodes: the batch; returns are the sums of the env's turn rewards.
        context: must hold ``extras={"lare": LatentReward(...)}`` (factor function + decoder).
        variant: ``"rd"`` or ``"rrd"`` return decomposition.
        updates: decoder Adam steps on each batch (online training).
        lr: the decoder's learning rate.
    """
    latent: LatentReward = (context or CreditContext()).require("lare", "the lare shaper (LaRe)")
    inputs = [
        (dict(turn.next_info.get(SYMBOLIC_STATE, {})), turn.action)
        for ep in episodes
        for turn in ep.turns
    ]
    if not inputs:
        return [np.zeros(0) for _ in episodes]
    factors, error = latent.factors_or_fallback(inputs)
    if error is not None:
        return _fall_back(episodes, latent, error)
    lengths = [len(ep.turns) for ep in episodes]
    # The unit of decomposition: an episode, or, in multi-agent rollouts, every agent's turns of
    # one rollout together (their predicted rewards add up to the one team return).
    units: dict[Any, int] = {}
    unit_of_episode = [
        units.setdefault(
            ("team", ep.metadata["team_rollout"])
            if "team_rollout" in ep.metadata
            else ("episode", i),
            len(units),
        )
        for i, ep in enumerate(episodes)
    ]
    returns = np.zeros(len(units))
    for unit, ep in zip(unit_of_episode, episodes):
        returns[unit] = sum(
            turn.reward for turn in ep.turns
        )  # the same team return for every agent
    episode_of_turn = np.repeat(np.array(unit_of_episode, dtype=np.int64), lengths)
    predicted = latent.fit_and_predict(
        factors, episode_of_turn, returns, variant=variant, updates=updates, lr=lr
    )
    turns = (turn for ep in episodes for turn in ep.turns)
    for turn, turn_factors, reward in zip(turns, factors.tolist(), predicted.tolist()):
        turn.credit_details["lare"] = {"factors": turn_factors, "decoded_reward": reward}
    return np.split(predicted, np.cumsum(lengths)[:-1])


def _fall_back(
    episodes: Sequence[Episode], latent: LatentReward, error: SandboxError
) -> list[np.ndarray]:
    """The env's own turn rewards for a batch whose factors failed, each turn marked."""
    latent.record_fallback(error)
    detail = {"fallback": error.kind, "error": str(error)[:200]}
    for ep in episodes:
        for turn in ep.turns:
            turn.credit_details["lare"] = dict(detail)
    return [np.array([turn.reward for turn in ep.turns], dtype=np.float64) for ep in episodes]


# The caller builds the factor function + decoder `credit.lare_factors` names into
# `context.extras["lare"]` (its decoder state is checkpointed under that key). The decoder is
# trained on each batch's returns: under several processes each would fit only its shard.
register_shaper(
    "lare",
    requires=(Requirement("latent_reward", key="lare", setting="lare_factors"),),
    multiprocess=False,
)(lare_rewards)

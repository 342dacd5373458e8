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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from creditgym.credit.context import CreditContext
from creditgym.credit.modules import Requirement
from creditgym.credit.registry import register_shaper
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
    code: str, *, time_limit: float = 10.0, memory_mb: int = 512
) -> FactorFunction:
    """A factor function from untrusted code: one sandboxed process per batch of turns."""

    def factors(inputs: Sequence[tuple[dict[str, Any], str]]) -> list[list[float]]:
        return run_sandboxed(code, inputs, time_limit=time_limit, memory_mb=memory_mb)

    return factors


@dataclass
class LatentReward:
    """A factor function and the decoder learning to turn its factors into turn rewards.

    Attributes:
        factors: ``inputs -> factor lists`` for a batch of ``(symbolic_state, action)``
            pairs; wrap a trusted Python function with `trusted`, untrusted code with
            `sandboxed_factors`.
        hidden: the decoder's hidden width.
        seed: seeds the decoder's initialisation and RRD's subsets.
    """

    factors: FactorFunction
    hidden: int = 32
    seed: int = 0
    decoder: RewardDecoder | None = field(default=None, repr=False)
    _optimizer: torch.optim.Optimizer | None = field(default=None, repr=False)
    _generator: torch.Generator | None = field(default=None, repr=False)

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
    factors = np.asarray(latent.factors(inputs), dtype=np.float64)
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


# The caller builds the factor function + decoder `credit.lare_factors` names into
# `context.extras["lare"]` (its decoder state is checkpointed under that key). The decoder is
# trained on each batch's returns: under several processes each would fit only its shard.
register_shaper(
    "lare",
    requires=(Requirement("latent_reward", key="lare", setting="lare_factors"),),
    multiprocess=False,
)(lare_rewards)

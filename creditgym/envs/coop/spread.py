"""MPE's cooperative navigation (``simple_spread``, from the `mpe2` package) as a text ParallelEnv.

N agents must cover N landmarks without colliding: LaRe's original multi-agent setting. Each
agent reads its position and velocity and where the landmarks and teammates are relative to
it, and answers one of five moves. By default the reward is episodic as in LaRe: the sum of
MPE's team rewards over the episode, given at the last step (``episodic=False`` passes MPE's
per-step rewards through). Per-agent ``info`` has the creditgym keys; ``symbolic_state`` holds
the numbers the text describes (documented in `STATE_DOC`) for latent-reward code, and
``anchor`` the agents' positions on a 0.25 grid (continuous states rarely repeat exactly).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from creditgym.envs import info as keys
from creditgym.envs.coop.env import bad_actions_message, normalise_action
from creditgym.envs.optional import require
from creditgym.envs.reset_args import reset_arguments
from creditgym.envs.spaces import text_space

__all__ = ["TextSpreadEnv", "SPREAD_STATE_DOC", "spread_factors"]

MOVES = ("stay", "move left", "move right", "move down", "move up")  # MPE's discrete actions 0-4
COVERED = 0.1  # a landmark is covered when an agent is this close

SPREAD_STATE_DOC = """\
x, y: this agent's position; vx, vy: its velocity
landmark_<k>_dx, landmark_<k>_dy: landmark k relative to this agent (k = 0..N-1)
landmark_<k>_nearest: distance from landmark k to the closest agent
teammate_<j>_dx, teammate_<j>_dy: other agents relative to this agent (j = 0..N-2)
collisions: how many teammates this agent overlaps
covered: landmarks with an agent within 0.1"""


def spread_factors(state: dict[str, Any], action: str) -> list[float]:
    """Hand-written LaRe factors: how far this agent is from its closest landmark, how well
    the landmarks are covered, and collisions."""
    # list comprehensions, not generators: this function must pass the LaRe sandbox's allow-list
    landmarks = sorted(
        [k[: -len("_dx")] for k in state if k.startswith("landmark_") and k.endswith("_dx")]
    )
    mine = (
        min([math.hypot(state[f"{k}_dx"], state[f"{k}_dy"]) for k in landmarks])
        if landmarks
        else 0.0
    )
    coverage = sum([state.get(f"{k}_nearest", 0.0) for k in landmarks])
    return [-mine, -coverage, -state.get("collisions", 0.0), state.get("covered", 0.0)]


class TextSpreadEnv(ParallelEnv):
    """MPE ``simple_spread`` with text observations and actions (see the module docstring).

    Args:
        agents: N agents and N landmarks (3 in MPE and LaRe).
        max_cycles: steps per episode.
        local_ratio: MPE's weight of the local (collision) reward.
        episodic: give the summed team reward at the end only (LaRe's setting).

    Bad actions never raise: an agent's move is read ignoring case, spacing and a final full
    stop; one that is not a move, not a string or missing means "stay" with ``valid=False``.
    If `step` gets something other than a dict, every agent stays and the observation says
    what `step` expects. After the episode ends `step` returns five empty dicts.
    """

    metadata = {  # noqa: RUF012  (PettingZoo's convention)
        "name": "text_spread_v0",
        "render_modes": [],
        "is_parallelizable": True,
        "symbolic_state_doc": SPREAD_STATE_DOC,
        "latent_factors": "creditgym.envs.coop.spread:spread_factors",
    }

    def __init__(
        self, agents: int = 3, max_cycles: int = 25, local_ratio: float = 0.5, episodic: bool = True
    ) -> None:
        spread = require("mpe2.simple_spread_v3", "multiagent")
        self._env = spread.parallel_env(
            N=agents, local_ratio=local_ratio, max_cycles=max_cycles, continuous_actions=False
        )
        self.possible_agents = list(self._env.possible_agents)
        self.agents: list[str] = []
        self.episodic = episodic
        self.task = (
            f"cooperative navigation: your team of {agents} must cover all {agents} landmarks, "
            "one agent on each, without bumping into each other."
        )

    @functools.cache  # noqa: B019  (PettingZoo's convention)
    def observation_space(self, agent: str) -> spaces.Space:
        return text_space()

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Space:
        return text_space()

    def _world(self) -> Any:
        return self._env.unwrapped.world

    def _symbolic(self, agent: str) -> dict[str, float]:
        world = self._world()
        me = next(a for a in world.agents if a.name == agent)
        pos, vel = me.state.p_pos, me.state.p_vel
        state = {"x": float(pos[0]), "y": float(pos[1]), "vx": float(vel[0]), "vy": float(vel[1])}
        positions = np.array([a.state.p_pos for a in world.agents])
        covered = 0
        for k, landmark in enumerate(world.landmarks):
            delta = landmark.state.p_pos - pos
            nearest = float(np.min(np.linalg.norm(positions - landmark.state.p_pos, axis=1)))
            state.update({f"landmark_{k}_dx": float(delta[0]), f"landmark_{k}_dy": float(delta[1])})
            state[f"landmark_{k}_nearest"] = nearest
            covered += nearest < COVERED
        others = [a for a in world.agents if a.name != agent]
        for j, other in enumerate(others):
            delta = other.state.p_pos - pos
            state.update({f"teammate_{j}_dx": float(delta[0]), f"teammate_{j}_dy": float(delta[1])})
        state["collisions"] = float(
            sum(np.linalg.norm(o.state.p_pos - pos) < o.size + me.size for o in others)
        )
        state["covered"] = float(covered)
        return state

    def _text(self, agent: str, state: dict[str, float]) -> str:
        def where(dx: float, dy: float) -> str:
            east_west = "east" if dx >= 0 else "west"
            north_south = "north" if dy >= 0 else "south"
            return f"{abs(dx):.2f} {east_west}, {abs(dy):.2f} {north_south}"

        n = len(self._world().landmarks)
        landmarks = "; ".join(
            f"landmark {k}: {where(state[f'landmark_{k}_dx'], state[f'landmark_{k}_dy'])}"
            for k in range(n)
        )
        mates = [a for a in self.possible_agents if a != agent]
        teammates = "; ".join(
            f"{name}: {where(state[f'teammate_{j}_dx'], state[f'teammate_{j}_dy'])}"
            for j, name in enumerate(mates)
        )
        return (
            f"You are at ({state['x']:.2f}, {state['y']:.2f}), "
            f"moving ({state['vx']:.2f}, {state['vy']:.2f}). "
            f"Landmarks relative to you: {landmarks}. Teammates: {teammates}. "
            f"Landmarks covered: {int(state['covered'])} of {n}."
        )

    def _info(
        self, agent: str, state: dict[str, float], valid: bool, events: list[str]
    ) -> dict[str, Any]:
        grid = tuple(
            tuple(float(v) for v in np.round(a.state.p_pos * 4) / 4) for a in self._world().agents
        )
        return {
            keys.TASK: f"You are {agent}; {self.task}",
            keys.TASK_TYPE: "cooperative_navigation",
            keys.ADMISSIBLE_ACTIONS: list(MOVES),
            keys.ANCHOR: (agent, grid),
            keys.WON: state["covered"] == len(self._world().landmarks),
            keys.VALID: valid,
            keys.SYMBOLIC_STATE: state,
            keys.EVENTS: events,
        }

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        seed, options = reset_arguments(seed, options, type(self).__name__)
        self._env.reset(seed=seed)
        self.agents = list(self._env.agents)
        self._return = 0.0
        self._covered: set[int] = set()
        states = {a: self._symbolic(a) for a in self.agents}
        observations = {a: self._text(a, states[a]) for a in self.agents}
        return observations, {a: self._info(a, states[a], True, []) for a in self.agents}

    def step(self, actions: dict[str, str]) -> tuple[dict, dict, dict, dict, dict]:
        """One team step; see the class docstring for what bad actions do."""
        if not self.agents:  # the episode is over: PettingZoo's empty answer, nothing changes
            return {}, {}, {}, {}, {}
        wrong_type = not isinstance(actions, Mapping)
        chosen = {a: "" if wrong_type else normalise_action(actions.get(a)) for a in self.agents}
        valid = {a: chosen[a] in MOVES for a in self.agents}
        moves = {a: MOVES.index(chosen[a]) if valid[a] else 0 for a in self.agents}  # else stay
        _, rewards, terminations, truncations, _ = self._env.step(moves)
        team = float(np.mean([rewards[a] for a in self.agents]))
        self._return += team
        done = not self._env.agents
        states = {a: self._symbolic(a) for a in self.agents}
        newly = [
            k
            for k in range(len(self._world().landmarks))
            if states[self.agents[0]][f"landmark_{k}_nearest"] < COVERED and k not in self._covered
        ]
        self._covered.update(newly)
        events = [f"landmark {k} covered" for k in newly]
        if self.episodic:
            rewards = {a: (self._return if done else 0.0) for a in self.agents}
        observations = {a: self._text(a, states[a]) for a in self.agents}
        if wrong_type:
            observations = {
                a: f"{text} {bad_actions_message(actions, 'stay')}"
                for a, text in observations.items()
            }
        infos = {a: self._info(a, states[a], valid[a], events) for a in self.agents}
        result = (
            observations,
            {a: float(rewards[a]) for a in self.agents},
            {a: bool(terminations[a]) for a in self.agents},
            {a: bool(truncations[a]) for a in self.agents},
            infos,
        )
        self.agents = list(self._env.agents)
        return result

    def close(self) -> None:
        self._env.close()

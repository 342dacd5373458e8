"""What a multi-agent (PettingZoo ``ParallelEnv``) rollout needs beyond a single-agent one.

The rollout loop (`creditgym.rollout.collect`) is one loop for both kinds: a single-agent env is
played as one agent. Here live the parts that differ: telling the kinds apart, the `Seat`
scripted policies are given for one agent of a shared env, and which agents are still live
after a step. Every agent of a multi-agent env is played by the same policy (the agent's name
is in its task line); an agent's turns form its own `Episode` (``agent_id`` set) with the team
reward on its turns and ``group_id`` = (the task's group, the agent), so group-relative credit
compares an agent with itself across the rollouts of one task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Seat", "is_multiagent", "live_agents"]


def is_multiagent(env: Any) -> bool:
    """True for PettingZoo ``ParallelEnv``s (and Ray proxies of them), which name their agents."""
    return getattr(env, "possible_agents", None) is not None


@dataclass
class Seat:
    """One agent of one env, as scripted policies see it (`seat.unwrapped.expert_action()`)."""

    env: Any
    agent: str

    @property
    def unwrapped(self) -> Seat:
        return self

    def expert_action(self) -> str:
        return self.env.expert_actions()[self.agent]


def live_agents(
    env: Any, previous: Sequence[str], terminations: dict, truncations: dict
) -> list[str]:
    """The agents still acting after a step: the env's own list where it keeps one in this
    process, else those of `previous` that were neither terminated nor truncated."""
    agents = getattr(env, "agents", None)
    if agents is not None:
        return list(agents)
    return [a for a in previous if not (terminations.get(a, True) or truncations.get(a, False))]

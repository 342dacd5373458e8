"""A cooperative household as a PettingZoo `ParallelEnv`: N agents, one house, one team task.

The team must put N objects of one type (``apple 1``, ``apple 2``, ...) on one receptacle,
in ALFWorld's command grammar. Each agent carries one object at a time and sees only the
receptacle it stands at (and teammates standing there); the team reward, 1.0 for every agent,
comes when the last object is placed. Actions of one step apply in agent order, so when two
agents reach for the same object the first one gets it and the other gets "Nothing happens.".

Per-agent ``info`` has the single-agent keys (`creditgym.envs.info`): ``task``,
``admissible_actions``, ``anchor`` (the agent's place and load, with every object's place),
``won``, ``valid``, ``symbolic_state`` and ``events``. `expert_actions()` gives every agent's
next move of a plan that sends agent i for the i-th object. Oracles for measuring credit:
`steps_to_go()` (the team's remaining steps under that plan) and
`clone_state()`/`restore_state()`.
"""

from __future__ import annotations

import copy
import functools
import random
from collections.abc import Mapping
from typing import Any

from gymnasium import spaces
from pettingzoo import ParallelEnv

from creditgym.envs import info as keys
from creditgym.envs.oracle import restore_attributes, snapshot_attributes
from creditgym.envs.reset_args import reset_arguments
from creditgym.envs.spaces import text_space

__all__ = [
    "CoopHouseholdEnv",
    "STATE_DOC",
    "latent_factors",
    "normalise_action",
    "bad_actions_message",
]

RECEPTACLES = (
    "countertop", "diningtable", "cabinet", "drawer", "shelf", "sidetable", "fridge", "sinkbasin",
    "coffeetable", "dresser", "desk", "stoveburner",
)  # fmt: skip
OBJECT_TYPES = ("apple", "mug", "book", "tomato", "cup", "spoon", "bowl", "potato", "vase", "pen")
MIDDLE = "the middle of the room"
_MAX_PLAN = 10_000  # more team steps than any plan needs: a planner bug

STATE_DOC = """\
holding_target: 1.0 if this agent holds an object of the task's type
at_target: 1.0 if this agent stands at the target receptacle
placed: how many task objects are on the target receptacle
needed: how many task objects the task needs there
teammates_holding: how many other agents hold a task object
steps: steps taken so far"""


def latent_factors(state: dict[str, Any], action: str) -> list[float]:
    """Hand-written LaRe factors of one agent's turn (`state` is that agent's state after the
    team's step): what *this* agent did, so the decoder can tell teammates' shares apart."""
    holding, at_target = state.get("holding_target", 0.0), state.get("at_target", 0.0)
    return [
        holding,  # carries a task object
        holding * at_target,  # ... and stands where it goes
        float(action.startswith("move ")) * at_target,  # put something down at the target
        float(action.startswith("take ")) * holding,  # picked a task object up
    ]


def normalise_action(action: Any) -> str:
    """An agent's action as the admissible text: lower case, single spaces, no final full stop
    (as the single-agent household reads commands); anything but a string is no action ("")."""
    if not isinstance(action, str):
        return ""
    return " ".join(action.lower().split()).rstrip(".")


def bad_actions_message(actions: Any, example: str = "look") -> str:
    """What the observation adds when `step` got something other than a dict of actions."""
    return (
        f"(step() takes a dict of one action string per agent, e.g. {{'agent_0': {example!r}}}; "
        f"got {type(actions).__name__}, so every agent did nothing.)"
    )


class CoopHouseholdEnv(ParallelEnv):
    """N agents put N objects of one type on one receptacle together (team reward).

    Bad actions never raise. Each agent's action is read like the single-agent household's
    (case, spacing and a final full stop do not matter); one that is not admissible, not a
    string, or missing from the dict is "Nothing happens." with ``valid=False``, and the step
    still counts. If `step` gets something other than a dict (``None``, a string, a list),
    every agent does nothing and the observation says what `step` expects. After the episode
    ends (no live agents) `step` returns five empty dicts and changes nothing.

    Args:
        agents: number of agents (2 or 3), and of objects to place.
        receptacles: receptacles in the room (at least agents + 1).
        distractors: other objects lying around.
        max_steps: team steps before truncation.
        render_mode: ``"ansi"`` or None.
    """

    metadata = {  # noqa: RUF012  (PettingZoo's convention)
        "name": "coop_household_v0",
        "render_modes": ["ansi"],
        "is_parallelizable": True,
        # for LaRe: the documented symbolic_state fields and our hand-written factor function
        "symbolic_state_doc": STATE_DOC,
        "latent_factors": "creditgym.envs.coop.env:latent_factors",
    }

    def __init__(
        self,
        agents: int = 2,
        receptacles: int = 5,
        distractors: int = 2,
        max_steps: int = 20,
        render_mode: str | None = None,
    ) -> None:
        if not 2 <= agents <= 3:
            raise ValueError(f"agents={agents}; the cooperative household has 2 or 3 agents")
        if receptacles < agents + 1:
            raise ValueError(
                f"receptacles={receptacles} is too few for {agents} agents; "
                f"use at least {agents + 1}"
            )
        self.possible_agents = [f"agent_{i}" for i in range(agents)]
        self.agents: list[str] = []
        self.n_receptacles, self.n_distractors, self.max_steps = receptacles, distractors, max_steps
        self.render_mode = render_mode

    @functools.cache  # noqa: B019  (PettingZoo's convention: one space object per agent)
    def observation_space(self, agent: str) -> spaces.Space:
        return text_space()

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Space:
        return text_space()

    # ---- the world -------------------------------------------------------------------------

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        seed, options = reset_arguments(seed, options, type(self).__name__)
        rng = random.Random(seed)
        kinds = rng.sample(RECEPTACLES, self.n_receptacles)
        self.places = [f"{kind} 1" for kind in kinds]
        self.target = self.places[0]
        kind = rng.choice(OBJECT_TYPES)
        self.targets = [f"{kind} {i + 1}" for i in range(len(self.possible_agents))]
        others = [t for t in OBJECT_TYPES if t != kind]
        distractors = [f"{rng.choice(others)} {i + 1}" for i in range(self.n_distractors)]
        self.where = {obj: rng.choice(self.places[1:]) for obj in self.targets}
        self.where.update({obj: rng.choice(self.places) for obj in dict.fromkeys(distractors)})
        self.agents = list(self.possible_agents)
        self.loc = dict.fromkeys(self.agents, MIDDLE)
        self.held: dict[str, str | None] = dict.fromkeys(self.agents)
        self.steps = 0
        plural = kind + ("es" if kind.endswith("o") else "s")
        self.task = (
            f"your team of {len(self.agents)} must put all {len(self.targets)} {plural} "
            f"in {self.target}."
        )
        intro = (
            "You are in the middle of a room. Looking around you, you see "
            f"{', '.join(self.places)}."
        )
        self._messages = dict.fromkeys(self.agents, intro)
        self._last_infos = {a: self._info(a, valid=True, events=[]) for a in self.agents}
        self._plan_lengths: dict[tuple, int] = {}  # the team's state -> the expert's steps
        return dict(self._messages), self._last_infos

    def _placed(self) -> int:
        return sum(self.where.get(obj) == self.target for obj in self.targets)

    def _at(self, place: str) -> list[str]:
        return sorted(obj for obj, at in self.where.items() if at == place)

    def admissible_actions(self, agent: str) -> list[str]:
        loc, held = self.loc[agent], self.held[agent]
        actions = [f"go to {p}" for p in self.places if p != loc]
        if loc != MIDDLE:
            if held is None:
                actions += [f"take {obj} from {loc}" for obj in self._at(loc)]
            else:
                actions.append(f"move {held} to {loc}")
        return actions + ["look", "inventory"]

    def _apply(self, agent: str, action: str) -> tuple[str, list[str]]:
        """Carry out one agent's action: (its feedback, its events)."""
        if action not in self.admissible_actions(agent):
            return "Nothing happens.", []
        loc = self.loc[agent]
        if action.startswith("go to "):
            place = action[len("go to ") :]
            self.loc[agent] = place
            things = self._at(place)
            mates = [a for a in self.agents if a != agent and self.loc[a] == place]
            seen = f"On the {place}, you see {', '.join(things) if things else 'nothing'}."
            company = (
                f" {', '.join(mates)} {'is' if len(mates) == 1 else 'are'} here." if mates else ""
            )
            found = [f"found {obj}" for obj in things if obj in self.targets]
            return f"You arrive at {place}. {seen}{company}", found
        if action.startswith("take "):
            obj = action[len("take ") : action.index(" from ")]
            self.held[agent], self.where[obj] = obj, None
            return f"You pick up the {obj} from the {loc}.", [
                f"took {obj}"
            ] if obj in self.targets else []
        if action.startswith("move "):
            obj = self.held[agent]
            self.held[agent], self.where[obj] = None, loc
            placed = obj in self.targets and loc == self.target
            return f"You move the {obj} to the {loc}.", [f"placed {obj} in {loc}"] if placed else []
        if action == "inventory":
            return (
                f"You are carrying: {self.held[agent]}."
                if self.held[agent]
                else "You are not carrying anything."
            ), []
        things = self._at(loc) if loc != MIDDLE else []
        where = "in the middle of the room" if loc == MIDDLE else f"facing the {loc}"
        return (
            f"You are {where}. Next to it, you see {', '.join(things) if things else 'nothing'}.",
            [],
        )

    def step(self, actions: dict[str, str]) -> tuple[dict, dict, dict, dict, dict]:
        """One team step; see the class docstring for what bad actions do."""
        if not self.agents:  # the episode is over: PettingZoo's empty answer, nothing changes
            return {}, {}, {}, {}, {}
        self.steps += 1
        events: dict[str, list[str]] = {}
        valid: dict[str, bool] = {}
        wrong_type = not isinstance(actions, Mapping)
        for agent in self.agents:  # in agent order: the first to reach for an object gets it
            action = "" if wrong_type else normalise_action(actions.get(agent, ""))
            valid[agent] = action in self.admissible_actions(agent)
            self._messages[agent], events[agent] = self._apply(agent, action)
            if wrong_type:
                self._messages[agent] += f" {bad_actions_message(actions)}"
        won = self._placed() == len(self.targets)
        truncated = not won and self.steps >= self.max_steps
        observations = dict(self._messages)
        rewards = {a: float(won) for a in self.agents}
        terminations = dict.fromkeys(self.agents, won)
        truncations = dict.fromkeys(self.agents, truncated)
        infos = {a: self._info(a, valid[a], events[a]) for a in self.agents}
        if won or truncated:
            self.agents = []
        self._last_infos = infos
        return observations, rewards, terminations, truncations, infos

    def _info(self, agent: str, valid: bool, events: list[str]) -> dict[str, Any]:
        held = self.held[agent]
        placed = self._placed()
        return {
            keys.TASK: f"You are {agent}; {self.task}",
            keys.TASK_TYPE: "coop_pick_and_place",
            keys.ADMISSIBLE_ACTIONS: self.admissible_actions(agent),
            keys.ANCHOR: (
                agent,
                self.loc[agent],
                held,
                tuple(sorted((o, str(w)) for o, w in self.where.items())),
            ),
            keys.WON: placed == len(self.targets),
            keys.VALID: valid,
            keys.SYMBOLIC_STATE: {
                "holding_target": float(held in self.targets),
                "at_target": float(self.loc[agent] == self.target),
                "placed": float(placed),
                "needed": float(len(self.targets)),
                "teammates_holding": float(
                    sum(self.held[a] in self.targets for a in self.held if a != agent)
                ),
                "steps": float(self.steps),
            },
            keys.EVENTS: events,
        }

    # ---- the expert --------------------------------------------------------------------------

    def expert_actions(self) -> dict[str, str]:
        """Every live agent's next move: agent i fetches target object i and places it.

        From states the plan never reaches itself (after other moves) it still finishes: an
        agent carries whatever task object it holds to the target, puts anything else down
        where it stands, and an agent whose own object is placed or carried by a teammate
        takes over a task object nobody is fetching (in agent order), or waits (``look``).
        """
        free = [
            obj
            for obj in self.targets
            if self.where.get(obj) not in (self.target, None)  # neither placed nor carried
        ]
        idle = []
        for i, agent in enumerate(self.agents):
            if self.held[agent] is None and self.targets[i] in free:
                free.remove(self.targets[i])
            elif self.held[agent] is None:
                idle.append(agent)
        chosen = dict(zip(idle, free))
        moves = {}
        for i, agent in enumerate(self.agents):
            held, loc = self.held[agent], self.loc[agent]
            obj = chosen.get(agent, self.targets[i])
            if held in self.targets:
                moves[agent] = (
                    f"move {held} to {self.target}"
                    if loc == self.target
                    else f"go to {self.target}"
                )
            elif held is not None:
                moves[agent] = f"move {held} to {loc}"  # hands free for a task object first
            elif agent in idle and agent not in chosen:
                moves[agent] = "look"  # nothing left to fetch: wait for the team
            elif loc == self.where[obj]:
                moves[agent] = f"take {obj} from {loc}"
            else:
                moves[agent] = f"go to {self.where[obj]}"
        return moves

    def steps_to_go(self) -> int:
        """The team's steps to win under `expert_actions` from the current state (0 once won).

        The plan is played out on a copy, so this is exactly its count; the step budget is
        ignored (a truncated episode still gets its count, for its last turn's progress label).
        """
        if self._placed() == len(self.targets):
            return 0
        key = (tuple(self.loc.values()), tuple(self.held.values()), tuple(self.where.items()))
        if key not in self._plan_lengths:
            sim = copy.copy(self)
            sim.agents, sim.loc, sim.held = (
                list(self.possible_agents),
                dict(self.loc),
                dict(self.held),
            )
            sim.where, sim._messages, sim.max_steps = dict(self.where), dict(self._messages), 2**62
            steps = 0
            while sim.agents:
                if steps >= _MAX_PLAN:
                    raise RuntimeError(f"the coop expert did not win within {_MAX_PLAN} steps")
                sim.step(sim.expert_actions())
                steps += 1
            self._plan_lengths[key] = steps
        return self._plan_lengths[key]

    def clone_state(self) -> object:
        """An opaque snapshot of the whole team state (last observations and infos included)."""
        if not hasattr(self, "steps"):
            raise RuntimeError("call reset() before clone_state()")
        return snapshot_attributes(self, (self._plan_lengths,))

    def restore_state(self, snapshot: object) -> tuple[dict[str, str], dict[str, dict]]:
        """Return to `snapshot`; gives that moment's per-agent observations and infos, and the
        env continues exactly as it did then."""
        restore_attributes(self, snapshot)
        return dict(self._messages), self._last_infos

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return "\n".join(f"{a}: {self._messages[a]}" for a in self.possible_agents)

    def close(self) -> None:
        pass

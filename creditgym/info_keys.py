"""Names of the `info` keys every creditgym environment provides.

Environments, agents and credit modules refer to these constants, never to string literals,
so a key is spelled in exactly one place. This module imports nothing, so every layer may use
it (`creditgym.envs.info` re-exports it for env authors).

=====================  =======================================================================
key                    meaning
=====================  =======================================================================
``task``               the instruction the agent sees (str).
``admissible_actions`` valid actions in the current state (list[str]); absent only for
                       free-text tools.
``anchor``             hashable canonical key of the *true* environment state, not just the
                       last message. Two states with the same anchor are the same decision
                       point (GiGPO's step grouping relies on this).
``won``                whether the task is solved (bool).
``valid``              whether the last action was understood (bool); True after reset.
``answer``             ground truth of question-answering tasks (IGPO); never shown to the
                       agent.
``symbolic_state``     flat dict of named numbers describing the state (LaRe's latent reward
                       code reads it).
``events``             subgoal events the last step caused, from the env's own state
                       (list[str]); the oracle CALM's LLM judge is scored against.
``task_type``          the task family (str), for per-type evaluation tables.
=====================  =======================================================================
"""

from __future__ import annotations

TASK = "task"
ADMISSIBLE_ACTIONS = "admissible_actions"
ANCHOR = "anchor"
WON = "won"
VALID = "valid"
ANSWER = "answer"
SYMBOLIC_STATE = "symbolic_state"
EVENTS = "events"
TASK_TYPE = "task_type"

#: Keys every single-agent text env must provide after `reset` and after every `step`.
REQUIRED_KEYS = (TASK, ANCHOR, WON, VALID, SYMBOLIC_STATE, EVENTS)

__all__ = [
    "TASK",
    "ADMISSIBLE_ACTIONS",
    "ANCHOR",
    "WON",
    "VALID",
    "ANSWER",
    "SYMBOLIC_STATE",
    "EVENTS",
    "TASK_TYPE",
    "REQUIRED_KEYS",
]

"""Hand-written latent-reward factors for the household envs (LaRe's offline default).

LaRe has an LLM write ``evaluate(state, action) -> list[float]`` from the task and the
documented ``symbolic_state`` fields; this is the function a person writes from the same
documentation, used when no LLM is configured. `state` is the ``symbolic_state`` after the
action.
"""

from __future__ import annotations

from typing import Any

__all__ = ["STATE_DOC", "latent_factors"]

STATE_DOC = """\
holding: 1.0 if the agent holds an object, else 0.0
holding_target: 1.0 if the held object is one the task asks for
target_ready_in_hand: 1.0 if the held target object is already clean/hot/cool as the task \
needs (or needs nothing)
targets_visible: how many task objects the agent can see where it stands
at_target_receptacle: 1.0 if the agent stands at the receptacle the task names (or the desk lamp)
lamp_on: 1.0 if the desk lamp here is on
placed: task objects already in or on the target receptacle
needed: task objects the task needs placed
progress: fraction of the task's subgoals done (0 to 1)
steps: actions taken so far"""


def latent_factors(state: dict[str, Any], action: str) -> list[float]:
    """Progress, holding the right (and ready) object, being where it goes, seeing targets, lost
    time."""
    needed = max(state.get("needed", 1.0), 1.0)
    return [
        state.get("progress", 0.0),
        state.get("holding_target", 0.0),
        state.get("target_ready_in_hand", 0.0) * state.get("holding_target", 0.0),
        state.get("at_target_receptacle", 0.0) * state.get("holding_target", 0.0),
        min(state.get("targets_visible", 0.0), 1.0),
        state.get("placed", 0.0) / needed,
        float(action in ("look", "inventory") or action.startswith("examine")),
    ]

"""Prompts: how a task, the recent history and the current observation become model input.

Two templates:

* ``"verl-agent"``: the structure of verl-agent's ALFWorld prompt (langfengQ/verl-agent,
  ``agent_system/environments/prompts/alfworld.py``), in our own words: a role sentence, the
  task, the last k (observation, action) pairs, the current step and observation, the
  admissible actions, and the instruction to reason inside ``<think> </think>`` and answer
  inside ``<action> </action>``. For instruction-tuned models; parse with
  ``parse_action(text, actions, require_tags=True)``.
* ``"compact"``: short and regular, for tiny models trained from scratch with constrained
  decoding. One ``key: value`` line per item and a fixed final marker (``action:``) after which
  the model writes the bare action; parse with ``require_tags=False``.

``chat_messages`` gives the same content as a system/user message list for chat models.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["COMPACT_MARKER", "ROLE", "TEMPLATES", "build_prompt", "chat_messages"]

#: The line a compact prompt ends with; the model's answer is the bare action after it.
COMPACT_MARKER = "action:"

#: The role sentence of the verl-agent template (and the system message of `chat_messages`).
ROLE = "You are an expert agent acting in a text environment, one action per step."

_ANSWER_FORMAT = (
    "It is your turn to act.\n"
    "First think step by step about the situation; put this reasoning inside <think> </think> "
    "tags.\n"
    "Then choose {which} action for this step and put it inside <action> </action> tags."
)


def _admissible_list(actions: Sequence[str]) -> str:
    return ", ".join(f"'{action}'" for action in actions)


def _verl_agent_body(
    task: str,
    observation: str,
    shown: Sequence[tuple[str, str]],
    steps_taken: int,
    admissible_actions: Sequence[str] | None,
) -> str:
    lines = [f"Your task is to: {task}"]
    if steps_taken:
        lines.append(
            f"Before this step you have taken {steps_taken} step(s). Here are the last "
            f"{len(shown)} observation(s) and the action you took after each:"
        )
        first = steps_taken - len(shown) + 1
        for number, (past_observation, past_action) in enumerate(shown, start=first):
            lines.append(
                f"[Observation {number}: '{past_observation}', Action {number}: '{past_action}']"
            )
        lines.append(
            f"You are now at step {steps_taken + 1} and your current observation is: {observation}"
        )
    else:
        lines.append(f"Your current observation is: {observation}")
    if admissible_actions is not None:
        lines.append(
            f"Your admissible actions in this situation are: [{_admissible_list(admissible_actions)}]."
        )
    which = "one admissible" if admissible_actions is not None else "one"
    return "\n".join(lines) + "\n\n" + _ANSWER_FORMAT.format(which=which)


def _compact(
    task: str,
    observation: str,
    shown: Sequence[tuple[str, str]],
    admissible_actions: Sequence[str] | None,
) -> str:
    lines = [f"task: {task}"]
    for past_observation, past_action in shown:
        lines.append(f"observation: {past_observation}")
        lines.append(f"{COMPACT_MARKER} {past_action}")
    lines.append(f"observation: {observation}")
    if admissible_actions is not None:
        lines.append("admissible: " + " | ".join(admissible_actions))
    lines.append(COMPACT_MARKER)
    return "\n".join(lines)


#: Template names `build_prompt` accepts.
TEMPLATES = ("verl-agent", "compact")


def _recent(history: Sequence[tuple[str, str]], history_length: int) -> list[tuple[str, str]]:
    if history_length < 0:
        raise ValueError(f"history_length must be >= 0, got {history_length}")
    return list(history[-history_length:]) if history_length else []


def _check_template(template: str) -> None:
    if template not in TEMPLATES:
        raise ValueError(
            f"unknown prompt template {template!r}; choose one of {', '.join(TEMPLATES)}"
        )


def build_prompt(
    task: str,
    observation: str,
    history: Sequence[tuple[str, str]] = (),
    admissible_actions: Sequence[str] | None = None,
    *,
    history_length: int = 2,
    template: str = "verl-agent",
    role: str = ROLE,
) -> str:
    """The text prompt for one decision.

    Args:
        task: the instruction (`info["task"]`).
        observation: the current observation.
        history: (observation, action) pairs of the previous turns, oldest first; only the
            last `history_length` are shown (the step count still counts all of them).
        admissible_actions: the valid actions now, listed in the prompt; None for free-text
            tools (the list is left out).
        history_length: how many previous turns to show.
        template: ``"verl-agent"`` or ``"compact"`` (see the module docstring).
        role: the opening role sentence of the ``"verl-agent"`` template.
    """
    _check_template(template)
    shown = _recent(history, history_length)
    if template == "compact":
        return _compact(task, observation, shown, admissible_actions)
    return role + " " + _verl_agent_body(task, observation, shown, len(history), admissible_actions)


def chat_messages(
    task: str,
    observation: str,
    history: Sequence[tuple[str, str]] = (),
    admissible_actions: Sequence[str] | None = None,
    *,
    history_length: int = 2,
    template: str = "verl-agent",
    role: str = ROLE,
) -> list[dict[str, str]]:
    """The prompt as chat messages: the role sentence as the system message, the rest as the user's.

    For the ``"compact"`` template there is no role sentence: one user message.
    """
    _check_template(template)
    shown = _recent(history, history_length)
    if template == "compact":
        return [{"role": "user", "content": _compact(task, observation, shown, admissible_actions)}]
    body = _verl_agent_body(task, observation, shown, len(history), admissible_actions)
    return [{"role": "system", "content": role}, {"role": "user", "content": body}]

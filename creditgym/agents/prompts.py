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

`PromptFormat` bundles the choices a rollout makes about prompts and responses: the template,
the context mode (``window``: one prompt of the task and the last k turns per decision;
``conversation``: the episode as a growing chat, see `Conversation`), whether responses carry
tags, and the think-then-act format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from creditgym.agents.parsing import (
    ACTION_CLOSE,
    ACTION_OPEN,
    THINK_CLOSE,
    THINK_OPEN,
    format_response,
)

__all__ = [
    "COMPACT_MARKER",
    "CONTEXT_MODES",
    "ROLE",
    "TEMPLATES",
    "Conversation",
    "PromptFormat",
    "build_prompt",
    "chat_messages",
]

#: The line a compact prompt ends with; the model's answer is the bare action after it.
COMPACT_MARKER = "action:"

#: The role sentence of the verl-agent template (and the system message of `chat_messages`).
ROLE = "You are an expert agent acting in a text environment, one action per step."

_ANSWER_FORMAT = (
    "It is your turn to act.\n"
    f"First think step by step about the situation; put this reasoning inside {THINK_OPEN} "
    f"{THINK_CLOSE} tags.\n"
    f"Then choose {{which}} action for this step and put it inside {ACTION_OPEN} {ACTION_CLOSE} "
    "tags."
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
            "Your admissible actions in this situation are: "
            f"[{_admissible_list(admissible_actions)}]."
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


#: Context modes of `PromptFormat.context`.
CONTEXT_MODES = ("window", "conversation")


@dataclass
class Conversation:
    """One agent's episode as a chat: a system message, then user/assistant turns.

    `state` belongs to the policy that generates for this conversation (an `HFPolicy` keeps
    the conversation's token ids and KV cache there); the rollout drops the object, and with it
    the cache, when the episode ends.
    """

    messages: list[dict[str, str]]
    state: Any = field(default=None, repr=False)

    def transcript(self) -> str:
        """The conversation as plain text, for logs and for policies without chat support."""
        return "\n".join(message["content"] for message in self.messages)


@dataclass(frozen=True)
class PromptFormat:
    """How observations become model input and responses become actions.

    Attributes:
        template: ``"compact"`` or ``"verl-agent"`` (see the module docstring).
        history_length: previous turns a ``window`` prompt shows.
        require_tags: responses carry ``<action>`` tags (False for constrained decoding of
            bare actions and for scripted policies).
        context: ``"window"`` (a fresh prompt per decision) or ``"conversation"`` (the episode
            as one growing chat through the model's chat template, KV cache kept across turns).
        think: think-then-act responses, ``<think>...</think><action>...</action>``.
        invalid_penalty: subtracted from a turn's reward when its response is invalid (wrong
            format, or not an admissible action).
    """

    template: str = "compact"
    history_length: int = 2
    require_tags: bool = False
    context: str = "window"
    think: bool = False
    invalid_penalty: float = 0.0

    def __post_init__(self) -> None:
        _check_template(self.template)
        if self.context not in CONTEXT_MODES:
            raise ValueError(
                f"unknown context mode {self.context!r}; choose one of {', '.join(CONTEXT_MODES)}"
            )
        if self.think and not self.require_tags:  # a think-then-act response is tagged
            object.__setattr__(self, "require_tags", True)

    def prompt(
        self,
        info: dict,
        observation: str,
        history: Sequence[tuple[str, str]],
        actions: Sequence[str] | None,
    ) -> str:
        """The ``window`` prompt for one decision: the task, the observation, recent history."""
        return build_prompt(
            str(info.get("task", "")),
            observation,
            history,
            actions,
            history_length=self.history_length,
            template=self.template,
        )

    def system_message(self, info: dict) -> dict[str, str]:
        """The ``conversation`` system message: the env's rules, the task, the answer format."""
        task = str(info.get("task", ""))
        if self.template == "compact":
            content = f"task: {task}"
            if self.think:
                content += "\nanswer as " + format_response("action", "reasoning")
            return {"role": "system", "content": content}
        rules = (
            f"{ROLE} Each turn you see an observation (and the admissible actions) and answer with "
            f"one action.\nYour task is to: {task}\n"
        )
        if self.think or self.require_tags:
            rules += _ANSWER_FORMAT.format(which="one admissible").split("\n", 1)[1]
        else:
            rules += "Answer with the action alone."
        return {"role": "system", "content": rules}

    def user_message(self, observation: str, actions: Sequence[str] | None) -> dict[str, str]:
        """The ``conversation`` user message of one turn: the observation and admissible actions."""
        if self.template == "compact":
            lines = [f"observation: {observation}"]
            if actions is not None:
                lines.append("admissible: " + " | ".join(actions))
            return {"role": "user", "content": "\n".join(lines)}
        lines = [f"Your current observation is: {observation}"]
        if actions is not None:
            lines.append(
                f"Your admissible actions in this situation are: [{_admissible_list(actions)}]."
            )
        return {"role": "user", "content": "\n".join(lines)}

"""Action parsing: from a model's raw response to the action string sent to the environment.

The validity rules follow verl-agent's ``alfworld_projection``
(``agent_system/environments/env_package/alfworld/projection.py``): the action is the text
inside ``<action> ... </action>``; a response without that block, or without a
``<think> ... </think>`` block, or containing CJK characters, is invalid. We add: more than one
action block is invalid (the first is used), and, when the admissible actions are known, an
action that is none of them (compared case- and whitespace-insensitively) is invalid.

Invalid output still yields an `action` to send: the env answers it with "Nothing happens."
and ``valid=False``, so the rollout goes on and the turn is marked. verl-agent sends the empty
string when the tags are missing; so do we. `parse_action` never raises.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ACTION_CLOSE",
    "ACTION_OPEN",
    "THINK_CLOSE",
    "THINK_OPEN",
    "ParsedAction",
    "format_response",
    "normalize_action",
    "parse_action",
]

#: The tags of a think-then-act response, ``<think>...</think><action>...</action>``.
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ACTION_OPEN, ACTION_CLOSE = "<action>", "</action>"

_ACTION_BLOCK = re.compile(
    f"{re.escape(ACTION_OPEN)}(.*?){re.escape(ACTION_CLOSE)}", re.IGNORECASE | re.DOTALL
)
_THINK_BLOCK = re.compile(
    f"{re.escape(THINK_OPEN)}.*?{re.escape(THINK_CLOSE)}", re.IGNORECASE | re.DOTALL
)
_CJK = re.compile(r"[\u4e00-\u9fff]")
_WHITESPACE = re.compile(r"\s+")
_WRAPPING = "\"'`"


@dataclass(frozen=True)
class ParsedAction:
    """The action to send to the env, whether the response was valid, and why not.

    Attributes:
        action: the action string to step the env with (an admissible action's own spelling
            when it matched one; possibly empty or not admissible when `valid` is False).
        valid: the response followed the format and, when admissible actions were given,
            named one of them.
        reason: empty when valid; otherwise what was wrong, in words.
    """

    action: str
    valid: bool
    reason: str = ""


def format_response(action: str, thought: str = "") -> str:
    """A well-formed tagged response: ``<think>thought</think><action>action</action>``."""
    return f"{THINK_OPEN}{thought}{THINK_CLOSE}{ACTION_OPEN}{action}{ACTION_CLOSE}"


def normalize_action(text: str) -> str:
    """Lower-case, collapse whitespace, drop surrounding quotes and a trailing full stop."""
    action = _WHITESPACE.sub(" ", text).strip().strip(_WRAPPING).strip()
    if action.endswith(".") and not action.endswith(".."):
        action = action[:-1].rstrip()
    return action.lower()


def _match_admissible(action: str, admissible_actions: Sequence[str]) -> str | None:
    for candidate in admissible_actions:
        if normalize_action(str(candidate)) == action:
            return str(candidate)
    return None


def parse_action(
    text: str,
    admissible_actions: Sequence[str] | None = None,
    *,
    require_tags: bool = True,
    require_think: bool = True,
) -> ParsedAction:
    """Extract the action from a model response.

    Args:
        text: the model's raw output.
        admissible_actions: the env's valid actions now; when given the result is matched
            against them case-insensitively and returned in the env's own spelling.
        require_tags: the action must sit inside ``<action> </action>`` (verl-agent format).
            With False a bare action (what constrained decoding produces) is accepted; tags,
            if present, are still honoured.
        require_think: with `require_tags`, a ``<think> </think>`` block is also required.

    Returns:
        a `ParsedAction`; never raises.
    """
    try:
        return _parse(text, admissible_actions, require_tags, require_think)
    except Exception as error:  # noqa: BLE001  (a parser bug must mark the turn, not stop the run)
        return ParsedAction(
            "", False, f"could not parse the response ({type(error).__name__}: {error})"
        )


def _parse(
    text: object, admissible_actions: Sequence[str] | None, require_tags: bool, require_think: bool
) -> ParsedAction:
    text = "" if text is None else str(text)
    problems: list[str] = []
    blocks = _ACTION_BLOCK.findall(text)
    if blocks:
        raw = blocks[0]
        if len(blocks) > 1:
            problems.append(f"found {len(blocks)} <action> blocks, expected exactly one")
    elif require_tags:
        return ParsedAction("", False, "missing <action>...</action> tags around the action")
    else:
        raw = text
    if require_tags and require_think and not _THINK_BLOCK.search(text):
        problems.append("missing <think>...</think> reasoning before the action")
    if _CJK.search(text):
        problems.append("the response contains CJK characters; answer in English")

    action = normalize_action(raw)
    if not action:
        problems.append("the action is empty")
    elif admissible_actions is not None:
        matched = _match_admissible(action, admissible_actions)
        if matched is None:
            problems.append(
                f"{action!r} is not one of the {len(admissible_actions)} admissible actions"
            )
        else:
            action = matched
    return ParsedAction(action, not problems, "; ".join(problems))

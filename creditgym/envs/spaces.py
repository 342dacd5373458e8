"""Gymnasium spaces for text environments."""

from __future__ import annotations

import string

from gymnasium import spaces

#: Characters text observations and actions may contain: printable ASCII plus newline/tab.
TEXT_CHARSET = frozenset(string.printable)


def text_space(max_length: int = 8192) -> spaces.Text:
    """A `gymnasium.spaces.Text` of printable ASCII, for observations and actions.

    Samples drawn from it are arbitrary strings, which is what a random-action test wants;
    real agents choose from `info["admissible_actions"]` instead.
    """
    return spaces.Text(max_length=max_length, min_length=0, charset=TEXT_CHARSET)

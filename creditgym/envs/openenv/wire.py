"""What a creditgym env looks like on OpenEnv's wire, and the checks a client runs on it.

OpenEnv's observation has ``reward``, ``done`` and ``metadata`` and whatever fields the env
declares; it has no ``info`` and no terminated/truncated split. A served creditgym env declares:

=============  ==========================================================================
field          meaning
=============  ==========================================================================
``text``       the observation string of ``reset`` / ``step``
``info``       the env's ``info`` dict, JSON-encoded by `encode_value` (tuples tagged, so a
               tuple ``anchor`` comes back a hashable tuple)
``terminated`` Gymnasium's ``terminated``
``truncated``  Gymnasium's ``truncated`` (OpenEnv's ``done`` is ``terminated or truncated``)
=============  ==========================================================================

The action is ``{"text": "<the action string>"}``.

This module needs no OpenEnv import for the encoding; the pydantic models are built by
`models()` on first use, so a client of a foreign server never imports OpenEnv's server.
"""

from __future__ import annotations

import functools
import math
from typing import Any

__all__ = [
    "TUPLE_TAG",
    "MAX_ACTION_CHARS",
    "MAX_DEPTH",
    "WireError",
    "encode_value",
    "decode_value",
    "models",
]

#: A tuple travels as ``{"$tuple": [...]}`` (JSON has only lists).
TUPLE_TAG = "$tuple"
#: Longest action text a served env accepts (longer ones get a validation error).
MAX_ACTION_CHARS = 65_536
#: Deepest nesting of lists/dicts an info value may have, either way over the wire.
MAX_DEPTH = 32


class WireError(ValueError):
    """A value that cannot travel, or an answer that does not have the expected shape."""


def encode_value(value: Any, where: str = "info", depth: int = 0) -> Any:
    """`value` as plain JSON data: tuples tagged, numpy scalars and arrays made plain.

    Raises `WireError` naming the key path of a value that has no JSON form (an object, a
    dict with non-string keys, a non-finite float), so the server answers with that line.
    """
    if depth > MAX_DEPTH:
        raise WireError(f"{where} is nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise WireError(f"{where} is {value}, which JSON cannot carry")
        return value
    if isinstance(value, tuple):
        return {
            TUPLE_TAG: [encode_value(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
        }
    if isinstance(value, list):
        return [encode_value(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        encoded = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise WireError(f"{where} has a non-string key {key!r}")
            if key == TUPLE_TAG:
                raise WireError(f"{where} uses the reserved key {TUPLE_TAG!r}")
            encoded[key] = encode_value(item, f"{where}[{key!r}]", depth + 1)
        return encoded
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":  # numpy scalar or array
        return encode_value(value.tolist(), where, depth)
    raise WireError(f"{where} holds a {type(value).__name__}, which has no JSON form")


def decode_value(value: Any, where: str = "info", depth: int = 0) -> Any:
    """The inverse of `encode_value`, for data read from the network: raises `WireError` on
    anything JSON decoding could not have produced or `encode_value` would not write."""
    if depth > MAX_DEPTH:
        raise WireError(f"{where} is nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, list):
        return [decode_value(v, where, depth + 1) for v in value]
    if isinstance(value, dict):
        if TUPLE_TAG in value:
            items = value[TUPLE_TAG]
            if len(value) != 1 or not isinstance(items, list):
                raise WireError(f"{where} has a malformed {TUPLE_TAG!r} entry")
            return tuple(decode_value(v, where, depth + 1) for v in items)
        return {str(k): decode_value(v, f"{where}[{k!r}]", depth + 1) for k, v in value.items()}
    raise WireError(f"{where} holds a {type(value).__name__}")


@functools.cache
def models() -> tuple[type, type, type]:
    """(TextAction, TextObservation, CreditgymState): the pydantic models a served env declares
    in OpenEnv's ``/schema``. Built on first use (OpenEnv is an optional extra)."""
    from openenv.core.env_server.types import Action, Observation, State
    from pydantic import Field

    class TextAction(Action):
        """An action of a creditgym text env: the command string."""

        text: str = Field(..., max_length=MAX_ACTION_CHARS, description="the action string")

    class TextObservation(Observation):
        """A creditgym observation: the text, the env's info, and Gymnasium's end flags."""

        text: str = Field(default="", description="the observation string")
        info: dict[str, Any] = Field(
            default_factory=dict,
            description="the env's info dict; tuples travel as {'$tuple': [...]}",
        )
        terminated: bool = Field(default=False, description="Gymnasium's terminated")
        truncated: bool = Field(default=False, description="Gymnasium's truncated")

    class CreditgymState(State):
        """The session's state: OpenEnv's episode id and step count, the env id, and the
        session token the clone/oracle extension endpoints take (`creditgym.envs.openenv`)."""

        env_id: str = Field(default="", description="the served creditgym env id")
        session: str = Field(default="", description="token for /creditgym/* extension calls")
        supports_cloning: bool = Field(default=False, description="clone/restore available")

    return TextAction, TextObservation, CreditgymState

"""The messages between the rollout and an env worker, shaped like OpenEnv's WebSocket protocol.

Requests (rollout -> worker), as OpenEnv's ``WSResetMessage`` / ``WSStepMessage`` /
``WSStateMessage`` / ``WSCloseMessage``::

    {"type": "reset", "data": {"seed": 3}}
    {"type": "step",  "data": {"text": "go to sofa 1"}}               # the action
    {"type": "step",  "data": {"actions": {"alice": "...", ...}}}      # a multi-agent env
    {"type": "state"}
    {"type": "close"}
    {"type": "call",  "data": {"method": "expert_action"}}            # creditgym extension

Answers (worker -> rollout), as ``WSObservationResponse`` / ``WSStateResponse`` /
``WSErrorResponse``::

    {"type": "observation", "data": {"observation": OBS, "reward": 1.0, "done": false}}
    {"type": "state", "data": {"episode_id": "...", "step_count": 4}}
    {"type": "error", "data": {"message": "...", "code": "EXECUTION_ERROR", "exception": "..."}}
    {"type": "ready", "data": {"possible_agents": null}}       # once, when the env is built
    {"type": "result", "data": {"value": ...}}                  # the answer to a "call"

OpenEnv's wire format has no ``info``, so creditgym's travels inside the observation::

    OBS = {"text": str, "info": {...}, "terminated": bool, "truncated": bool,
           "steps_to_go": int | null}

(``done`` = terminated or truncated; ``steps_to_go`` is the env's oracle cost-to-go, sent only
when the rollout records it.) A multi-agent env's observation holds per-agent dicts instead:
``{"text": {agent: str}, "info": {agent: {...}}, "reward": {agent: float}, "terminated":
{agent: bool}, "truncated": {agent: bool}, "steps_to_go": ...}``, the top-level reward being
the agents' sum.

Values travel as JSON, never pickle (a worker's bytes are not trusted). What JSON cannot say
(tuples, as in ``anchor``; sets; dicts with keys that are not strings; numpy arrays) is tagged:
``{"$tuple": [...]}``, ``{"$set": [...]}``, ``{"$frozenset": [...]}``, ``{"$dict": [[k, v],
...]}``, ``{"$ndarray": {"dtype": "int64", "data": [...]}}``, so an episode played in a worker
equals the one played in this process. Every answer is checked field by field: anything else is
a `ProtocolError`, which the rollout counts as ``garbage``.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "MAX_MESSAGE_BYTES",
    "ProtocolError",
    "WorkerError",
    "call_request",
    "close_request",
    "decode",
    "encode",
    "error_answer",
    "observation_answer",
    "read_observation",
    "read_ready",
    "read_result",
    "read_state",
    "ready_answer",
    "reset_request",
    "result_answer",
    "state_answer",
    "state_request",
    "step_request",
]

#: Largest message either side accepts; a text env's step is kilobytes.
MAX_MESSAGE_BYTES = 16 * 2**20
#: The oracle hooks a "call" request may name (scripted policies ask for the expert's move).
CALLABLE_METHODS = frozenset({"expert_action", "expert_actions"})
_TAGS = frozenset({"$tuple", "$set", "$frozenset", "$dict", "$ndarray"})
_NUMERIC_KINDS = frozenset("biuf")  # numpy dtype kinds an "$ndarray" may have


class ProtocolError(ValueError):
    """A message is not one of the protocol's, or a field has the wrong type."""


# ---- values on the wire ------------------------------------------------------------------------


def to_wire(value: Any, where: str = "value") -> Any:
    """`value` as plain JSON values, tagging what JSON cannot hold (see the module docstring).

    Raises TypeError naming `where` for a value of any other type."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, np.generic):
        return to_wire(value.item(), where)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"{where} is a numpy array of {value.dtype}; only numbers travel")
        return {"$ndarray": {"dtype": value.dtype.str, "data": value.tolist()}}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        wired = [to_wire(item, f"{where}[{i}]") for i, item in enumerate(items)]
        if isinstance(value, list):
            return wired
        tag = "$tuple" if isinstance(value, tuple) else "$frozenset"
        return {"$set" if isinstance(value, set) else tag: wired}
    if isinstance(value, Mapping):
        if all(isinstance(key, str) and not key.startswith("$") for key in value):
            return {key: to_wire(item, f"{where}[{key!r}]") for key, item in value.items()}
        return {
            "$dict": [
                [to_wire(key, f"{where} key"), to_wire(item, f"{where}[{key!r}]")]
                for key, item in value.items()
            ]
        }
    raise TypeError(
        f"{where} is a {type(value).__name__}, which cannot travel between processes (JSON "
        "values, tuples, sets, dicts and numeric numpy values can)"
    )


def _untag(obj: dict[str, Any]) -> Any:
    """`json.loads`' object hook: undo `to_wire`'s tags (inner objects come first)."""
    if len(obj) != 1:
        return obj
    ((key, payload),) = obj.items()
    if not key.startswith("$"):
        return obj
    if key not in _TAGS:
        raise ProtocolError(f"unknown tag {key!r}")
    if key == "$ndarray":
        if not isinstance(payload, dict) or not isinstance(payload.get("dtype"), str):
            raise ProtocolError("an $ndarray without its dtype")
        dtype = np.dtype(payload["dtype"])
        if dtype.kind not in _NUMERIC_KINDS:
            raise ProtocolError(f"an $ndarray of {dtype}")
        return np.asarray(payload.get("data"), dtype=dtype)
    if not isinstance(payload, list):
        raise ProtocolError(f"{key} holds a {type(payload).__name__}, not a list")
    if key == "$tuple":
        return tuple(payload)
    if key == "$set":
        return set(payload)
    if key == "$frozenset":
        return frozenset(payload)
    if not all(isinstance(pair, list) and len(pair) == 2 for pair in payload):
        raise ProtocolError("a $dict that is not a list of [key, value] pairs")
    return {key: value for key, value in payload}


def encode(message: Mapping[str, Any]) -> bytes:
    """A message as UTF-8 JSON (values through `to_wire`)."""
    return json.dumps(to_wire(message, "message"), ensure_ascii=False).encode()


def decode(payload: bytes) -> dict[str, Any]:
    """A message from its bytes; `ProtocolError` for anything but a JSON object with a
    string ``type`` (hostile nesting, bad tags and unhashable keys included)."""
    try:
        message = json.loads(payload, object_hook=_untag)
    except ProtocolError:
        raise
    except (ValueError, TypeError, RecursionError, OverflowError) as error:
        raise ProtocolError(f"not a JSON message ({type(error).__name__}: {error})") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError(f"a JSON {type(message).__name__} without a 'type'")
    return message


# ---- requests ----------------------------------------------------------------------------------


def reset_request(seed: int | None, options: dict | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"seed": seed}
    if options:
        data["options"] = options
    return {"type": "reset", "data": data}


def step_request(action: str | Mapping[str, str]) -> dict[str, Any]:
    if isinstance(action, Mapping):
        return {"type": "step", "data": {"actions": dict(action)}}
    return {"type": "step", "data": {"text": action}}


def state_request() -> dict[str, Any]:
    return {"type": "state"}


def close_request() -> dict[str, Any]:
    return {"type": "close"}


def call_request(method: str) -> dict[str, Any]:
    if method not in CALLABLE_METHODS:
        raise ValueError(
            f"{method!r} is not callable in a worker; one of {sorted(CALLABLE_METHODS)}"
        )
    return {"type": "call", "data": {"method": method}}


# ---- answers (the worker writes them) ----------------------------------------------------------


def ready_answer(possible_agents: list[str] | None) -> dict[str, Any]:
    return {"type": "ready", "data": {"possible_agents": possible_agents}}


def observation_answer(
    result: tuple, *, multi: bool, steps_to_go: int | None = None
) -> dict[str, Any]:
    """The answer to a reset (`result` = (obs, info)) or a step (the 5-tuple)."""
    if len(result) == 2:
        observation, info = result
        reward, terminated, truncated = (None, None, None)
    else:
        observation, reward, terminated, truncated, info = result
    fields = {"text": observation, "info": info, "steps_to_go": steps_to_go}
    if not multi:
        ended = (bool(terminated), bool(truncated))
        fields.update(terminated=ended[0], truncated=ended[1])
        done = any(ended)
    elif reward is None:
        done = False
    else:
        fields.update(reward=reward, terminated=terminated, truncated=truncated)
        reward = sum(float(r) for r in reward.values())
        done = all(terminated.get(a, True) or truncated.get(a, False) for a in observation)
    return {"type": "observation", "data": {"observation": fields, "reward": reward, "done": done}}


def state_answer(episode_id: str | None, step_count: int) -> dict[str, Any]:
    return {"type": "state", "data": {"episode_id": episode_id, "step_count": step_count}}


def result_answer(value: Any) -> dict[str, Any]:
    return {"type": "result", "data": {"value": value}}


def error_answer(error: BaseException, code: str = "EXECUTION_ERROR") -> dict[str, Any]:
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__, limit=4))
    return {
        "type": "error",
        "data": {
            "message": f"{type(error).__name__}: {error}",
            "code": code,
            "exception": type(error).__name__,
            "traceback": trace[-4000:],
        },
    }


# ---- reading answers (the rollout checks every field) ------------------------------------------


class WorkerError(Exception):
    """The worker answered with an error message: the env raised (`exception` names its type)."""

    def __init__(self, message: str, exception: str) -> None:
        super().__init__(message)
        self.exception = exception


def _data(answer: Mapping[str, Any], expected: str) -> dict[str, Any]:
    kind = answer.get("type")
    data = answer.get("data")
    if kind == "error":
        if not isinstance(data, dict) or not isinstance(data.get("message"), str):
            raise ProtocolError("an error message without a message")
        exception = data.get("exception")
        trace = data.get("traceback")
        detail = f"\n{trace}" if isinstance(trace, str) and trace else ""
        raise WorkerError(data["message"] + detail, exception if isinstance(exception, str) else "")
    if kind != expected:
        raise ProtocolError(f"a {kind!r} message where a {expected!r} was due")
    if not isinstance(data, dict):
        raise ProtocolError(f"a {kind!r} message whose data is a {type(data).__name__}")
    return data


def _typed(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind):
        raise ProtocolError(f"{what} is a {type(value).__name__}")
    return value


def _number(value: Any, what: str) -> float | int:
    if not isinstance(value, (int, float)):
        raise ProtocolError(f"{what} is {type(value).__name__} {value!r}, not a number")
    return value


def _per_agent(value: Any, kind: type | tuple[type, ...], what: str) -> dict:
    _typed(value, dict, what)
    for name, item in value.items():
        _typed(item, kind, f"{what}[{name!r}]")
    return value


def read_ready(answer: Mapping[str, Any]) -> list[str] | None:
    """The agents of the worker's env (None for a single-agent env) from its ready message."""
    agents = _data(answer, "ready").get("possible_agents")
    if agents is not None:
        _typed(agents, list, "possible_agents")
        for name in agents:
            _typed(name, str, "an agent name")
    return agents


def read_observation(
    answer: Mapping[str, Any], *, multi: bool, reset: bool
) -> tuple[tuple, int | None]:
    """A reset's ``(obs, info)`` or a step's 5-tuple, as the env returned them, with the
    oracle's steps-to-go; `ProtocolError` where any field has the wrong type."""
    data = _data(answer, "observation")
    fields = _typed(data.get("observation"), dict, "the observation")
    steps_to_go = fields.get("steps_to_go")
    if steps_to_go is not None and (
        isinstance(steps_to_go, bool) or not isinstance(steps_to_go, int)
    ):
        raise ProtocolError(f"steps_to_go is a {type(steps_to_go).__name__}")
    if not multi:
        text = _typed(fields.get("text"), str, "the observation text")
        info = _typed(fields.get("info"), dict, "info")
        if reset:
            return (text, info), steps_to_go
        reward = _number(data.get("reward"), "the reward")
        terminated = _typed(fields.get("terminated"), bool, "terminated")
        truncated = _typed(fields.get("truncated"), bool, "truncated")
        if _typed(data.get("done"), bool, "done") != (terminated or truncated):
            raise ProtocolError("done disagrees with terminated and truncated")
        return (text, reward, terminated, truncated, info), steps_to_go
    texts = _per_agent(fields.get("text"), str, "the observation text")
    infos = _per_agent(fields.get("info"), dict, "info")
    if reset:
        return (texts, infos), steps_to_go
    rewards = _typed(fields.get("reward"), dict, "the rewards")
    for name, reward in rewards.items():
        _number(reward, f"the reward of {name!r}")
    terminated = _per_agent(fields.get("terminated"), bool, "terminated")
    truncated = _per_agent(fields.get("truncated"), bool, "truncated")
    _typed(data.get("done"), bool, "done")
    return (texts, rewards, terminated, truncated, infos), steps_to_go


def read_result(answer: Mapping[str, Any]) -> Any:
    """The value a "call" returned."""
    data = _data(answer, "result")
    if "value" not in data:
        raise ProtocolError("a result without its value")
    return data["value"]


def read_state(answer: Mapping[str, Any]) -> dict[str, Any]:
    """OpenEnv's state: ``episode_id`` (str or None) and ``step_count``."""
    data = _data(answer, "state")
    if data.get("episode_id") is not None:
        _typed(data["episode_id"], str, "episode_id")
    count = data.get("step_count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ProtocolError(f"step_count is {count!r}")
    return data

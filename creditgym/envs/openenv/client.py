"""Any OpenEnv server as a Gymnasium text env: ``creditgym.make("openenv:http://host:port")``.

`OpenEnvEnv` holds one WebSocket session (one env on the server) and speaks OpenEnv's
protocol: ``{"type": "reset", "data": {...}}`` / ``{"type": "step", "data": ACTION}`` answered by
``{"type": "observation", "data": {"observation": {...}, "reward": r, "done": d}}``.

Against a served creditgym env (`creditgym serve-env`, recognised by its ``/creditgym/info``)
the episode is exactly the in-process one: the text, reward, terminated, truncated and the
whole ``info`` (tuples included) come back as the env returned them, and ``clone_state`` /
``restore_state``, ``expert_action`` and ``steps_to_go`` travel through the ``/creditgym/*``
extension, so tree, vine and Monte-Carlo credit and the expert work remotely.

Against any other OpenEnv server:

- the action string goes into the action's one string field (read from ``/schema``; name it
  with `action_field`), or must be a JSON object of the action's fields;
- the observation text is the observation's JSON (keys sorted, ``metadata`` left out);
- ``info`` gets ``task`` (the server's ``/metadata`` description), ``anchor`` (the observation
  text: the server's true state is unknown), ``won`` (the observation's boolean ``won`` or
  ``success`` field if it has one, else: the episode ended with a positive reward), ``valid``
  True, ``symbolic_state`` {}, ``events`` [], and the raw ``openenv_observation``;
- ``terminated`` is OpenEnv's ``done``; `max_steps` truncates an episode that never ends;
- clone/restore and the expert raise NotImplementedError saying so.

Every answer is treated as hostile: bounded in size (`max_message_bytes`) and time
(`timeout` per call), its shape checked; anything else raises `RemoteEnvError` naming the
server and what was wrong, and the session is dropped (the next ``reset`` opens a new one).
"""

from __future__ import annotations

import inspect
import json
import math
import os
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from creditgym import info_keys as keys
from creditgym.envs.openenv.transport import (
    RemoteEnvError,
    check_server_info,
    clip,
    http_url,
    say,
    ws_url,
)
from creditgym.envs.openenv.wire import MAX_ACTION_CHARS, WireError, decode_value
from creditgym.envs.spaces import text_space

__all__ = ["OpenEnvEnv", "RemoteEnvError", "RemoteSnapshot", "SCHEME", "API_KEY_ENV"]

#: ``creditgym.make(SCHEME + url)`` builds an `OpenEnvEnv`.
SCHEME = "openenv:"
#: Environment variable a client reads its API key from (the server's too).
API_KEY_ENV = "CREDITGYM_ENV_API_KEY"
#: Extra arguments of websockets' sync `connect` for a connection held open across calls.
_HELD_CONNECTION: dict[str, Any] = {}
#: Longest observation text accepted from a server.
MAX_TEXT_CHARS = 1 << 20


@dataclass(frozen=True)
class RemoteSnapshot:
    """A snapshot kept on the server (``clone_state``): restorable into any session of it."""

    server: str
    snapshot_id: str
    steps: int  # the client's step count at the snapshot (for `max_steps`)


class OpenEnvEnv(gym.Env):
    """A Gymnasium text env playing an OpenEnv server over one WebSocket session.

    Args:
        url: the server's base URL, ``http(s)://host:port`` (``ws(s)://`` accepted).
        api_key: sent as ``Authorization: Bearer``; default ``$CREDITGYM_ENV_API_KEY``.
        split: for a served creditgym env, the split its tasks come from (``reset`` carries it).
        action_field: the action field the action string fills (other servers; default: the
            action schema's only string field).
        max_steps: truncate after this many steps (for servers whose episodes never end).
        timeout: seconds one call may take (connect, reset, step, extension calls).
        max_message_bytes: largest answer accepted.

    The connection opens on the first ``reset``; ``close`` ends the session.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        split: str | None = None,
        action_field: str | None = None,
        max_steps: int | None = None,
        timeout: float = 60.0,
        max_message_bytes: int = 16 << 20,
    ) -> None:
        self.base_url = http_url(url)
        self.api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
        self.split = split
        self.action_field = action_field
        self.max_steps = max_steps
        self.timeout = timeout
        self.max_message_bytes = max_message_bytes
        self.observation_space = text_space(MAX_TEXT_CHARS)
        self.action_space = text_space(MAX_ACTION_CHARS)
        self._server: dict[str, Any] | None = None  # /creditgym/info, {} for other servers
        self._task = ""
        self._ws: Any = None
        self._session = ""  # the token /creditgym/* calls take (creditgym servers)
        self._steps = 0
        self._http_client: Any = None  # httpx.Client, made on the first HTTP call

    # -- Gymnasium -------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self._connect()
        data: dict[str, Any] = {} if seed is None else {"seed": int(seed)}
        if self.is_creditgym:
            if options is not None:
                data["options"] = options
            if self.split is not None:
                data["split"] = self.split
        else:
            data.update(options or {})  # another server's reset takes its options as kwargs
        self._steps = 0
        text, _, _, _, info = self._result(self._call({"type": "reset", "data": data}))
        return text, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._ws is None:
            raise gym.error.ResetNeeded(f"call reset() before step() ({self.base_url})")
        message = {"type": "step", "data": self._action(action)}
        text, reward, terminated, truncated, info = self._result(self._call(message))
        self._steps += 1
        if self.max_steps is not None and self._steps >= self.max_steps and not terminated:
            truncated = True
        return text, reward, terminated, truncated, info

    def close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.send(json.dumps({"type": "close"}))
            except Exception:  # already gone: closing is all that was asked
                pass
            ws.close()
        http, self._http_client = self._http_client, None
        if http is not None:
            http.close()
        super().close()

    # -- what the server is --------------------------------------------------------------

    @property
    def is_creditgym(self) -> bool:
        """Whether the server is a served creditgym env (it answers ``/creditgym/info``)."""
        return bool(self.server_info)

    @property
    def server_info(self) -> dict[str, Any]:
        """The server's ``/creditgym/info`` ({} for other OpenEnv servers); fetched once."""
        if self._server is None:
            self._server = check_server_info(self._get("/creditgym/info", missing_ok=True))
        return self._server

    @property
    def supports_state_cloning(self) -> bool:
        """Whether ``clone_state`` works here: a creditgym server whose env clones."""
        return bool(self.server_info.get("supports_cloning"))

    # -- oracle hooks over the /creditgym/* extension ---------------------------------------

    def clone_state(self) -> RemoteSnapshot:
        """Snapshot the remote env (kept on the server; see `RemoteSnapshot`)."""
        self._need_extension("clone its state", "supports_cloning")
        answer = self._post("/creditgym/clone", {"session": self._token()})
        snapshot_id = answer.get("snapshot")
        if not isinstance(snapshot_id, str) or not 0 < len(snapshot_id) <= 64:
            raise RemoteEnvError(f"{self.base_url} answered clone with no snapshot id")
        return RemoteSnapshot(self.base_url, snapshot_id, self._steps)

    def restore_state(self, snapshot: RemoteSnapshot) -> tuple[str, dict[str, Any]]:
        """Return the remote env to `snapshot`; the observation and info of that moment."""
        self._need_extension("restore a state", "supports_cloning")
        if not isinstance(snapshot, RemoteSnapshot) or snapshot.server != self.base_url:
            raise ValueError(
                f"restore_state takes a snapshot from clone_state() of an env on {self.base_url}"
            )
        self._connect()  # a fresh env may be restored before any reset
        answer = self._post(
            "/creditgym/restore", {"session": self._token(), "snapshot": snapshot.snapshot_id}
        )
        text, _, _, _, info = self._result({"type": "observation", "data": answer})
        self._steps = snapshot.steps
        return text, info

    def expert_action(self) -> str:
        """The served env's expert action in the current state."""
        value = self._oracle("expert_action")
        if not isinstance(value, str):
            raise RemoteEnvError(f"{self.base_url} answered expert_action with a non-string")
        return value

    def steps_to_go(self) -> int | None:
        """The served env's expert cost-to-go from the current state (None if it has none)."""
        if not self.is_creditgym:
            return None
        value = self._oracle("steps_to_go")
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise RemoteEnvError(f"{self.base_url} answered steps_to_go with a non-integer")
        return value

    # -- the WebSocket session ---------------------------------------------------------------

    def _connect(self) -> None:
        if self._ws is not None:
            return
        from websockets.sync.client import connect

        if not _HELD_CONNECTION and "legacy" in inspect.signature(connect).parameters:
            _HELD_CONNECTION["legacy"] = True  # newer websockets: a connection held across calls
        if not self.is_creditgym and self.action_field is None:
            self.action_field = self._string_action_field()
        if not self.is_creditgym:
            metadata = self._get("/metadata", missing_ok=True)
            self._task = str(metadata.get("description", ""))[:4096]
        try:
            self._ws = connect(
                ws_url(self.base_url),
                additional_headers=self._headers(),
                open_timeout=self.timeout,
                close_timeout=2,
                max_size=self.max_message_bytes,
                compression=None,  # loopback and LAN: deflate costs more than it saves
                **_HELD_CONNECTION,
            )
        except Exception as error:
            raise RemoteEnvError(
                f"cannot open a session on {self.base_url}: {say(error)}"
            ) from None
        self._session = ""

    def _call(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send `message` on the session and read its answer; drop the session on any failure
        (an answer read late would pair with the wrong request)."""
        from websockets.exceptions import ConnectionClosed

        try:
            try:
                self._ws.send(json.dumps(message))
            except ConnectionClosed:  # a refused session (at capacity) sends why, then closes:
                pass  # the close may beat our send, so read the queued answer below
            raw = self._ws.recv(timeout=self.timeout)
        except TimeoutError:
            self._drop()
            raise RemoteEnvError(
                f"{self.base_url} did not answer {message['type']} within {self.timeout} s"
            ) from None
        except Exception as error:
            self._drop()
            raise RemoteEnvError(f"{self.base_url} session lost: {say(error)}") from None
        try:
            answer = json.loads(raw)
        except (ValueError, TypeError):
            self._drop()
            raise RemoteEnvError(f"{self.base_url} answered with something not JSON") from None
        if not isinstance(answer, dict):
            self._drop()
            raise RemoteEnvError(f"{self.base_url} answered with a JSON {type(answer).__name__}")
        if answer.get("type") == "error":
            data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
            reason = clip(str(data.get("message", "no message")))
            raise RemoteEnvError(f"{self.base_url} refused {message['type']}: {reason}")
        return answer

    def _drop(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.close()
            except Exception:
                pass

    def _result(self, answer: dict[str, Any]) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """(text, reward, terminated, truncated, info) of an observation answer, checked."""
        data = answer.get("data")
        if answer.get("type") != "observation" or not isinstance(data, dict):
            raise RemoteEnvError(f"{self.base_url} answered without an observation")
        observation, reward, done = data.get("observation"), data.get("reward"), data.get("done")
        if not isinstance(observation, dict):
            raise RemoteEnvError(f"{self.base_url} sent an observation that is not an object")
        if reward is None:
            reward = 0.0
        if (
            isinstance(reward, bool)
            or not isinstance(reward, (int, float))
            or not math.isfinite(reward)
        ):
            raise RemoteEnvError(f"{self.base_url} sent a reward that is not a finite number")
        if not isinstance(done, bool):
            raise RemoteEnvError(f"{self.base_url} sent a 'done' that is not a boolean")
        if self.is_creditgym:
            return self._creditgym_result(observation, float(reward), done)
        return self._foreign_result(observation, float(reward), done)

    def _creditgym_result(
        self, observation: dict[str, Any], reward: float, done: bool
    ) -> tuple[str, float, bool, bool, dict[str, Any]]:
        text, terminated, truncated = (
            observation.get("text"),
            observation.get("terminated"),
            observation.get("truncated"),
        )
        if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
            raise RemoteEnvError(f"{self.base_url} sent an observation text that is not a string")
        if not isinstance(terminated, bool) or not isinstance(truncated, bool):
            raise RemoteEnvError(f"{self.base_url} sent terminated/truncated that are not booleans")
        try:
            info = decode_value(observation.get("info"))
        except WireError as error:
            raise RemoteEnvError(f"{self.base_url} sent a malformed info: {error}") from None
        if not isinstance(info, dict):
            raise RemoteEnvError(f"{self.base_url} sent an info that is not an object")
        return text, reward, terminated, truncated, info

    def _foreign_result(
        self, observation: dict[str, Any], reward: float, done: bool
    ) -> tuple[str, float, bool, bool, dict[str, Any]]:
        shown = {k: v for k, v in observation.items() if k != "metadata"}
        text = json.dumps(shown, sort_keys=True, default=str)[:MAX_TEXT_CHARS]
        flag = next(
            (observation[k] for k in ("won", "success") if isinstance(observation.get(k), bool)),
            None,
        )
        info = {
            keys.TASK: self._task,
            keys.ANCHOR: text,
            keys.WON: flag if flag is not None else bool(done and reward > 0),
            keys.VALID: True,
            keys.SYMBOLIC_STATE: {},
            keys.EVENTS: [],
            "openenv_observation": observation,
        }
        return text, reward, done, False, info

    def _action(self, action: str) -> dict[str, Any]:
        if not isinstance(action, str):
            raise TypeError(f"an action is a string, got {type(action).__name__}")
        if self.is_creditgym:
            return {"text": action}
        if self.action_field is not None:
            return {self.action_field: action}
        try:
            fields = json.loads(action)
        except ValueError:
            fields = None
        if not isinstance(fields, dict):
            raise ValueError(
                f"{self.base_url}'s action has no single string field: the action must be a JSON "
                "object of its fields (or pass action_field=)"
            )
        return fields

    # -- HTTP (metadata, schema, the /creditgym/* extension) --------------------------------

    def _token(self) -> str:
        """This session's token for /creditgym/* calls (read from `state` once per session)."""
        if self._ws is None:
            raise gym.error.ResetNeeded(f"call reset() first ({self.base_url})")
        if not self._session:
            data = self._call({"type": "state"}).get("data")
            token = data.get("session") if isinstance(data, dict) else None
            if not isinstance(token, str) or not 0 < len(token) <= 64:
                raise RemoteEnvError(f"{self.base_url} reported no session token in its state")
            self._session = token
        return self._session

    def _oracle(self, ask: str) -> Any:
        self._need_extension(f"give {ask}", None)
        return self._post("/creditgym/oracle", {"session": self._token(), "ask": ask}).get("value")

    def _need_extension(self, what: str, capability: str | None) -> None:
        if not self.is_creditgym:
            raise NotImplementedError(
                f"the OpenEnv server at {self.base_url} is not a served creditgym env, so it "
                f"cannot {what} (only `creditgym serve-env` offers the /creditgym/* extension)"
            )
        if capability is not None and not self.server_info.get(capability):
            raise NotImplementedError(
                f"{self.server_info.get('env_id')} served at {self.base_url} cannot {what}"
            )

    def _string_action_field(self) -> str | None:
        schema = self._get("/schema").get("action")
        properties = schema.get("properties") if isinstance(schema, dict) else None
        if not isinstance(properties, dict):
            return None
        strings = [
            name
            for name, spec in properties.items()
            if name != "metadata" and isinstance(spec, dict) and spec.get("type") == "string"
        ]
        return strings[0] if len(strings) == 1 else None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _get(self, path: str, missing_ok: bool = False) -> dict[str, Any]:
        return self._http("GET", path, None, missing_ok)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._http("POST", path, body, False)

    def _http(
        self, method: str, path: str, body: dict[str, Any] | None, missing_ok: bool
    ) -> dict[str, Any]:
        import httpx

        if self._http_client is None:
            self._http_client = httpx.Client(timeout=self.timeout, headers=self._headers())
        try:
            with self._http_client.stream(method, self.base_url + path, json=body) as response:
                raw = b""
                for chunk in response.iter_bytes():
                    raw += chunk
                    if len(raw) > self.max_message_bytes:
                        raise RemoteEnvError(
                            f"{self.base_url}{path} answered more than "
                            f"{self.max_message_bytes} bytes"
                        )
                status = response.status_code
        except httpx.HTTPError as error:
            raise RemoteEnvError(f"cannot reach {self.base_url}{path}: {say(error)}") from None
        if missing_ok and status == 404:
            return {}
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if status >= 400:
            detail = answer.get("detail") if isinstance(answer, dict) else None
            reason = clip(str(detail)) if detail else f"HTTP {status}"
            if status == 409 and "cannot clone" in reason:
                raise NotImplementedError(reason)
            raise RemoteEnvError(f"{self.base_url}{path}: {reason}")
        if not isinstance(answer, dict):
            raise RemoteEnvError(f"{self.base_url}{path} answered with something not a JSON object")
        return answer


def server_metadata(url: str, timeout: float = 10.0) -> dict[str, Any]:
    """The class ``metadata`` a registry reports for ``openenv:URL``: a creditgym server's
    held-out splits, {} for other servers."""
    probe = OpenEnvEnv(url, timeout=timeout)
    try:
        splits = probe.server_info.get("eval_splits")
    finally:
        probe.close()
    return {"eval_splits": splits} if splits else {}

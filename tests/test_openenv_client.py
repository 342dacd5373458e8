"""`openenv:<url>` envs: the wire encoding, hostile answers from a server, and a real OpenEnv
env (OpenEnv's echo env, as `openenv init` writes it) played as a Gymnasium env."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import numpy as np
import pytest

pytest.importorskip("websockets")  # installed with the [openenv] extra

from websockets.sync.server import serve  # noqa: E402

import creditgym  # noqa: E402
from creditgym.envs import oracle  # noqa: E402
from creditgym.envs.openenv import RemoteEnvError  # noqa: E402
from creditgym.envs.openenv.wire import WireError, decode_value, encode_value  # noqa: E402

INFO = {"env_id": "creditgym/Fake-v0", "supports_cloning": False, "eval_splits": ["all"]}
GOOD = {
    "type": "observation",
    "data": {
        "observation": {
            "text": "hi",
            "info": {"won": False},
            "terminated": False,
            "truncated": False,
        },
        "reward": None,
        "done": False,
    },
}


# -- the wire encoding -------------------------------------------------------------------


def test_info_round_trips_with_tuples_kept_hashable():
    info = {"anchor": ("t", -1, (1, 2), True), "events": ["a"], "state": {"x": 1.5}, "n": None}
    decoded = decode_value(json.loads(json.dumps(encode_value(info))))
    assert decoded == info
    assert hash(decoded["anchor"]) == hash(info["anchor"])


def test_numpy_values_travel_as_plain_numbers():
    assert encode_value({"a": np.float32(0.5), "b": np.arange(3)}) == {"a": 0.5, "b": [0, 1, 2]}


@pytest.mark.parametrize(
    "value, named",
    [
        ({"k": object()}, "['k'] holds a object"),
        ({1: 2}, "non-string key"),
        ({"k": float("nan")}, "nan"),
        ({"$tuple": 1}, "reserved key"),
    ],
)
def test_values_without_a_json_form_are_refused_with_their_key(value, named):
    with pytest.raises(WireError, match=named.replace("[", r"\[").replace("]", r"\]")):
        encode_value(value)


def test_malformed_or_too_deep_answers_are_refused():
    with pytest.raises(WireError, match="malformed"):
        decode_value({"$tuple": [1], "extra": 2})
    deep: object = 1
    for _ in range(40):
        deep = [deep]
    with pytest.raises(WireError, match="nested deeper"):
        decode_value(deep)


# -- hostile servers -------------------------------------------------------------------------


class FakeServer:
    """A WebSocket server whose `answer(message)` says what to send back (None: nothing)."""

    def __init__(self, answer: Callable[[dict], str | None], info: dict | None = INFO) -> None:
        def process_request(connection, request):
            if request.path == "/creditgym/info":
                if info is None:
                    return connection.respond(404, "{}")
                return connection.respond(200, json.dumps(info))
            if request.path == "/schema":
                return connection.respond(200, json.dumps({"action": {"properties": {}}}))
            return None

        def handler(ws):
            for raw in ws:
                reply = answer(json.loads(raw))
                if reply is not None:
                    ws.send(reply)

        self.server = serve(handler, "127.0.0.1", 0, process_request=process_request)
        self.url = f"http://127.0.0.1:{self.server.socket.getsockname()[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def on_step(reply: str | None) -> Callable[[dict], str | None]:
    """Answers reset properly and every step with `reply`."""
    return lambda message: json.dumps(GOOD) if message["type"] == "reset" else reply


def bad(observation_changes: dict | None = None, **data_changes) -> str:
    answer = json.loads(json.dumps(GOOD))
    answer["data"].update(data_changes)
    answer["data"]["observation"].update(observation_changes or {})
    return json.dumps(answer)


@pytest.mark.parametrize(
    "reply, says",
    [
        ("not json at all", "not JSON"),
        ("[1, 2]", "JSON list"),
        (bad(reward="lots"), "reward"),
        (bad(reward=float("inf")), "reward"),
        (bad(done="yes"), "done"),
        (bad({"text": 7}), "text"),
        (bad({"info": {"a": {"$tuple": 3}}}), "malformed info"),
        (json.dumps({"type": "error", "data": {"message": "boom"}}), "refused step: boom"),
    ],
)
def test_a_malformed_answer_raises_a_clear_error(reply, says):
    server = FakeServer(on_step(reply))
    env = creditgym.make(f"openenv:{server.url}", timeout=5)
    try:
        assert env.reset(seed=0) == ("hi", {"won": False})
        with pytest.raises(RemoteEnvError, match=says):
            env.step("look")
    finally:
        env.close()
        server.close()


def test_a_server_that_never_answers_times_out_and_the_session_is_dropped():
    server = FakeServer(on_step(None))
    env = creditgym.make(f"openenv:{server.url}", timeout=0.5)
    try:
        env.reset(seed=0)
        with pytest.raises(RemoteEnvError, match="did not answer step within 0.5 s"):
            env.step("look")
        with pytest.raises(Exception, match="reset"):  # a late answer must not pair with a new call
            env.step("look")
    finally:
        env.close()
        server.close()


def test_an_unreachable_server_and_a_bad_url_say_so():
    with pytest.raises(RemoteEnvError, match="cannot reach"):
        creditgym.make("openenv:http://127.0.0.1:9", timeout=2).reset(seed=0)
    with pytest.raises(ValueError, match="must look like http://host:port"):
        creditgym.make("openenv:ftp://x")


# -- a real OpenEnv env ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def echo_url(tmp_path_factory):
    pytest.importorskip("openenv")
    from _openenv import echo_env
    from _servers import free_port

    with echo_env(tmp_path_factory.mktemp("echo"), free_port()) as url:
        yield url


def test_openenvs_echo_env_plays_as_a_gymnasium_env(echo_url):
    env = creditgym.make(f"openenv:{echo_url}", max_steps=2)
    text, info = env.reset(seed=0)
    assert "ready" in json.loads(text)["echoed_message"]
    assert {"task", "anchor", "won", "valid", "symbolic_state", "events"} <= set(info)
    text, reward, terminated, truncated, info = env.step("hello")
    assert json.loads(text) == {"echoed_message": "hello", "message_length": 5}
    assert (reward, terminated, truncated) == (0.5, False, False)
    assert env.step("hi")[3] is True  # max_steps truncates an episode that never ends
    assert not oracle.supports_cloning(env)
    with pytest.raises(NotImplementedError, match="not a served creditgym env"):
        oracle.clone_state(env)
    assert oracle.cost_to_go(env) is None
    env.close()

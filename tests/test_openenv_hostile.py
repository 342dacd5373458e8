"""A served env under hostile input: every bad request gets a clear HTTP error, the process
stays up, and other sessions go on unaffected."""

from __future__ import annotations

import json

import httpx
import pytest

pytest.importorskip("openenv")

from _openenv import serve_env  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

import creditgym  # noqa: E402
from creditgym.envs.openenv import RemoteEnvError  # noqa: E402

KEY = "s3cret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
LIMITS = ["--max-sessions", "3", "--max-body-bytes", "4096", "--max-message-bytes", "4096"]


@pytest.fixture(scope="module")
def server():
    with serve_env("creditgym/HouseholdEasy-v0", "--api-key", KEY, *LIMITS) as (url, process):
        # a session that plays on while the others misbehave
        bystander = creditgym.make(f"openenv:{url}", api_key=KEY)
        bystander.reset(seed=0)
        yield url, process, bystander
        bystander.close()


@pytest.fixture(autouse=True)
def still_serving(server):
    """After every test: the process lives and the bystander's session still steps."""
    yield
    url, process, bystander = server
    assert process.poll() is None
    assert httpx.get(f"{url}/health").json() == {"status": "healthy"}
    assert bystander.step("look")[4]["valid"] is True


def ws_url(url: str) -> str:
    return url.replace("http://", "ws://") + "/ws"


def test_missing_or_wrong_key_gets_401_but_health_stays_open(server):
    url = server[0]
    assert httpx.get(f"{url}/schema").status_code == 401
    wrong = httpx.get(f"{url}/schema", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "API key" in wrong.json()["detail"]
    assert httpx.get(f"{url}/schema", headers={"X-API-Key": KEY}).status_code == 200
    assert httpx.get(f"{url}/health").status_code == 200


def test_websocket_without_the_key_is_refused(server):
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(server[0]), open_timeout=10).close()
    assert refused.value.response.status_code == 403
    with pytest.raises(RemoteEnvError, match="wrong API key"):
        creditgym.make(f"openenv:{server[0]}", api_key="wrong").reset(seed=0)


def test_malformed_json_gets_422(server):
    answer = httpx.post(
        f"{server[0]}/reset",
        content=b"{not json",
        headers={**AUTH, "content-type": "application/json"},
    )
    assert answer.status_code == 422


def test_bodies_over_the_limit_get_413_announced_or_streamed(server):
    huge = json.dumps({"action": {"text": "x" * 10_000}}).encode()
    assert httpx.post(f"{server[0]}/step", content=huge, headers=AUTH).status_code == 413

    def chunks():
        for _ in range(10):
            yield b"x" * 1000

    streamed = httpx.post(f"{server[0]}/step", content=chunks(), headers=AUTH)
    assert streamed.status_code == 413


def test_unknown_session_gets_404_over_http_and_an_error_over_websocket(server):
    url = server[0]
    answer = httpx.post(f"{url}/creditgym/clone", json={"session": "made-up"}, headers=AUTH)
    assert answer.status_code == 404 and "unknown session" in answer.json()["detail"]
    answer = httpx.post(
        f"{url}/creditgym/restore", json={"session": "made-up", "snapshot": "x"}, headers=AUTH
    )
    assert answer.status_code == 404
    with connect(ws_url(url) + "?session_id=made-up", additional_headers=AUTH) as ws:
        error = json.loads(ws.recv(timeout=10))
    assert error["type"] == "error" and "Unknown session_id" in error["data"]["message"]


def test_a_step_before_reset_over_stateless_http_gets_409(server):
    answer = httpx.post(f"{server[0]}/step", json={"action": {"text": "look"}}, headers=AUTH)
    assert answer.status_code == 409 and "reset first" in answer.json()["detail"]


def test_bad_json_on_a_websocket_is_answered_and_the_session_goes_on(server):
    with connect(ws_url(server[0]), additional_headers=AUTH) as ws:
        ws.send("{oops")
        error = json.loads(ws.recv(timeout=10))
        assert error["data"]["code"] == "INVALID_JSON"
        ws.send(json.dumps({"type": "step", "data": {"text": "look"}}))  # no episode yet
        assert "reset first" in json.loads(ws.recv(timeout=10))["data"]["message"]
        ws.send(json.dumps({"type": "step", "data": {"bogus": 1}}))
        assert json.loads(ws.recv(timeout=10))["type"] == "error"
        ws.send(json.dumps({"type": "reset", "data": {"seed": 1}}))
        assert json.loads(ws.recv(timeout=10))["type"] == "observation"


def test_an_oversized_websocket_message_closes_only_its_own_connection(server):
    with connect(ws_url(server[0]), additional_headers=AUTH, max_size=None) as ws:
        ws.send(json.dumps({"type": "step", "data": {"text": "x" * 10_000}}))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)


def test_sessions_beyond_max_sessions_are_refused(server):
    url = server[0]
    extra = [creditgym.make(f"openenv:{url}", api_key=KEY) for _ in range(3)]
    try:
        extra[0].reset(seed=0)
        extra[1].reset(seed=0)  # with the bystander: 3 sessions, the limit
        with pytest.raises(RemoteEnvError, match="[Cc]apacity|max"):
            extra[2].reset(seed=0)
    finally:
        for env in extra:
            env.close()


# -- the server's parts, in-process ---------------------------------------------------------


def test_a_session_the_server_closed_says_so_and_its_token_is_gone():
    from creditgym.envs.openenv.served import ServedEnv, SessionClosed
    from creditgym.envs.openenv.sessions import SessionDirectory
    from creditgym.envs.openenv.wire import models

    directory = SessionDirectory()
    served = ServedEnv("creditgym/HouseholdEasy-v0", {}, directory)
    served.reset(seed=0)
    token = served.state.session
    assert directory.session(token) is served
    served.close()  # what OpenEnv's idle reaper does
    with pytest.raises(SessionClosed, match="idle longer than its session timeout"):
        served.step(models()[0](text="look"))
    with pytest.raises(LookupError, match="unknown session token"):
        directory.session(token)


def test_the_least_recently_used_snapshot_is_evicted_past_the_limit():
    from creditgym.envs.openenv.sessions import SessionDirectory

    directory = SessionDirectory(max_snapshots=2)
    first, second = directory.keep("a"), directory.keep("b")
    directory.snapshot(first)  # used: now the most recent
    directory.keep("c")
    assert directory.snapshot(first) == "a"
    with pytest.raises(LookupError, match="--max-snapshots"):
        directory.snapshot(second)


def test_serve_env_refuses_multi_agent_envs_and_bad_kwargs_in_one_line(capsys):
    from creditgym.cli import main

    assert main(["serve-env", "creditgym/CoopHousehold-v0", "--port", "0"]) == 2
    assert "multi-agent" in capsys.readouterr().err
    assert main(["serve-env", "creditgym/HouseholdEasy-v0", "--env-kwarg", "colour=1"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no keyword argument 'colour'" in error

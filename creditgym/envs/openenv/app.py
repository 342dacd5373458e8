"""`creditgym serve-env ENV_ID`: a registered creditgym env behind OpenEnv's own server.

`build_app` hands `ServedEnv` to OpenEnv's `create_fastapi_app`, which provides the protocol
(``/health``, ``/metadata``, ``/schema``, ``/reset``, ``/step``, ``/state``, the WebSocket
``/ws`` with one env per session, session limits and the idle reaper), then adds:

- the ``/creditgym/*`` extension: ``GET /creditgym/info`` (env id, splits, cloning), and
  ``POST /creditgym/clone``, ``/creditgym/restore``, ``/creditgym/oracle`` taking the session
  token a session reads from its ``state`` (see the README's "Serving an env over OpenEnv");
- `Guard`: the optional API key and the request-body bound;
- errors as one line with a status: 400 a bad argument, 404 an unknown session or snapshot,
  409 no episode yet or an env that cannot clone, 410 a session the server closed.

Multi-agent (PettingZoo) envs are refused: OpenEnv's protocol has one action and one
observation per step.
"""

# No `from __future__ import annotations`: FastAPI reads the request models of the routes
# defined inside `build_app` from their evaluated annotations.

import functools
import socket
import sys
from typing import Any, Literal

from creditgym.envs import oracle
from creditgym.envs.openenv.guard import Guard
from creditgym.envs.openenv.options import ServeLimits
from creditgym.envs.openenv.served import EpisodeNotStarted, ServedEnv, SessionClosed
from creditgym.envs.openenv.sessions import SessionDirectory
from creditgym.envs.openenv.wire import MAX_ACTION_CHARS, WireError, models
from creditgym.envs.registry import check_make_kwargs, eval_splits, is_multi_agent, make
from creditgym.version import __version__

__all__ = ["build_app", "serve_env", "PROTOCOL_VERSION"]

#: Version of the /creditgym/* extension and the wire format of `creditgym.envs.openenv.wire`.
PROTOCOL_VERSION = 1

_STATUS = {
    LookupError: 404,
    EpisodeNotStarted: 409,
    NotImplementedError: 409,
    SessionClosed: 410,
    WireError: 500,
    ValueError: 400,
    TypeError: 400,
}


def build_app(
    env_id: str, env_kwargs: dict[str, Any] | None = None, limits: ServeLimits | None = None
) -> Any:
    """The ASGI app serving `env_id` (built with `env_kwargs`) over OpenEnv's protocol.

    Raises ValueError for a multi-agent env; the env is built once here, so bad kwargs fail
    now with the env's own message rather than in every session.
    """
    from fastapi import FastAPI
    from openenv.core.env_server import ConcurrencyConfig, create_fastapi_app, serialize_observation
    from pydantic import BaseModel, Field

    env_kwargs = dict(env_kwargs or {})
    limits = limits or ServeLimits()
    if is_multi_agent(env_id):
        raise ValueError(
            f"{env_id} is a multi-agent (PettingZoo) env; creditgym serve-env serves single-agent "
            "envs (OpenEnv's protocol has one action and one observation per step)"
        )
    try:
        check_make_kwargs(env_id, env_kwargs)
    except TypeError as error:
        raise ValueError(f"{error} (--env-kwarg)") from None
    probe = make(env_id, **env_kwargs)
    supports_cloning = oracle.supports_cloning(probe)
    probe.close()

    directory = SessionDirectory(limits.max_snapshots)
    action_cls, observation_cls, state_cls = models()
    app: FastAPI = create_fastapi_app(
        functools.partial(ServedEnv, env_id=env_id, env_kwargs=env_kwargs, directory=directory),
        action_cls,
        observation_cls,
        concurrency_config=ConcurrencyConfig(
            max_concurrent_envs=limits.max_sessions, session_timeout=limits.session_timeout
        ),
        env_name=env_id.replace("/", "-"),
        state_cls=state_cls,
        mode="simulation",  # never OPENENV_MODE's production mode, which drops /reset and /step
    )

    class SessionRequest(BaseModel):
        session: str = Field(..., max_length=64, description="the token from `state`")

    class RestoreRequest(SessionRequest):
        snapshot: str = Field(..., max_length=64, description="an id from /creditgym/clone")

    class OracleRequest(SessionRequest):
        ask: Literal["expert_action", "steps_to_go"]

    @app.get("/creditgym/info", tags=["creditgym extension"])
    def info() -> dict[str, Any]:
        """What a creditgym client needs to know about the served env."""
        return {
            "protocol": PROTOCOL_VERSION,
            "creditgym": __version__,
            "env_id": env_id,
            "eval_splits": eval_splits(env_id),
            "supports_cloning": supports_cloning,
            "max_action_chars": MAX_ACTION_CHARS,
        }

    @app.post("/creditgym/clone", tags=["creditgym extension"])
    def clone(request: SessionRequest) -> dict[str, str]:
        """Snapshot the session's env; the id restores it into any session of this server."""
        return {"snapshot": directory.session(request.session).clone()}

    @app.post("/creditgym/restore", tags=["creditgym extension"])
    def restore(request: RestoreRequest) -> dict[str, Any]:
        """Put the session's env in a snapshot's state; the observation of that moment."""
        served = directory.session(request.session)
        return serialize_observation(served.restore(request.snapshot))

    @app.post("/creditgym/oracle", tags=["creditgym extension"])
    def ask_oracle(request: OracleRequest) -> dict[str, Any]:
        """The env's expert action or cost-to-go in the session's current state."""
        served = directory.session(request.session)
        return {"value": getattr(served, request.ask)()}

    for error, status in _STATUS.items():
        app.add_exception_handler(error, functools.partial(_one_line, status))
    return Guard(app, api_key=limits.api_key, max_body_bytes=limits.max_body_bytes)


async def _one_line(status: int, request: Any, error: Exception) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse({"detail": " ".join(str(error).split())[:1000]}, status_code=status)


def serve_env(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    limits: ServeLimits | None = None,
) -> None:
    """Serve `env_id` at ``http://host:port`` until interrupted (port 0 picks a free one; the
    line printed on start names the port)."""
    import uvicorn

    limits = limits or ServeLimits()
    app = build_app(env_id, env_kwargs, limits)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ValueError(
            f"cannot listen on {host}:{port}: {error.strerror}; pick another --port (0: any free)"
        ) from None
    bound_port = sock.getsockname()[1]
    if limits.api_key is None and not _is_loopback(host):
        print(
            f"creditgym: warning: serving on {host} without --api-key: anyone who can reach this "
            "port can play the env",
            file=sys.stderr,
            flush=True,
        )
    config = uvicorn.Config(
        app,
        ws_max_size=limits.max_message_bytes,
        log_level="warning",
        timeout_keep_alive=30,
        lifespan="on",  # starts OpenEnv's idle-session reaper
    )
    url_host = f"[{host}]" if ":" in host else host
    print(f"creditgym: serving {env_id} over OpenEnv at http://{url_host}:{bound_port}", flush=True)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")

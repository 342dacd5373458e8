"""Test helpers: a real `creditgym.agents.serve.server` process, and small stdlib HTTP servers that
misbehave on purpose. Loopback only; every wait is bounded in time."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

LOOPBACK = "127.0.0.1"

#: (status, body, headers) a scripted server answers with.
Reply = tuple[int, bytes, dict[str, str]]


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def json_reply(payload: object, status: int = 200, **headers: str) -> Reply:
    return status, json.dumps(payload).encode(), {"Content-Type": "application/json", **headers}


def chat_reply(content: str, logprobs: list[float] | None = None) -> Reply:
    """A minimal valid chat completion."""
    tokens = (
        None
        if logprobs is None
        else {"content": [{"token": "t", "logprob": lp} for lp in logprobs]}
    )
    return json_reply(
        {
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "logprobs": tokens,
                }
            ]
        }
    )


class ScriptedServer:
    """A stdlib HTTP server on a thread; `respond(path, body)` decides each answer.

    Records every request body in `requests` and the most requests it held at once in
    `peak_in_flight`; `delay` seconds are slept inside each request (to overlap them).
    """

    def __init__(self, respond: Callable[[str, dict], Reply], delay: float = 0.0) -> None:
        self.respond = respond
        self.delay = delay
        self.requests: list[dict] = []
        self.peak_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((LOOPBACK, 0), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self._httpd.server_address[1]}/v1"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._answer({})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._answer(json.loads(raw) if raw else {})

            def _answer(self, body: dict) -> None:
                with scripted._lock:
                    scripted.requests.append(body)
                    scripted._in_flight += 1
                    scripted.peak_in_flight = max(scripted.peak_in_flight, scripted._in_flight)
                try:
                    time.sleep(scripted.delay)
                    status, data, headers = scripted.respond(self.path, body)
                finally:
                    with scripted._lock:
                        scripted._in_flight -= 1
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

        return Handler

    def __enter__(self) -> ScriptedServer:
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def unresponsive_server() -> Iterator[str]:
    """A socket that accepts connections (in the kernel backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(16)
        yield f"http://{LOOPBACK}:{listener.getsockname()[1]}/v1"


def _tail(path: Path, lines: int = 25) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


@contextmanager
def policy_server_process(spec: str, log_dir: Path, ready_timeout: float) -> Iterator[str]:
    """Run ``python -m creditgym.agents.serve.server SPEC`` in its own process; yield its URL.

    Waits (at most `ready_timeout` seconds) until ``GET /v1/models`` answers; fails with the
    server's stderr if it dies or never gets ready. The process is always stopped on exit.
    """
    with policy_server(spec, log_dir, ready_timeout) as (base_url, _):
        yield base_url


@contextmanager
def policy_server(
    spec: str,
    log_dir: Path,
    ready_timeout: float,
    extra_args: Sequence[str] = (),
    *,
    headers: dict[str, str] | None = None,
    command: Sequence[str] = ("-m", "creditgym.agents.serve.server"),
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`policy_server_process`, yielding the process too (for tests that kill it mid-run).

    `extra_args` go after the model spec; `headers` are sent with the readiness probe (an API
    key); `command` is what follows ``python`` (``("-m", "creditgym", "serve")`` for the CLI).
    """
    port = free_port()
    base_url = f"http://{LOOPBACK}:{port}/v1"
    stdout_path, stderr_path = log_dir / "server.out", log_dir / "server.err"
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, *command, spec, "--port", str(port), "--host", LOOPBACK]
            + ["--threads", "1"]  # several torch threads crawl on a CPU shared with other tests
            + list(extra_args),
            stdout=stdout,
            stderr=stderr,
        )
    try:
        _wait_ready(process, base_url, ready_timeout, stderr_path, headers or {})
        yield base_url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_ready(
    process: subprocess.Popen,
    base_url: str,
    timeout: float,
    stderr_path: Path,
    headers: dict[str, str],
) -> None:
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.2) + 1):
        if process.poll() is not None:
            raise RuntimeError(
                f"the server exited with code {process.returncode}:\n{_tail(stderr_path)}"
            )
        try:
            if httpx.get(f"{base_url}/models", headers=headers, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    raise RuntimeError(
        f"the server at {base_url} was not ready after {timeout}s:\n{_tail(stderr_path)}"
    )


@contextmanager
def raw_server(
    serve_connection: Callable[[socket.socket, threading.Event], None],
) -> Iterator[str]:
    """A TCP server on a thread that hands each accepted connection to
    ``serve_connection(conn, stopped)``, for answers no HTTP library would send (trickled
    headers, endless bodies, bombs). `stopped` is set on exit: long-running handlers must
    poll it. Yields the base URL; every handler thread is joined (bounded) on exit."""
    stopped = threading.Event()
    handlers: list[threading.Thread] = []
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(16)
    listener.settimeout(0.05)

    def handle(conn: socket.socket) -> None:
        with conn:
            try:
                serve_connection(conn, stopped)
            except OSError:  # the client hung up: that is what these servers provoke
                pass

    def accept_loop() -> None:
        while not stopped.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5.0)
            thread = threading.Thread(target=handle, args=(conn,), daemon=True)
            handlers.append(thread)
            thread.start()

    acceptor = threading.Thread(target=accept_loop, daemon=True)
    acceptor.start()
    try:
        yield f"http://{LOOPBACK}:{listener.getsockname()[1]}/v1"
    finally:
        stopped.set()
        acceptor.join(timeout=5)
        listener.close()
        for thread in handlers:
            thread.join(timeout=5)


def read_request(conn: socket.socket) -> bytes:
    """Read one HTTP request's head and body (by Content-Length) from `conn`."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def rss_bytes() -> int:
    """This process's resident memory now (VmRSS from /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status (these tests need Linux)")

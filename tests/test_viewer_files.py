"""`creditgym view` and `--export` over hostile episode and metrics files: one bad line
(nested past the parser's limit, a list where a number belongs, types that differ from record
to record, invalid UTF-8, 10 MB long) is skipped and counted, never a crash; clients that hang
up cost no traceback. Judged by exit codes, stderr, HTTP answers and the written page."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from creditgym.episode_log import episode_record
from creditgym.trajectory import Episode, Turn
from creditgym.view import EpisodeStore, make_server

LOOPBACK = "127.0.0.1"


def _good(iteration: int = 1) -> bytes:
    episode = Episode(turns=[Turn(observation="o", action="a", reward=1.0)])
    return json.dumps(episode_record(episode, iteration=iteration)).encode() + b"\n"


def _with(**fields) -> bytes:
    record = json.loads(_good())
    record.update(fields)
    return json.dumps(record).encode() + b"\n"


HOSTILE_EPISODE_LINES = {
    "nested": b'{"turns": []' + b', "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
    "nested-in-limit": _with(credit=json.loads("[" * 500 + "]" * 500)),
    "list-iteration": _with(iteration=[1]),
    "object-return": _with(**{"return": {"a": 1}}),
    "string-iteration": _with(iteration="2"),
    "string-length": _with(length="3"),
    "string-success": _with(success="no"),
    "turns-of-numbers": _with(turns=[1, 2]),
    "invalid-utf8": b'{"turns": [], "task": "\xff\xfe\xc3"}\n',
    "ten-megabytes": b'{"turns": [], "task": "' + b"a" * (10 << 20) + b'"}\n',
    "a-list": b"[1, 2, 3]\n",
}


def _run_dir(tmp_path, episode_line: bytes = b"", metrics_line: bytes = b""):
    run = tmp_path / "run"
    run.mkdir()
    (run / "episodes.jsonl").write_bytes(_good(1) + episode_line + _good(2))
    good_row = json.dumps({"iteration": 1, "train/return": 0.5}).encode() + b"\n"
    (run / "metrics.jsonl").write_bytes(good_row + metrics_line + good_row)
    return run


def _export(run, out) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "creditgym.cli", "view", str(run), "--export", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("name", list(HOSTILE_EPISODE_LINES))
def test_a_hostile_episode_line_is_skipped_and_counted(tmp_path, name):
    store = EpisodeStore(_run_dir(tmp_path, HOSTILE_EPISODE_LINES[name]))
    overview = store.overview()
    assert overview["episodes"] == 2
    assert any("1 line(s) were not episode records" in n for n in overview["notices"])
    assert [store.episode(s["id"])["iteration"] for s in store.summaries()] == [1, 2]


@pytest.mark.parametrize("name", ["nested", "list-iteration", "invalid-utf8", "ten-megabytes"])
def test_export_over_a_hostile_episode_line_exits_0_and_shows_the_count(tmp_path, name):
    run = _run_dir(tmp_path, HOSTILE_EPISODE_LINES[name])
    done = _export(run, tmp_path / "out.html")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "1 line(s) were not episode records" in done.stdout
    assert "1 line(s) were not episode records" in (tmp_path / "out.html").read_text()


HOSTILE_METRIC_LINES = {
    "nested": b'{"iteration": 1, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
    "list-value": b'{"iteration": 2, "train/return": [1, 2]}\n',
    "string-iteration": b'{"iteration": "3", "train/return": 0.1}\n',
    "invalid-utf8": b'{"iteration": 4, "\xff": 1}\n',
    "ten-megabytes": b'{"iteration": 5, "x": "' + b"a" * (10 << 20) + b'"}\n',
    "a-number": b"17\n",
}


@pytest.mark.parametrize("name", list(HOSTILE_METRIC_LINES))
def test_a_hostile_metrics_line_is_skipped_and_counted(tmp_path, name):
    store = EpisodeStore(_run_dir(tmp_path, metrics_line=HOSTILE_METRIC_LINES[name]))
    assert store.metrics() == [{"iteration": 1, "train/return": 0.5}] * 2
    assert any("1 line(s) of metrics.jsonl" in n for n in store.overview()["notices"])


def test_export_over_a_hostile_metrics_line_exits_0(tmp_path):
    run = _run_dir(tmp_path, metrics_line=HOSTILE_METRIC_LINES["nested"])
    done = _export(run, tmp_path / "out.html")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "1 line(s) of metrics.jsonl" in done.stdout


@pytest.fixture
def viewer(tmp_path, capfd):
    """(base URL, captured stderr reader) of a viewer over a run with every hostile line."""
    run = _run_dir(tmp_path, b"".join(HOSTILE_EPISODE_LINES.values()))
    server = make_server(EpisodeStore(run), LOOPBACK, 0)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}", lambda: capfd.readouterr().err
    finally:
        server.shutdown()
        server.server_close()


def test_the_viewer_serves_every_route_over_hostile_lines(viewer):
    url, _ = viewer
    host = {"Host": url.split("//")[1]}
    overview = httpx.get(f"{url}/api/overview", headers=host, timeout=10).json()
    assert overview["episodes"] == 2
    assert any(f"{len(HOSTILE_EPISODE_LINES)} line(s)" in n for n in overview["notices"])
    for path in ["/", "/api/episodes", "/api/episode?id=0", "/api/group?id=1", "/api/metrics"]:
        assert httpx.get(f"{url}{path}", headers=host, timeout=10).status_code == 200, path


@pytest.mark.parametrize("when", ["mid-request", "before-reading"])
def test_clients_that_hang_up_cost_no_traceback(viewer, when):
    url, stderr = viewer
    port = int(url.rsplit(":", 1)[1])
    for _ in range(10):
        with socket.create_connection((LOOPBACK, port), timeout=5) as conn:
            if when == "mid-request":
                conn.sendall(b"GET /api/metrics HTTP/1.1\r\nHost: ")
            else:  # ask for the whole page, then reset the connection without reading it
                conn.sendall(f"GET / HTTP/1.1\r\nHost: {url.split('//')[1]}\r\n\r\n".encode())
            conn.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
    time.sleep(0.5)
    assert (
        httpx.get(
            f"{url}/api/overview", headers={"Host": url.split("//")[1]}, timeout=10
        ).status_code
        == 200
    )
    assert "Traceback" not in stderr()

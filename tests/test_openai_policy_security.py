"""OpenAIPolicy against hostile servers on 127.0.0.1: trickled headers, huge bodies, gzip
bombs, JSON nested past the parser's recursion limit, NaN log-probs, long Retry-After. Each
attack is judged by its side effects: wall time, this process's memory, the turn recorded."""

from __future__ import annotations

import socket
import threading
import time
import zlib

import pytest
from _servers import ScriptedServer, json_reply, raw_server, read_request, rss_bytes

from creditgym.agents.openai_client.policy import OpenAIPolicy, OpenAIPolicyError

MIB = 1 << 20


def _head(status: str = "200 OK", **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}"] + [
        f"{name.replace('_', '-')}: {v}" for name, v in headers.items()
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _policy(url: str, **kwargs) -> OpenAIPolicy:
    return OpenAIPolicy(url, model="m", **{"timeout": 2.0, "max_retries": 0, **kwargs})


def _generate_timed(policy: OpenAIPolicy, chat: bool = True):
    started = time.monotonic()
    [generation] = policy.generate(["hello"])
    return generation, time.monotonic() - started


# ---- the deadline covers the whole exchange ------------------------------------------------------


def test_headers_trickled_one_byte_at_a_time_are_cut_at_the_deadline():
    def trickle(conn: socket.socket, stopped: threading.Event) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        for byte in b"X-Slow: " + b"a" * 12:  # a header line trickled for 30 s
            if stopped.wait(1.5):
                return
            conn.sendall(bytes([byte]))

    with raw_server(trickle) as url:
        generation, elapsed = _generate_timed(_policy(url, timeout=2.0))
    assert generation.text == "" and "timed out" in generation.error
    assert elapsed < 2.0 + 1.0, f"generate() took {elapsed:.1f}s with timeout=2"


def test_body_trickled_after_fast_headers_is_cut_at_the_deadline():
    def trickle(conn: socket.socket, stopped: threading.Event) -> None:
        read_request(conn)
        conn.sendall(_head(Content_Type="application/json", Content_Length="100000"))
        for _ in range(40):  # 20 s of trickle at most
            if stopped.wait(0.5):
                return
            conn.sendall(b" ")

    with raw_server(trickle) as url:
        generation, elapsed = _generate_timed(_policy(url, timeout=1.5))
    assert "timed out" in generation.error
    assert elapsed < 1.5 + 1.0


def test_retries_and_their_waits_share_one_deadline():
    def trickle(conn: socket.socket, stopped: threading.Event) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        for _ in range(40):  # 20 s of trickle at most
            if stopped.wait(0.5):
                return
            conn.sendall(b"X")

    with raw_server(trickle) as url:
        generation, elapsed = _generate_timed(_policy(url, timeout=1.0, max_retries=2))
    assert "timed out" in generation.error
    assert elapsed < 3 * 1.0 + 1.5


# ---- response size ----------------------------------------------------------------------------


def _endless_zeros(content_length: int | None):
    def serve(conn: socket.socket, stopped: threading.Event) -> None:
        read_request(conn)
        headers = {"Content_Type": "application/json"}
        if content_length is not None:
            headers["Content_Length"] = str(content_length)
        conn.sendall(_head(**headers))
        block = b"0" * (256 * 1024)
        for _ in range(200 * MIB // len(block)):  # at most 200 MB, then give up
            if stopped.is_set():
                return
            conn.sendall(block)

    return serve


@pytest.mark.parametrize("declared", [200 * MIB, None], ids=["content-length", "until-close"])
def test_huge_body_is_stopped_at_the_size_cap_with_memory_bounded(declared):
    before = rss_bytes()
    with raw_server(_endless_zeros(declared)) as url:
        generation, elapsed = _generate_timed(
            _policy(url, timeout=20.0, max_response_bytes=1 * MIB)
        )
    growth = rss_bytes() - before
    assert generation.text == "" and "max_response_bytes" in generation.error
    assert growth < 48 * MIB, f"memory grew by {growth / MIB:.0f} MiB for a 1 MiB cap"
    assert elapsed < 10


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """512 MiB of zeros, gzipped to about 0.5 MB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(MIB)
    return b"".join([compressor.compress(zeros) for _ in range(512)] + [compressor.flush()])


def test_gzip_bomb_is_stopped_while_inflating_with_memory_bounded(gzip_bomb):
    def bomb(conn: socket.socket, stopped: threading.Event) -> None:
        read_request(conn)
        conn.sendall(
            _head(
                Content_Type="application/json",
                Content_Encoding="gzip",
                Content_Length=str(len(gzip_bomb)),
            )
        )
        conn.sendall(gzip_bomb)

    before = rss_bytes()
    with raw_server(bomb) as url:
        generation, elapsed = _generate_timed(
            _policy(url, timeout=20.0, max_response_bytes=1 * MIB)
        )
    growth = rss_bytes() - before
    assert generation.text == "" and "max_response_bytes" in generation.error
    assert growth < 48 * MIB, f"memory grew by {growth / MIB:.0f} MiB inflating a gzip bomb"
    assert elapsed < 10


def test_a_gzipped_answer_within_the_cap_is_read():
    body = b'{"choices": [{"message": {"content": "ok"}}]}'
    packed = zlib.compressobj(6, zlib.DEFLATED, 31)
    packed = packed.compress(body) + packed.flush()

    def gzipped(conn: socket.socket, stopped: threading.Event) -> None:
        read_request(conn)
        conn.sendall(_head(Content_Encoding="gzip", Content_Length=str(len(packed))) + packed)

    with raw_server(gzipped) as url:
        generation, _ = _generate_timed(_policy(url))
    assert (generation.text, generation.error) == ("ok", None)


# ---- answers that are JSON but hostile ----------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"[" * 200_000 + b"]" * 200_000, b'{"choices": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"],
    ids=["bare", "inside-choices"],
)
def test_json_nested_past_the_recursion_limit_is_an_invalid_turn(raw):
    reply = (200, raw, {"Content-Type": "application/json"})
    with ScriptedServer(lambda path, body: reply) as server:
        [generation] = _policy(server.url).generate(["hello"])  # no RecursionError
    assert generation.text == "" and "nested" in generation.error
    assert len(server.requests) == 1  # not retried


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
@pytest.mark.parametrize("chat", [True, False], ids=["chat", "completions"])
def test_non_finite_logprobs_are_an_invalid_turn(value, chat):
    if chat:
        raw = (
            '{"choices": [{"message": {"content": "ok"}, '
            '"logprobs": {"content": [{"token": "t", "logprob": %s}]}}]}'
        )
    else:
        raw = '{"choices": [{"text": "ok", "logprobs": {"token_logprobs": [-0.1, %s]}}]}'
    reply = (200, (raw % value).encode(), {"Content-Type": "application/json"})
    with ScriptedServer(lambda path, body: reply) as server:
        [generation] = _policy(server.url, chat=chat).generate(["hello"])
    assert generation.text == "" and "finite" in generation.error


def test_non_finite_prompt_scores_raise_a_clear_error():
    raw = b'{"choices": [{"logprobs": {"token_logprobs": [null, NaN], "text_offset": [0, 1]}}]}'
    with ScriptedServer(lambda path, body: (200, raw, {})) as server:
        with pytest.raises(OpenAIPolicyError, match="finite"):
            _policy(server.url).logprobs(["a"], ["b"])


# ---- Retry-After -----------------------------------------------------------------------------


def test_retry_after_longer_than_the_time_left_is_not_waited_for():
    reply = json_reply({"error": {"message": "busy"}}, 503, **{"Retry-After": "30"})
    with ScriptedServer(lambda path, body: reply) as server:
        generation, elapsed = _generate_timed(_policy(server.url, timeout=2.0, max_retries=2))
    assert "HTTP 503" in generation.error and "Retry-After" in generation.error
    assert elapsed < 2.0
    assert len(server.requests) == 1


def test_a_short_retry_after_is_honoured():
    replies = iter(
        [
            json_reply({"error": {"message": "busy"}}, 429, **{"Retry-After": "1"}),
            json_reply({"choices": [{"message": {"content": "ok"}}]}),
        ]
    )
    with ScriptedServer(lambda path, body: next(replies)) as server:
        generation, elapsed = _generate_timed(_policy(server.url, timeout=2.0, max_retries=1))
    assert (generation.text, generation.error) == ("ok", None)
    assert 1.0 <= elapsed < 2.5


@pytest.mark.parametrize(
    "header",
    [
        "nan",
        "NaN",
        "inf",
        "-inf",
        "-5",
        "1e400",
        "1_0",
        "0x10",
        "5s",
        "garbage",
        "",
        "٥",
    ],
    ids=lambda h: h[:8] or "empty",
)
def test_a_retry_after_of_any_spelling_never_raises_or_outlasts_the_deadline(header):
    replies = iter(
        [
            json_reply({"error": {"message": "busy"}}, 503, **{"Retry-After": header}),
            json_reply({"choices": [{"message": {"content": "ok"}}]}),
        ]
    )
    with ScriptedServer(lambda path, body: next(replies)) as server:
        policy = _policy(server.url, timeout=2.0, max_retries=1, backoff=0.05)
        generation, elapsed = _generate_timed(policy)  # no ValueError from sleep(nan)
    assert (generation.text, generation.error) == ("ok", None)  # unreadable: the back-off
    assert elapsed < 2.0


@pytest.mark.parametrize(
    "header", ["9" * 5000, "86400", "Fri, 31 Dec 9999 23:59:59 GMT"], ids=["digits", "day", "date"]
)
def test_a_retry_after_far_beyond_the_deadline_is_not_waited_for(header):
    reply = json_reply({"error": {"message": "busy"}}, 503, **{"Retry-After": header})
    with ScriptedServer(lambda path, body: reply) as server:
        generation, elapsed = _generate_timed(_policy(server.url, timeout=2.0, max_retries=2))
    assert "Retry-After" in generation.error
    assert elapsed < 1.0
    assert len(server.requests) == 1


def test_a_retry_after_date_in_the_near_future_is_honoured():
    from email.utils import formatdate

    when = formatdate(time.time() + 2, usegmt=True)  # 1 to 2 s away (dates have whole seconds)
    replies = iter(
        [
            json_reply({"error": {"message": "busy"}}, 429, **{"Retry-After": when}),
            json_reply({"choices": [{"message": {"content": "ok"}}]}),
        ]
    )
    with ScriptedServer(lambda path, body: next(replies)) as server:
        policy = _policy(server.url, timeout=4.0, max_retries=1, backoff=0.0)
        generation, elapsed = _generate_timed(policy)
    assert (generation.text, generation.error) == ("ok", None)
    assert 0.7 <= elapsed < 3.5


NOT_LOGPROBS = ["0.5", "1e308", "true", "false", '"-0.5"', "1" + "0" * 400, "-1" + "0" * 400]


@pytest.mark.parametrize("value", NOT_LOGPROBS, ids=lambda v: v[:8])
@pytest.mark.parametrize("chat", [True, False], ids=["chat", "completions"])
def test_logprobs_that_are_not_log_probabilities_are_an_invalid_turn(value, chat):
    if chat:
        raw = (
            '{"choices": [{"message": {"content": "ok"}, '
            '"logprobs": {"content": [{"token": "t", "logprob": %s}]}}]}'
        )
    else:
        raw = '{"choices": [{"text": "ok", "logprobs": {"token_logprobs": [-0.1, %s]}}]}'
    reply = (200, (raw % value).encode(), {"Content-Type": "application/json"})
    with ScriptedServer(lambda path, body: reply) as server:
        [generation] = _policy(server.url, chat=chat).generate(["hello"])  # nothing raised
    assert generation.text == "" and "log-prob" in generation.error


@pytest.mark.parametrize("listing", ['"-1-2"', '{"a": -1}', "-1"], ids=["string", "dict", "number"])
def test_token_logprobs_that_are_not_a_list_are_an_invalid_turn(listing):
    raw = '{"choices": [{"text": "ok", "logprobs": {"token_logprobs": %s}}]}'
    with ScriptedServer(lambda path, body: (200, (raw % listing).encode(), {})) as server:
        [generation] = _policy(server.url, chat=False).generate(["hello"])
    assert generation.text == "" and "not a list" in generation.error


@pytest.mark.parametrize(
    "value", ["0.5", "true", "1" + "0" * 400], ids=["positive", "bool", "huge"]
)
def test_prompt_scores_that_are_not_log_probabilities_raise_a_clear_error(value):
    raw = '{"choices": [{"logprobs": {"token_logprobs": [null, %s], "text_offset": [0, 1]}}]}'
    with ScriptedServer(lambda path, body: (200, (raw % value).encode(), {})) as server:
        with pytest.raises(OpenAIPolicyError, match="unusable scores"):
            _policy(server.url).logprobs(["a"], ["b"])

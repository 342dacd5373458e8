"""`OpenAIPolicy`: any OpenAI-compatible endpoint (vLLM, llama.cpp server, `creditgym serve`,
the OpenAI API...) behind the `Policy` interface.

Each prompt is one request (``/chat/completions`` with the prompt as the user message, or
``/completions`` with ``chat=False``); a batch is sent concurrently from a thread pool, at most
`concurrency` requests at once, and the answers come back in prompt order.

Reliability (a training run never dies mid-way because of its model server, and a hostile or
broken server cannot hang it or fill its memory):

* one deadline of `timeout` seconds covers the whole exchange for one prompt: connecting,
  sending, the answer's headers and body, and every retry and wait between attempts. httpx's
  own timeouts are per socket operation, so a server trickling one header byte per second
  would never trip them; a watchdog shuts the connection's socket when the deadline passes;
* connection errors, 408, 429 and 5xx are retried, at most `max_retries` times and only while
  time is left, with exponential back-off and jitter (``backoff * 2**attempt * uniform(1,
  1.5)``); a ``Retry-After`` header (whole seconds or an HTTP date; any other spelling is
  ignored) is honoured when it fits in the time left (and is at most ``_MAX_RETRY_AFTER``
  seconds), otherwise the request fails at once instead of waiting;
* answers are read while streaming up to `max_response_bytes` (after gzip/deflate decoding,
  which is done here in bounded steps, so a gzip bomb is stopped while it inflates);
* anything else that goes wrong (a 4xx, an answer too large, not JSON, nested deeper than the
  JSON parser's recursion limit, lacking the fields we read, or with a log-prob that is not a
  finite number <= 0: NaN, infinite, positive, a boolean, a string, an integer too large for
  a float) is not retried;
* a request that still fails gives a `Generation` with empty text and `error` saying which URL
  failed and how, so the rollout records an invalid turn; ``strict=True`` raises
  `OpenAIPolicyError` instead.

Log-probs: the per-token log-probs the server returns (``logprobs: true``) fill
`Generation.logprobs`. OpenAI-compatible servers do not return token *ids*, so
`Generation.token_ids` and `Generation.prompt_ids` stay empty: these generations are for
evaluation and judging, not for a token-level policy-gradient update.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import numpy as np

from creditgym.agents.base import Generation
from creditgym.agents.openai_client.answers import (
    BadLogprob,
    MalformedAnswer,
    continuation_logprobs,
    preview,
    read_choice,
    server_message,
)
from creditgym.agents.openai_client.bounded_http import (
    ExchangeDeadline,
    ResponseTooLarge,
    UnsupportedEncoding,
    read_capped,
)

__all__ = ["OpenAIPolicy", "OpenAIPolicyError", "normalize_base_url"]

T = TypeVar("T")

_MAX_RETRY_AFTER = 30.0
_DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: RFC 9110's ``delay-seconds``: ASCII digits only.
_DELAY_SECONDS = re.compile(r"[0-9]+")
_RETRY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))


class OpenAIPolicyError(RuntimeError):
    """An OpenAI-compatible server could not be used: unreachable, or it answered an error
    or garbage."""


class _RequestFailed(Exception):
    """One request failed for good; `message` is the user-facing reason."""

    def __init__(
        self, message: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def normalize_base_url(base_url: str) -> str:
    """``http://host:8000`` -> ``http://host:8000/v1``; a URL with a path is kept as given.

    OpenAI clients take the base URL with its ``/v1``; users often leave it out.
    """
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"base_url {base_url!r} is not an http(s) URL; expected something like 'http://127.0.0.1:8000/v1'"
        )
    return url if parts.path else url + "/v1"


class OpenAIPolicy:
    """A model behind an OpenAI-compatible HTTP API.

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1`` (``/v1`` is added to a bare
            ``http://host:port``).
        model: the served model's name; None asks ``GET /models`` and takes the first one
            (raises `OpenAIPolicyError` at construction when the server is unreachable).
        api_key: sent as a bearer token; defaults to ``$OPENAI_API_KEY``, else ``"EMPTY"``
            (what vLLM and llama.cpp accept when they run without a key).
        temperature, top_p, max_tokens: sampling parameters sent with every request.
        concurrency: most requests in flight at once.
        timeout: seconds one prompt's request may take in all, from connecting to the last
            byte of the answer, retries and the waits between them included.
        max_retries: extra attempts after a retryable failure, while time is left (see the
            module docstring).
        backoff: base of the exponential back-off between attempts, in seconds.
        chat: use ``/chat/completions`` (prompt as the user message); False uses
            ``/completions`` with the raw prompt text.
        system_prompt: a system message put before every prompt (chat mode only).
        seed: sent as the request ``seed`` (plus a running request count, so repeated prompts
            in a batch still get different samples); None sends no seed.
        logprobs: ask for per-token log-probs; turn off for servers that reject the field.
        strict: raise `OpenAIPolicyError` when a request fails instead of returning a
            `Generation` with `error` set.
        max_response_bytes: the largest answer read (decoded); a larger one fails the request
            as soon as it passes the cap, so memory stays bounded whatever the server sends.

    `admissible_actions` and `envs` are accepted by `generate` and ignored: the endpoint
    samples free-form text, so list the actions in the prompt and parse the answer.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_tokens: int = 256,
        concurrency: int = 8,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        chat: bool = True,
        system_prompt: str | None = None,
        seed: int | None = None,
        logprobs: bool = True,
        strict: bool = False,
        max_response_bytes: int = _DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if backoff < 0:
            raise ValueError(f"backoff must be >= 0 seconds, got {backoff}")
        if max_response_bytes < 1:
            raise ValueError(f"max_response_bytes must be >= 1, got {max_response_bytes}")
        if system_prompt is not None and not chat:
            raise ValueError(
                "system_prompt needs chat=True: the completions endpoint has no system message"
            )
        self.base_url = normalize_base_url(base_url)
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.max_tokens = int(max_tokens)
        self.concurrency = int(concurrency)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.chat = bool(chat)
        self.system_prompt = system_prompt
        self.seed = seed
        self.request_logprobs = bool(logprobs)
        self.strict = bool(strict)
        self.max_response_bytes = int(max_response_bytes)
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "EMPTY")
        self._client = httpx.Client(
            timeout=self.timeout,
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/json",
                "Accept-Encoding": "gzip, deflate",  # the encodings `read_capped` inflates
            },
            # no keep-alive: the deadline watchdog learns each exchange's socket when it
            # connects, which a reused connection would not report
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=0),
        )
        self._requests_sent = 0
        self._count_lock = threading.Lock()
        self.model = model if model is not None else self._first_served_model()

    # ---- HTTP with deadlines and retries ---------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _attempt(self, method: str, url: str, body: dict[str, Any] | None, deadline: float) -> Any:
        """One request that must be over by `deadline` (`time.monotonic`); returns the decoded
        JSON or raises."""
        content = None if body is None else json.dumps(body).encode()
        left = deadline - time.monotonic()
        if left <= 0:
            raise httpx.ConnectTimeout("no time left for another attempt")
        with ExchangeDeadline(left) as watchdog:
            try:
                with self._client.stream(
                    method,
                    url,
                    content=content,
                    timeout=httpx.Timeout(left),
                    extensions={"trace": watchdog.trace},
                ) as response:
                    raw = read_capped(response, self.max_response_bytes, deadline)
            except httpx.TransportError as error:
                if watchdog.expired:  # the watchdog shut the socket: call it what it was
                    raise httpx.ReadTimeout("the deadline passed mid-exchange") from None
                raise error
            except ResponseTooLarge as error:
                raise _RequestFailed(
                    f"{error}; the cap is max_response_bytes={self.max_response_bytes}"
                ) from None
            except UnsupportedEncoding as error:
                raise _RequestFailed(f"{error}; only gzip and deflate are accepted") from None
        if response.status_code != 200:
            raise _RequestFailed(
                f"HTTP {response.status_code}: {server_message(raw)}",
                status=response.status_code,
                retry_after=_retry_after(response.headers.get("retry-after")),
            )
        try:
            return json.loads(raw)
        except RecursionError:
            raise _RequestFailed(
                "the answer is JSON nested too deeply to read (beyond the parser's recursion "
                f"limit): {preview(raw, 40)}"
            ) from None
        except ValueError:
            raise _RequestFailed(f"the answer is not JSON: {preview(raw)}") from None

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """`_attempt` with retries on connection errors, 408, 429 and 5xx, all within one
        deadline of `timeout` seconds.

        Raises `_RequestFailed` with a message naming the URL, the reason and the attempts.
        """
        url = self._url(path)
        deadline = time.monotonic() + self.timeout
        attempts = 0
        while True:
            attempts += 1
            retry_after = None
            try:
                return self._attempt(method, url, body, deadline)
            except httpx.TimeoutException as error:
                reason = f"timed out after {self.timeout}s ({type(error).__name__})"
            except httpx.TransportError as error:
                reason = (
                    f"could not connect or the connection broke ({type(error).__name__}: {error})"
                )
            except httpx.HTTPError as error:  # e.g. an undecodable body: retrying will not help
                raise _RequestFailed(
                    f"{method} {url} failed: {type(error).__name__}: {error}"
                ) from None
            except _RequestFailed as error:
                if error.status not in _RETRY_STATUSES:
                    raise _RequestFailed(f"{method} {url} failed: {error}", error.status) from None
                reason = str(error)
                retry_after = error.retry_after
            left = deadline - time.monotonic()
            if attempts > self.max_retries or left <= 0:
                break
            if retry_after is not None and retry_after > left:
                reason += (
                    f"; the server asked to retry after {retry_after:g}s (Retry-After), more "
                    f"than the {left:.1f}s left of timeout={self.timeout}s"
                )
                break
            if retry_after is None:
                retry_after = self.backoff * 2 ** (attempts - 1) * random.uniform(1.0, 1.5)
            time.sleep(min(retry_after, left))
        raise _RequestFailed(f"{method} {url} failed after {attempts} attempt(s): {reason}")

    def _first_served_model(self) -> str:
        try:
            answer = self._request("GET", "/models")
            return str(answer["data"][0]["id"])
        except _RequestFailed as error:
            raise OpenAIPolicyError(
                f"could not ask the server which model it serves: {error}. Is it running at "
                f"{self.base_url}? Or pass model=... explicitly."
            ) from None
        except (KeyError, IndexError, TypeError):
            raise OpenAIPolicyError(
                f"GET {self._url('/models')} did not list any model (expected "
                f"{{'data': [{{'id': ...}}]}}); pass model=... explicitly"
            ) from None

    # ---- Policy interface ------------------------------------------------------------------

    def _body(self, prompt: str, seed: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "n": 1,
        }
        if seed is not None:
            body["seed"] = seed
        if self.chat:
            messages = (
                [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
            )
            body["messages"] = messages + [{"role": "user", "content": prompt}]
            if self.request_logprobs:
                body["logprobs"] = True
        else:
            body["prompt"] = prompt
            if self.request_logprobs:
                body["logprobs"] = 1
        return body

    def _generate_one(self, prompt: str, seed: int | None) -> Generation:
        path = "/chat/completions" if self.chat else "/completions"
        try:
            answer = self._request("POST", path, self._body(prompt, seed))
            text, logprobs = read_choice(answer, self.chat)
        except _RequestFailed as error:
            message = str(error)
        except MalformedAnswer as error:
            message = f"POST {self._url(path)} answered JSON we cannot read: {error}"
        else:
            return Generation(text=text, logprobs=logprobs)
        if self.strict:
            raise OpenAIPolicyError(message)
        return Generation(text="", error=message)

    def generate(
        self,
        prompts: Sequence[str],
        admissible_actions: Sequence[Sequence[str]] | None = None,
        envs: Sequence[Any] | None = None,
    ) -> list[Generation]:
        """One response per prompt, requested concurrently; returned in prompt order.

        Never raises for a failed request unless `strict`: see the module docstring.
        """
        if not prompts:
            return []
        with self._count_lock:
            first = self._requests_sent
            self._requests_sent += len(prompts)
        seeds = [None if self.seed is None else self.seed + first + i for i in range(len(prompts))]
        return self._concurrently(self._generate_one, prompts, seeds)

    def logprobs(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[np.ndarray]:
        """Per-token log-probs of each continuation after its prompt, scored by the server.

        Sends ``prompt + continuation`` to ``/completions`` with ``echo=True, logprobs=1,
        max_tokens=0`` and keeps the tokens that start at or after the continuation's first
        character (a token straddling the boundary counts with the prompt). The text is scored
        raw: no chat template, no EOS after the continuation. vLLM and `creditgym serve`
        support this; servers that do not raise `NotImplementedError`. Any other failure raises
        `OpenAIPolicyError` (a scorer has no "invalid turn" to fall back on).
        """
        if len(prompts) != len(continuations):
            raise ValueError(
                f"got {len(prompts)} prompts but {len(continuations)} continuations; give one each"
            )
        if not prompts:
            return []
        return self._concurrently(self._score_one, prompts, continuations)

    def _concurrently(self, request: Callable[..., T], *arguments: Sequence[Any]) -> list[T]:
        """``[request(*row) for row in zip(*arguments)]``, `concurrency` at a time, in order."""
        workers = min(self.concurrency, len(arguments[0]))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai-policy") as pool:
            return list(pool.map(request, *arguments))

    def _score_one(self, prompt: str, continuation: str) -> np.ndarray:
        body = {
            "model": self.model,
            "prompt": prompt + continuation,
            "echo": True,
            "logprobs": 1,
            "max_tokens": 0,
            "temperature": 1.0,
        }
        url = self._url("/completions")
        try:
            answer = self._request("POST", "/completions", body)
        except _RequestFailed as error:
            if (
                error.status is not None
                and 400 <= error.status < 500
                and error.status not in _RETRY_STATUSES
            ):
                raise NotImplementedError(
                    f"the server at {self.base_url} does not score prompts (echo=True, logprobs=1, "
                    f"max_tokens=0 on /completions): {error}. Use a server with prompt log-probs "
                    "(vLLM, `creditgym serve`) or score with an HFPolicy."
                ) from None
            raise OpenAIPolicyError(str(error)) from None
        try:
            return continuation_logprobs(answer, len(prompt))
        except BadLogprob as error:
            raise OpenAIPolicyError(f"POST {url} answered unusable scores: {error}") from None
        except MalformedAnswer as error:
            raise NotImplementedError(
                f"POST {url} with echo=True did not return prompt log-probs ({error}); this server "
                "cannot score continuations: use vLLM, `creditgym serve` or an HFPolicy"
            ) from None

    # ---- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self._client.close()

    def __enter__(self) -> OpenAIPolicy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"OpenAIPolicy({self.base_url!r}, model={self.model!r}, "
            f"temperature={self.temperature}, top_p={self.top_p}, max_tokens={self.max_tokens}, "
            f"chat={self.chat})"
        )


def _retry_after(header: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for, in [0, `_MAX_RETRY_AFTER`]; None when it is
    absent or unreadable (the back-off is used then).

    RFC 9110 allows ``<digits>`` or an HTTP date. Anything else (``nan``, ``inf``, ``-5``,
    ``1e3``, ``1_0``, garbage) is ignored rather than trusted: a hostile server must not make
    the client raise or sleep past its deadline.
    """
    if header is None:
        return None
    text = header.strip()
    if _DELAY_SECONDS.fullmatch(text):
        # compared as text: int() of thousands of digits raises (Python's digit limit)
        digits = text.lstrip("0") or "0"
        return float(min(int(digits), _MAX_RETRY_AFTER)) if len(digits) < 6 else _MAX_RETRY_AFTER
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a date without a zone is read as UTC
        when = when.replace(tzinfo=datetime.timezone.utc)
    seconds = (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER) if math.isfinite(seconds) else None

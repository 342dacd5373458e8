"""An OpenAI-compatible HTTP server for a creditgym model policy (``creditgym serve``).

Serves an `HFPolicy` (a trained checkpoint, the tiny model, SmolLM2...) so other tools, and
our own `OpenAIPolicy`, can use it like any vLLM or llama.cpp endpoint::

    python -m creditgym.agents.server runs/x/checkpoints/iter_000040/model --port 8000

Endpoints (the subset of the OpenAI API agents and evaluators use):

* ``GET /v1/models``: the one served model.
* ``POST /v1/chat/completions``: ``messages`` go through the tokenizer's chat template when it
  has one, else their contents are joined with newlines; ``temperature`` (0 = greedy),
  ``top_p``, ``max_tokens``, ``stop``, ``seed``, ``logprobs`` / ``top_logprobs`` (OpenAI's
  per-token format); ``n`` must be 1; no streaming.
* ``POST /v1/completions``: ``prompt`` (a string or a list of strings, generated as one
  batch), the same sampling fields, ``logprobs: k`` and ``echo`` with ``max_tokens: 0`` to
  score a prompt (``token_logprobs``, ``text_offset``), which is what `OpenAIPolicy.logprobs`
  sends.

Scheduling: the HTTP layer is a `ThreadingHTTPServer` (one thread per connection); the model
runs one request at a time under a lock (no micro-batching across requests), and a completions
request with several prompts is one batched `generate`. Bad requests get a 400 with an
OpenAI-style error body; an unexpected failure gets a 500 and the server keeps serving.

Log-probs are those of the policy's sampling distribution (``log_softmax(logits /
temperature)``; temperature 1 for greedy requests and for scoring). The stop token itself is
not in the returned tokens, as in the OpenAI API.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import torch

from creditgym.agents.openai_format import (
    MAX_TOP_LOGPROBS,
    BadRequest,
    Choice,
    Sampling,
    chat_logprobs,
    completion_logprobs,
    error_body,
    read_integer,
    read_sampling,
    render_messages,
    usage,
)

__all__ = ["PolicyServer", "main", "make_server", "serve"]

_MAX_BODY_BYTES = 16 * 1024 * 1024
#: What `serve` needs from a policy (an `HFPolicy` has all of it).
_REQUIRED = (
    "tokenizer",
    "model",
    "device",
    "generate",
    "temperature",
    "top_p",
    "max_new_tokens",
    "generator",
)


@contextmanager
def _attributes(obj: Any, **values: Any) -> Iterator[None]:
    """Set attributes for the duration of a block, then put the old values back."""
    old = {name: getattr(obj, name) for name in values}
    try:
        for name, value in values.items():
            setattr(obj, name, value)
        yield
    finally:
        for name, value in old.items():
            setattr(obj, name, value)


def _one_at_a_time(endpoint: Callable[[PolicyServer, dict[str, Any]], dict[str, Any]]):
    """Run an endpoint under the server's lock: the model, its sampling settings and the
    tokenizer (whose Rust backend is not safe to share between threads) serve one request at a
    time."""

    @functools.wraps(endpoint)
    def locked(self: PolicyServer, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return endpoint(self, body)

    return locked


class PolicyServer:
    """The API of one served policy, independent of HTTP: each endpoint maps a JSON body to a
    JSON answer. Holds the policy and the lock that serves requests one at a time."""

    def __init__(self, policy: Any, model_name: str) -> None:
        missing = [name for name in _REQUIRED if not hasattr(policy, name)]
        if missing:
            raise TypeError(
                f"cannot serve {type(policy).__name__}: it lacks {', '.join(missing)}. The server "
                "needs a model policy with a tokenizer (an HFPolicy: a checkpoint directory, "
                "'tiny', 'smollm2', or a Hugging Face model name), not a scripted one like "
                "'expert' or 'random'"
            )
        self.policy = policy
        self.tokenizer = policy.tokenizer
        self.model_name = model_name
        self.created = int(time.time())
        self._lock = threading.Lock()
        self._stop_ids = set(getattr(policy, "stop_token_ids", {self.tokenizer.eos_token_id}))

    # ---- endpoints ------------------------------------------------------------------------

    def models(self) -> dict[str, Any]:
        card = {
            "id": self.model_name,
            "object": "model",
            "created": self.created,
            "owned_by": "creditgym",
        }
        return {"object": "list", "data": [card]}

    @_one_at_a_time
    def chat_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_model(body)
        if body.get("top_logprobs") and not body.get("logprobs"):
            raise BadRequest("'top_logprobs' needs 'logprobs': true", "top_logprobs")
        top = (
            read_integer(body, "top_logprobs", 0, 0, MAX_TOP_LOGPROBS)
            if body.get("logprobs")
            else None
        )
        sampling = read_sampling(body, default_max_tokens=256, top_logprobs=top)
        [choice] = self._complete([render_messages(self.tokenizer, body.get("messages"))], sampling)
        answer = {
            "index": 0,
            "message": {"role": "assistant", "content": choice.text},
            "logprobs": None if top is None else chat_logprobs(choice),
            "finish_reason": choice.finish_reason,
        }
        return self._envelope("chat.completion", [answer], usage([choice]))

    @_one_at_a_time
    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_model(body)
        prompts = body.get("prompt")
        prompts = [prompts] if isinstance(prompts, str) else prompts
        if (
            not isinstance(prompts, list)
            or not prompts
            or not all(isinstance(p, str) for p in prompts)
        ):
            raise BadRequest(
                "'prompt' must be a string or a non-empty list of strings "
                "(token ids are not supported)",
                "prompt",
            )
        top = read_integer(body, "logprobs", None, 0, MAX_TOP_LOGPROBS)
        sampling = read_sampling(body, default_max_tokens=16, top_logprobs=top)
        if body.get("echo"):
            if sampling.max_tokens != 0:
                raise BadRequest(
                    "echo is supported only for scoring: send 'max_tokens': 0 with 'echo': true",
                    "echo",
                )
            choices = [self._score(prompt, top) for prompt in prompts]
        elif sampling.max_tokens == 0:
            choices = [Choice(text="", finish_reason="length") for _ in prompts]
        else:
            choices = self._complete(prompts, sampling)
        answers = [
            {
                "index": index,
                "text": choice.text,
                "logprobs": None if top is None else completion_logprobs(choice),
                "finish_reason": choice.finish_reason,
            }
            for index, choice in enumerate(choices)
        ]
        return self._envelope("text_completion", answers, usage(choices))

    def _envelope(
        self, kind: str, answers: list[dict[str, Any]], counts: dict[str, int]
    ) -> dict[str, Any]:
        prefix = "chatcmpl" if kind == "chat.completion" else "cmpl"
        return {
            "id": f"{prefix}-{uuid.uuid4().hex}",
            "object": kind,
            "created": int(time.time()),
            "model": self.model_name,
            "choices": answers,
            "usage": counts,
        }

    def _check_model(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if model is not None and model != self.model_name:
            raise BadRequest(
                f"the model {model!r} does not exist here; this server serves {self.model_name!r} "
                "(GET /v1/models lists it)",
                "model",
                status=404,
            )

    # ---- model calls (the caller holds the lock) ------------------------------------------

    def _complete(self, prompts: list[str], sampling: Sampling) -> list[Choice]:
        """Generate for `prompts` in one batch."""
        policy = self.policy
        settings = {
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_new_tokens": sampling.max_tokens,
            "chat_template": False,  # the prompt text is already rendered
            "constrained": False,  # free text: a request carries no admissible actions
        }
        if sampling.seed is not None:
            settings["generator"] = torch.Generator(device=policy.device).manual_seed(sampling.seed)
        settings = {name: value for name, value in settings.items() if hasattr(policy, name)}
        with _attributes(policy, **settings):
            generations = policy.generate(prompts)
        choices = []
        for generation in generations:
            if generation.error:
                raise RuntimeError(f"the policy failed to generate: {generation.error}")
            ids, logprobs, text, finish_reason = self._cut(
                generation.token_ids, generation.logprobs, sampling.stop
            )
            choice = Choice(
                text=text,
                finish_reason=finish_reason,
                tokens=[self._decode([token]) for token in ids],
                logprobs=list(logprobs),
                prompt_tokens=len(generation.prompt_ids),
                completion_tokens=len(generation.token_ids),
            )
            if sampling.top_logprobs is not None:
                choice.offsets = [len(self._decode(ids[:n])) for n in range(len(ids))]
            if sampling.top_logprobs:
                prompt_ids = generation.prompt_ids
                rows = self._distributions(prompt_ids + ids, len(prompt_ids), sampling.temperature)
                choice.alternatives = self._alternatives(rows, sampling.top_logprobs)
            choices.append(choice)
        return choices

    def _cut(
        self, ids: list[int], logprobs: list[float], stop: Sequence[str]
    ) -> tuple[list[int], list[float], str, str]:
        """A response without its stop token and cut at the first stop string:
        (ids, logprobs, text, finish_reason)."""
        finish_reason = "length"
        if ids and ids[-1] in self._stop_ids:
            ids, logprobs, finish_reason = ids[:-1], logprobs[:-1], "stop"
        text = self._decode(ids)
        hits = [text.find(s) for s in stop if s in text]
        if hits:
            cut = min(hits)
            # the fewest tokens whose text reaches the stop string
            kept = next(n for n in range(len(ids) + 1) if len(self._decode(ids[:n])) > cut)
            ids, logprobs, text, finish_reason = ids[:kept], logprobs[:kept], text[:cut], "stop"
        return list(ids), list(logprobs), text, finish_reason

    def _score(self, prompt: str, top: int | None) -> Choice:
        """Echo a prompt with each token's log-prob given the tokens before it (the first: None)."""
        if not getattr(self.tokenizer, "is_fast", False):
            raise BadRequest("scoring (echo) needs a fast tokenizer for character offsets", "echo")
        encoding = self.tokenizer(prompt, return_offsets_mapping=True)
        ids = list(encoding["input_ids"])
        if not ids:
            raise BadRequest("the prompt is empty: there is nothing to score", "prompt")
        choice = Choice(
            text=prompt,
            finish_reason="length",
            tokens=[self._decode([token]) for token in ids],
            logprobs=[None],
            alternatives=[None],
            offsets=[start for start, _ in encoding["offset_mapping"]],
            prompt_tokens=len(ids),
        )
        if len(ids) > 1:
            rows = self._distributions(ids, 1, 1.0)
            targets = torch.tensor(ids[1:], dtype=torch.long, device=rows.device)
            choice.logprobs += rows.gather(-1, targets[:, None]).squeeze(-1).tolist()
            choice.alternatives += self._alternatives(rows, top or 0)
        return choice

    @torch.no_grad()
    def _distributions(self, ids: list[int], first: int, temperature: float) -> torch.Tensor:
        """Log-probs (len(ids) - first, vocab) of the distributions ids[first:] were drawn from."""
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.policy.device)
        logits = self.policy.model(input_ids=input_ids).logits[0, first - 1 : -1].float()
        return torch.log_softmax(logits / (temperature or 1.0), dim=-1)

    def _alternatives(self, rows: torch.Tensor, k: int) -> list[list[tuple[str, float]]]:
        """Per row the `k` most likely tokens (as text) and their log-probs."""
        if k == 0:
            return [[] for _ in range(rows.shape[0])]
        values, indices = rows.topk(min(k, rows.shape[-1]), dim=-1)
        return [
            [
                (self._decode([token]), value)
                for token, value in zip(row_ids.tolist(), row_values.tolist())
            ]
            for row_ids, row_values in zip(indices, values)
        ]

    def _decode(self, token_ids: Sequence[int]) -> str:
        return self.tokenizer.decode(
            list(token_ids), skip_special_tokens=True, clean_up_tokenization_spaces=False
        )


# ---- HTTP ------------------------------------------------------------------------------------


def _handler_class(api: PolicyServer) -> type[BaseHTTPRequestHandler]:
    routes = {
        ("GET", "/v1/models"): lambda body: api.models(),
        ("POST", "/v1/chat/completions"): api.chat_completion,
        ("POST", "/v1/completions"): api.completion,
    }

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: clients reuse their connections
        server_version = "creditgym"

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def _dispatch(self, method: str) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            try:
                route = routes.get((method, path))
                if route is None:
                    allowed = [m for m, p in routes if p == path]
                    if allowed:
                        raise BadRequest(
                            f"{method} {path} is not allowed; use {' or '.join(allowed)}",
                            status=405,
                        )
                    known = ", ".join(f"{m} {p}" for m, p in routes)
                    raise BadRequest(
                        f"no endpoint {method} {path}; this server has {known}", status=404
                    )
                body = self._read_json() if method == "POST" else {}
                self._send(200, route(body))
            except BadRequest as error:
                kind = "not_found_error" if error.status == 404 else "invalid_request_error"
                self._send(error.status, error_body(str(error), kind, error.param))
            except Exception as error:  # the server must outlive any one bad request
                traceback.print_exc(file=sys.stderr)
                self._send(
                    500,
                    error_body(f"internal error: {type(error).__name__}: {error}", "server_error"),
                )

        def _read_json(self) -> dict[str, Any]:
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                raise BadRequest(
                    "the request needs a Content-Length header and a JSON body", status=411
                )
            if int(length) > _MAX_BODY_BYTES:
                raise BadRequest(
                    f"the body is {length} bytes; at most {_MAX_BODY_BYTES} are accepted",
                    status=413,
                )
            raw = self.rfile.read(int(length))
            try:
                body = json.loads(raw)
            except ValueError as error:
                raise BadRequest(f"the body is not valid JSON: {error}") from None
            if not isinstance(body, dict):
                raise BadRequest(f"the body must be a JSON object, got {type(body).__name__}")
            return body

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def make_server(
    policy: Any, host: str = "127.0.0.1", port: int = 8000, model_name: str = "creditgym"
) -> ThreadingHTTPServer:
    """An HTTP server for `policy`, bound but not yet serving (call ``serve_forever()``).

    ``port=0`` picks a free port (read it back from ``server.server_address``).
    """
    server = ThreadingHTTPServer((host, port), _handler_class(PolicyServer(policy, model_name)))
    server.daemon_threads = True
    return server


def serve(
    policy: Any, host: str = "127.0.0.1", port: int = 8000, model_name: str = "creditgym"
) -> None:
    """Serve `policy` over the OpenAI API at ``http://host:port/v1`` until interrupted."""
    server = make_server(policy, host, port, model_name)
    bound_host, bound_port = server.server_address[:2]
    print(f"creditgym: serving {model_name!r} at http://{bound_host}:{bound_port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _default_model_name(spec: str) -> str:
    path = Path(spec).expanduser()
    return path.resolve().name if path.exists() else spec


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m creditgym.agents.server MODEL_SPEC [--host H] [--port N] [--model-name NAME]
    [--device D] [--threads N]``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m creditgym.agents.server",
        description="Serve a creditgym model policy over an OpenAI-compatible HTTP API.",
    )
    parser.add_argument(
        "model", help="tiny | smollm2 | a checkpoint directory | a Hugging Face model name"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: loopback only)"
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="port to listen on; 0 picks a free one"
    )
    parser.add_argument(
        "--model-name", default=None, help="the name clients send as 'model' (default: from MODEL)"
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's choice); 1 is much faster on a busy CPU",
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)

    from creditgym.agents.factory import load_policy

    if args.model in ("expert", "random") or args.model.startswith("openai:"):
        parser.error(
            f"{args.model!r} has no model to serve; give a checkpoint directory, 'tiny', "
            "'smollm2' or a Hugging Face model name"
        )
    policy = load_policy(args.model, device=args.device)
    serve(policy, args.host, args.port, args.model_name or _default_model_name(args.model))
    return 0


if __name__ == "__main__":
    sys.exit(main())

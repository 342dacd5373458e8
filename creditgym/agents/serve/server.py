"""An OpenAI-compatible HTTP server for a creditgym model policy (``creditgym serve``).

Serves an `HFPolicy` (a trained checkpoint, the tiny model, SmolLM2...) so other tools, and
our own `OpenAIPolicy`, can use it like any vLLM or llama.cpp endpoint::

    python -m creditgym.agents.serve.server runs/x/checkpoints/iter_000040/model --port 8000

Endpoints (the subset of the OpenAI API agents and evaluators use):

* ``GET /v1/models``: the one served model.
* ``POST /v1/chat/completions``: ``messages`` go through the tokenizer's chat template when it
  has one, else their contents are joined with newlines; ``temperature`` (0 = greedy),
  ``top_p``, ``max_tokens``, ``stop``, ``seed``, ``logprobs`` / ``top_logprobs`` (OpenAI's
  per-token format), ``ignore_eos`` (vLLM's extension); ``n`` must be 1; no streaming.
* ``POST /v1/completions``: ``prompt`` (a string or a list of at most 64 strings, generated
  one after the other), the same sampling fields, ``logprobs: k`` and ``echo`` with
  ``max_tokens: 0`` to score a prompt (``token_logprobs``, ``text_offset``), which is what
  `OpenAIPolicy.logprobs` sends.

Limits (`ServerLimits`, set by command-line options) bound what any one client can cost:
``max_tokens`` above ``--max-tokens`` (or past the model's context) is lowered to it; a prompt
over ``--max-prompt-tokens`` gets 400 and a body over ``--max-body-bytes`` 413; a request gets
``--request-timeout`` seconds from arrival to answer (503 after that); its line, headers and
body must arrive within ``--receive-timeout`` seconds of its first byte (408); a connection
idle for ``--connection-timeout`` seconds is closed; at most ``--max-connections`` are served
at once (503 beyond). JSON nested past the parser's recursion limit gets 400. With ``--api-key`` (or
``$CREDITGYM_API_KEY``) every request needs ``Authorization: Bearer <key>`` (401 otherwise).
The default bind address is 127.0.0.1.

Scheduling: the HTTP layer is a `ThreadingHTTPServer` (one thread per connection); the model
runs one forward pass at a time, and a generation decodes ``--slice-tokens`` tokens per turn
before the next waiting request gets the model (`creditgym.agents.serve.engine`), so a long
generation slows short ones down instead of locking them out; with ``--max-active``
generations running, a waiting one gets a running one's slot between slices (the preempted
one re-reads its tokens when its turn comes back). A client that hangs up mid-way
stops its generation at the next slice and is logged as one line. Bad requests get a 400 with
an OpenAI-style error body; an unexpected failure gets a 500 and the server keeps serving.

Log-probs are those of the policy's sampling distribution (``log_softmax(logits /
temperature)``; temperature 1 for greedy requests and for scoring). The stop token itself is
not in the returned tokens, as in the OpenAI API.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from creditgym.agents.protocols import TrainablePolicy
from creditgym.agents.serve.engine import Decoded, Decoding, Engine, sampling_temperature
from creditgym.agents.serve.http import BoundedHTTPServer, RequestContext, handler_class
from creditgym.agents.serve.openai_format import (
    MAX_TOP_LOGPROBS,
    BadRequest,
    Choice,
    Sampling,
    chat_logprobs,
    completion_logprobs,
    read_integer,
    read_sampling,
    render_messages,
    unicode_text,
    usage,
)
from creditgym.agents.serve.options import ServerLimits, add_server_arguments, limits_from_args

__all__ = ["PolicyServer", "ServerLimits", "main", "make_server", "serve"]

#: A prompt longer than this many characters per allowed token is first measured on a prefix,
#: so a megabyte of text is refused without tokenising all of it.
_CHARS_PER_TOKEN_BOUND = 8


class PolicyServer:
    """The API of one served policy, independent of HTTP: each endpoint maps a JSON body (and
    a `RequestContext`) to a JSON answer. Holds the policy and the `Engine` that shares its
    model fairly between requests."""

    def __init__(self, policy: Any, model_name: str, limits: ServerLimits | None = None) -> None:
        if not isinstance(policy, TrainablePolicy):
            raise TypeError(
                f"cannot serve {type(policy).__name__}: it is not a TrainablePolicy (a model "
                "with its tokenizer, device and sampler). The server "
                "needs a model policy with a tokenizer (an HFPolicy: a checkpoint directory, "
                "'tiny', 'smollm2', or a Hugging Face model name), not a scripted one like "
                "'expert' or 'random'"
            )
        self.policy = policy
        self.tokenizer = policy.tokenizer
        self.model_name = model_name
        self.limits = limits or ServerLimits()
        self.created = int(time.time())
        self._stop_ids = set(getattr(policy, "stop_token_ids", {self.tokenizer.eos_token_id}))
        self._context_tokens = getattr(
            getattr(policy.model, "config", None), "max_position_embeddings", None
        )
        self.engine = Engine(
            policy.model,
            policy.device,
            self._stop_ids,
            policy.generator,
            slice_tokens=self.limits.slice_tokens,
            max_active=self.limits.max_active,
        )

    # ---- endpoints ------------------------------------------------------------------------

    def models(self, body: dict[str, Any] | None = None, context: Any = None) -> dict[str, Any]:
        card = {
            "id": self.model_name,
            "object": "model",
            "created": self.created,
            "owned_by": "creditgym",
        }
        return {"object": "list", "data": [card]}

    def chat_completion(
        self, body: dict[str, Any], context: RequestContext | None = None
    ) -> dict[str, Any]:
        context = context or self._fresh_context()
        self._check_model(body)
        if body.get("top_logprobs") and not body.get("logprobs"):
            raise BadRequest("'top_logprobs' needs 'logprobs': true", "top_logprobs")
        top = (
            read_integer(body, "top_logprobs", 0, 0, MAX_TOP_LOGPROBS)
            if body.get("logprobs")
            else None
        )
        sampling = read_sampling(body, default_max_tokens=256, top_logprobs=top)
        messages = body.get("messages")
        prompt_ids = self.engine.run(
            lambda: self._prompt_ids(render_messages(self.tokenizer, messages), "messages"),
            context.deadline,
        )
        [choice] = self._complete([prompt_ids], sampling, context)
        answer = {
            "index": 0,
            "message": {"role": "assistant", "content": choice.text},
            "logprobs": None if top is None else chat_logprobs(choice),
            "finish_reason": choice.finish_reason,
        }
        return self._envelope("chat.completion", [answer], usage([choice]))

    def completion(
        self, body: dict[str, Any], context: RequestContext | None = None
    ) -> dict[str, Any]:
        context = context or self._fresh_context()
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
        if len(prompts) > self.limits.max_prompts:
            raise BadRequest(
                f"'prompt' lists {len(prompts)} prompts; this server takes at most "
                f"{self.limits.max_prompts} per request: send several requests",
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
            choices = [
                self.engine.run(functools.partial(self._score, prompt, top), context.deadline)
                for prompt in prompts
            ]
        else:
            prompt_ids = [
                self.engine.run(functools.partial(self._prompt_ids, prompt), context.deadline)
                for prompt in prompts
            ]
            if sampling.max_tokens == 0:
                choices = [
                    Choice(text="", finish_reason="length", prompt_tokens=len(ids))
                    for ids in prompt_ids
                ]
            else:
                choices = self._complete(prompt_ids, sampling, context)
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

    def _fresh_context(self) -> RequestContext:
        return RequestContext(time.monotonic() + self.limits.request_timeout)

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

    # ---- model work (methods named _x run under the engine's turn) ------------------------

    def _prompt_ids(self, text: str, param: str = "prompt") -> list[int]:
        """Token ids of a prompt; 400 if it is longer than ``--max-prompt-tokens``."""
        unicode_text(text, param)
        cap = self.limits.max_prompt_tokens
        if len(text) > cap * _CHARS_PER_TOKEN_BOUND:
            head = self.tokenizer(text[: cap * _CHARS_PER_TOKEN_BOUND])["input_ids"]
            if len(head) > cap + 1:  # +1: the cut may split the last token in two
                self._prompt_too_long(param, f"more than {cap}")
        ids = list(self.tokenizer(text)["input_ids"])
        if len(ids) > cap:
            self._prompt_too_long(param, str(len(ids)))
        if self._context_tokens is not None and len(ids) >= self._context_tokens:
            self._prompt_too_long(
                param, str(len(ids)), f"the model's context is {self._context_tokens} tokens"
            )
        return ids

    def _prompt_too_long(self, param: str, tokens: str, why: str | None = None) -> None:
        why = (
            why
            or f"this server accepts at most {self.limits.max_prompt_tokens} (--max-prompt-tokens)"
        )
        raise BadRequest(f"the prompt is {tokens} tokens long; {why}", param)

    def _complete(
        self, prompts: list[list[int]], sampling: Sampling, context: RequestContext
    ) -> list[Choice]:
        """Generate for each prompt in turn (each in fair slices), then format the answers."""
        choices = []
        for prompt_ids in prompts:
            room = (
                self._context_tokens - len(prompt_ids)
                if self._context_tokens
                else sampling.max_tokens
            )
            decoding = Decoding(
                max_tokens=max(1, min(sampling.max_tokens, self.limits.max_tokens, room)),
                temperature=sampling_temperature(sampling.temperature),
                top_p=sampling.top_p,
                top_logprobs=sampling.top_logprobs or 0,
                ignore_eos=sampling.ignore_eos,
                generator=None
                if sampling.seed is None
                else torch.Generator(device=self.policy.device).manual_seed(sampling.seed),
            )
            should_stop = self._stop_check(sampling.stop) if sampling.stop else None
            decoded = self.engine.generate(
                prompt_ids, decoding, context.deadline, context.cancelled, should_stop
            )
            prompt_tokens = len(prompt_ids)
            choices.append(
                self.engine.run(
                    functools.partial(self._choice, decoded, prompt_tokens, sampling),
                    context.deadline,
                )
            )
        return choices

    def _stop_check(self, stops: Sequence[str]) -> Callable[[list[int]], bool]:
        """Whether a generation so far contains a stop string (checked between slices)."""

        def should_stop(ids: list[int]) -> bool:
            text = self._decode(ids)  # once per check, not once per stop string
            return any(stop in text for stop in stops)

        return should_stop

    def _choice(self, decoded: Decoded, prompt_tokens: int, sampling: Sampling) -> Choice:
        ids, logprobs = list(decoded.token_ids), list(decoded.logprobs)
        alternatives = list(decoded.alternatives)
        finish_reason = decoded.finish_reason
        if finish_reason == "stop" and ids and ids[-1] in self._stop_ids:
            ids, logprobs, alternatives = ids[:-1], logprobs[:-1], alternatives[:-1]
        text = self._decode(ids)
        hits = [text.find(s) for s in sampling.stop if s in text]
        if hits:
            cut = min(hits)
            # the fewest tokens whose text reaches the stop string
            kept = next(n for n in range(len(ids) + 1) if len(self._decode(ids[:n])) > cut)
            ids, logprobs, alternatives = ids[:kept], logprobs[:kept], alternatives[:kept]
            text, finish_reason = text[:cut], "stop"
        choice = Choice(
            text=text,
            finish_reason=finish_reason,
            tokens=[self._decode([token]) for token in ids],
            logprobs=logprobs,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(decoded.token_ids),
        )
        if sampling.top_logprobs is not None:
            choice.offsets = [len(self._decode(ids[:n])) for n in range(len(ids))]
        if sampling.top_logprobs:
            choice.alternatives = [
                [(self._decode([token]), value) for token, value in row] for row in alternatives
            ]
        return choice

    def _score(self, prompt: str, top: int | None) -> Choice:
        """Echo a prompt with each token's log-prob given the tokens before it (the first: None)."""
        if not getattr(self.tokenizer, "is_fast", False):
            raise BadRequest("scoring (echo) needs a fast tokenizer for character offsets", "echo")
        self._prompt_ids(prompt)  # the length checks, before the offsets' extra work
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


def make_server(
    policy: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    model_name: str = "creditgym",
    limits: ServerLimits | None = None,
) -> BoundedHTTPServer:
    """An HTTP server for `policy`, bound but not yet serving (call ``serve_forever()``).

    ``port=0`` picks a free port (read it back from ``server.server_address``).
    """
    limits = limits or ServerLimits()
    api = PolicyServer(policy, model_name, limits)
    routes = {
        ("GET", "/v1/models"): api.models,
        ("POST", "/v1/chat/completions"): api.chat_completion,
        ("POST", "/v1/completions"): api.completion,
    }
    return BoundedHTTPServer((host, port), handler_class(routes, limits), limits.max_connections)


def serve(
    policy: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    model_name: str = "creditgym",
    limits: ServerLimits | None = None,
) -> None:
    """Serve `policy` over the OpenAI API at ``http://host:port/v1`` until interrupted."""
    limits = limits or ServerLimits()
    server = make_server(policy, host, port, model_name, limits)
    bound_host, bound_port = server.server_address[:2]
    if limits.api_key is None and not _is_loopback(host):
        print(
            f"creditgym: warning: serving on {host} without --api-key: anyone who can reach "
            "this port can use the model",
            file=sys.stderr,
            flush=True,
        )
    print(f"creditgym: serving {model_name!r} at http://{bound_host}:{bound_port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _default_model_name(spec: str) -> str:
    path = Path(spec).expanduser()
    return path.resolve().name if path.exists() else spec


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m creditgym.agents.serve.server MODEL_SPEC [--host H] [--port N] [--api-key K]
    [--max-tokens N] ...`` (``--help`` lists every limit); returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m creditgym.agents.serve.server",
        description="Serve a creditgym model policy over an OpenAI-compatible HTTP API.",
    )
    add_server_arguments(parser)
    return run(parser.parse_args(argv), parser)


def run(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    *,
    policy_options: dict[str, Any] | None = None,
) -> int:
    """Serve what parsed `add_server_arguments` options ask for (``creditgym serve``).

    `policy_options` go to `load_policy` (``creditgym serve tiny`` passes the tiny model's
    corpus, which this layer cannot play: it never imports the envs).
    """
    try:
        limits = limits_from_args(args)
    except ValueError as error:
        parser.error(f"--{str(error).replace('_', '-')}")
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.model in ("expert", "random") or args.model.startswith("openai:"):
        parser.error(
            f"{args.model!r} has no model to serve; give a checkpoint directory, 'tiny', "
            "'smollm2' or a Hugging Face model name"
        )
    if args.model == "tiny" and "corpus" not in (policy_options or {}):
        # the tiny model's corpus is played from the envs, which this layer never imports
        parser.error("serve the tiny model with `creditgym serve tiny` (it fits it on the envs)")
    from creditgym.agents.factory import load_policy

    policy = load_policy(args.model, device=args.device, **(policy_options or {}))
    model_name = args.model_name or _default_model_name(args.model)
    serve(policy, args.host, args.port, model_name, limits)
    return 0


if __name__ == "__main__":
    sys.exit(main())

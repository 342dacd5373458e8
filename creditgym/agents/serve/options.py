"""The limits `creditgym serve` enforces, and the command-line options that set them.

Kept apart from `creditgym.agents.serve.server` (which imports torch) so the CLI can build its
parser without loading a model stack.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

__all__ = ["API_KEY_ENV", "ServerLimits", "add_server_arguments", "limits_from_args"]

#: Environment variable read for the API key when ``--api-key`` is not given (a key on the
#: command line is visible to every user of the machine through ``ps``).
API_KEY_ENV = "CREDITGYM_API_KEY"

#: Timeouts at or past this many seconds are refused (a socket cannot wait that long).
_FOREVER = 1e9


@dataclass(frozen=True)
class ServerLimits:
    """What one request, and one connection, may cost the server.

    Attributes:
        max_tokens: most tokens generated per answer; a request asking for more is lowered
            to this (its ``finish_reason`` is then ``"length"`` if it runs that long).
        max_prompt_tokens: longest prompt in tokens (after the chat template); a longer one
            gets 400.
        max_body_bytes: largest request body; a larger one gets 413 without being read.
        request_timeout: seconds from a request's arrival to its answer: waiting for the
            model, and generating, stop there with 503.
        connection_timeout: seconds a connection may sit idle (between requests, or in the
            middle of sending one) before the server closes it and frees its thread.
        receive_timeout: seconds from a request's first byte until its line, headers and
            body have all arrived (408 after that), so a client trickling a byte a second
            cannot hold a connection however it paces its bytes.
        max_connections: open connections served at once; more are answered 503 and closed.
        max_active: generations holding a KV cache at once; more wait for a slot.
        slice_tokens: tokens one request decodes before the next waiting request gets the
            model (fair turns; see `creditgym.agents.serve.engine`).
        max_prompts: most prompts in one ``/v1/completions`` request.
        api_key: when set, every request needs ``Authorization: Bearer <api_key>`` (401
            otherwise; compared in constant time).
    """

    max_tokens: int = 1024
    max_prompt_tokens: int = 4096
    max_body_bytes: int = 1024 * 1024
    request_timeout: float = 120.0
    connection_timeout: float = 30.0
    receive_timeout: float = 20.0
    max_connections: int = 64
    max_active: int = 8
    slice_tokens: int = 16
    max_prompts: int = 64
    api_key: str | None = None

    def __post_init__(self) -> None:
        for name in (
            "max_tokens",
            "max_prompt_tokens",
            "max_body_bytes",
            "max_connections",
            "max_active",
            "slice_tokens",
            "max_prompts",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("request_timeout", "connection_timeout", "receive_timeout"):
            if not 0 < getattr(self, name) < _FOREVER:  # nan and inf fail too
                raise ValueError(
                    f"{name} must be > 0 seconds and finite, got {getattr(self, name)}"
                )
        if self.api_key is not None and not self.api_key:
            raise ValueError("api_key must not be empty; leave it unset to serve without one")


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``creditgym serve`` / ``python -m creditgym.agents.serve.server``."""
    defaults = ServerLimits()
    parser.add_argument(
        "model", help="tiny | smollm2 | a checkpoint directory | a Hugging Face model name"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: loopback only; anything else should use --api-key)",
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
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"require 'Authorization: Bearer KEY' (default: ${API_KEY_ENV} if set, else none)",
    )
    limits = parser.add_argument_group("limits per request and connection")
    limits.add_argument(
        "--max-tokens",
        type=int,
        default=defaults.max_tokens,
        help="most tokens generated per answer; larger max_tokens are lowered to it",
    )
    limits.add_argument(
        "--max-prompt-tokens",
        type=int,
        default=defaults.max_prompt_tokens,
        help="longest prompt in tokens; longer ones get 400",
    )
    limits.add_argument(
        "--max-body-bytes",
        type=int,
        default=defaults.max_body_bytes,
        help="largest request body; larger ones get 413",
    )
    limits.add_argument(
        "--request-timeout",
        type=float,
        default=defaults.request_timeout,
        help="seconds a request may wait and generate before it gets 503",
    )
    limits.add_argument(
        "--connection-timeout",
        type=float,
        default=defaults.connection_timeout,
        help="seconds a connection may stay idle before it is closed",
    )
    limits.add_argument(
        "--receive-timeout",
        type=float,
        default=defaults.receive_timeout,
        help="seconds from a request's first byte until all of it has arrived; slower gets 408",
    )
    limits.add_argument(
        "--max-connections",
        type=int,
        default=defaults.max_connections,
        help="connections served at once; more get 503",
    )
    limits.add_argument(
        "--max-active",
        type=int,
        default=defaults.max_active,
        help="generations in progress at once (each holds a KV cache); more wait",
    )
    limits.add_argument(
        "--slice-tokens",
        type=int,
        default=defaults.slice_tokens,
        help="tokens a request decodes before yielding the model to the next one waiting",
    )


def limits_from_args(args: argparse.Namespace) -> ServerLimits:
    """`ServerLimits` from parsed `add_server_arguments` options; raises ValueError naming a
    bad value."""
    api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV) or None
    return ServerLimits(
        max_tokens=args.max_tokens,
        max_prompt_tokens=args.max_prompt_tokens,
        max_body_bytes=args.max_body_bytes,
        request_timeout=args.request_timeout,
        connection_timeout=args.connection_timeout,
        receive_timeout=args.receive_timeout,
        max_connections=args.max_connections,
        max_active=args.max_active,
        slice_tokens=args.slice_tokens,
        api_key=api_key,
    )

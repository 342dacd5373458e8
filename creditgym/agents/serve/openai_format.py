"""The OpenAI API's wire format as `creditgym.agents.serve.server` speaks it: request fields read
and validated (a `BadRequest` names the field and what was expected), chat messages rendered
to a prompt, and the JSON shapes of answers, log-probs and errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_TOP_LOGPROBS",
    "MAX_STOPS",
    "BadRequest",
    "Choice",
    "Sampling",
    "chat_logprobs",
    "completion_logprobs",
    "error_body",
    "read_integer",
    "read_sampling",
    "render_messages",
    "unicode_text",
    "usage",
]

MAX_TOP_LOGPROBS = 20

#: Most stop strings per request (OpenAI allows 4): each is looked for after every slice.
MAX_STOPS = 16


class BadRequest(Exception):
    """A request the server refuses; becomes an OpenAI-style error body with `status`."""

    def __init__(
        self, message: str, param: str | None = None, status: int = 400, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.param = param
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Sampling:
    """The sampling fields of one request, validated."""

    temperature: float
    top_p: float
    max_tokens: int
    stop: tuple[str, ...]
    seed: int | None
    top_logprobs: int | None  # None: no log-probs asked; k >= 0: log-probs with k alternatives
    ignore_eos: bool = False  # vLLM's extension: keep generating past the stop token


def _number(body: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise BadRequest(f"'{name}' must be a number in [{low}, {high}], got {value!r:.200}", name)
    return float(value)


def read_integer(
    body: dict[str, Any], name: str, default: int | None, low: int, high: int | None = None
) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        raise BadRequest(f"'{name}' must be {bound}, got {value!r:.200}", name)
    return value


def read_sampling(
    body: dict[str, Any], *, default_max_tokens: int, top_logprobs: int | None
) -> Sampling:
    """The fields both endpoints share; `top_logprobs` comes from the endpoint's own field."""
    if body.get("stream"):
        raise BadRequest(
            "streaming is not supported by this server; send 'stream': false", "stream"
        )
    if read_integer(body, "n", 1, 1) != 1:
        raise BadRequest(
            f"only n=1 is supported, got n={body['n']}; send one request per sample", "n"
        )
    max_tokens_field = (
        "max_tokens" if body.get("max_tokens") is not None else "max_completion_tokens"
    )
    stop = body.get("stop")
    stop = (stop,) if isinstance(stop, str) else stop
    if stop is not None and not (
        isinstance(stop, list) and all(isinstance(s, str) and s for s in stop)
    ):
        raise BadRequest(
            f"'stop' must be a non-empty string or a list of them, got {body['stop']!r:.200}",
            "stop",
        )
    if stop is not None and len(stop) > MAX_STOPS:
        raise BadRequest(
            f"'stop' lists {len(stop)} strings; at most {MAX_STOPS} are allowed", "stop"
        )
    ignore_eos = body.get("ignore_eos", False)
    if not isinstance(ignore_eos, bool):
        raise BadRequest(f"'ignore_eos' must be true or false, got {ignore_eos!r}", "ignore_eos")
    return Sampling(
        ignore_eos=ignore_eos,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 1e-6, 1.0),
        max_tokens=read_integer(body, max_tokens_field, default_max_tokens, 0),
        stop=tuple(stop or ()),
        seed=read_integer(body, "seed", None, -(2**63), 2**63 - 1),
        top_logprobs=top_logprobs,
    )


def unicode_text(text: str, param: str) -> str:
    """`text` if it is valid Unicode; JSON's ``\\ud800`` escapes can give a lone surrogate,
    which no tokenizer can encode: a 400 naming where it is."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise BadRequest(
            f"'{param}' is not valid Unicode: it holds a lone surrogate "
            f"({text[error.start]!r}) at character {error.start}; send UTF-8 text",
            param,
        ) from None
    return text


def _message_text(message: Any, index: int) -> tuple[str, str]:
    """(role, text) of one chat message; text parts of a content list are joined."""
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise BadRequest(
            f"messages[{index}] must be an object with a 'role' and a 'content'", "messages"
        )
    content = message.get("content")
    if isinstance(content, list):
        parts = [
            part.get("text")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        ]
        if len(parts) != len(content) or not all(isinstance(part, str) for part in parts):
            raise BadRequest(
                f"messages[{index}].content: only text parts are supported", "messages"
            )
        content = "".join(parts)
    if not isinstance(content, str):
        raise BadRequest(
            f"messages[{index}].content must be a string, got {type(content).__name__}", "messages"
        )
    return message["role"], content


def render_messages(tokenizer: Any, messages: Any) -> str:
    """The prompt text of a chat: the tokenizer's chat template (with the generation prompt)
    when it has one, else the message contents joined with newlines."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest(
            "'messages' must be a non-empty list of {'role', 'content'} objects", "messages"
        )
    chat = [
        dict(zip(("role", "content"), _message_text(message, i)))
        for i, message in enumerate(messages)
    ]
    if not getattr(tokenizer, "chat_template", None):
        return "\n".join(message["content"] for message in chat)
    text = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    bos = tokenizer.bos_token
    if bos and text.startswith(bos) and _adds_bos(tokenizer):  # the tokenizer will add it again
        text = text[len(bos) :]
    return text


def _adds_bos(tokenizer: Any) -> bool:
    ids = tokenizer("a")["input_ids"]
    return bool(ids) and tokenizer.bos_token_id is not None and ids[0] == tokenizer.bos_token_id


def error_body(
    message: str, kind: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass
class Choice:
    """One answer before it is formatted: its text and, per token, the token's text, log-prob
    (None for a prompt's first token), alternatives (the top-k ``(text, log-prob)`` pairs; None
    where not asked for) and character offset in the text."""

    text: str
    finish_reason: str  # "stop" (stop token or string) | "length"
    tokens: list[str] = field(default_factory=list)
    logprobs: list[float | None] = field(default_factory=list)
    alternatives: list[list[tuple[str, float]] | None] | None = None
    offsets: list[int] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


def usage(choices: list[Choice]) -> dict[str, int]:
    """OpenAI's ``usage`` of a whole answer."""
    prompt = sum(choice.prompt_tokens for choice in choices)
    completion = sum(choice.completion_tokens for choice in choices)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _alternatives(choice: Choice) -> list[list[tuple[str, float]] | None]:
    return choice.alternatives if choice.alternatives is not None else [[]] * len(choice.tokens)


def chat_logprobs(choice: Choice) -> dict[str, Any]:
    """OpenAI's chat ``logprobs``: per token its text, log-prob, UTF-8 bytes and alternatives."""
    content = [
        {
            "token": token,
            "logprob": logprob,
            "bytes": list(token.encode()),
            "top_logprobs": [
                {"token": text, "logprob": value, "bytes": list(text.encode())}
                for text, value in top or []
            ],
        }
        for token, logprob, top in zip(choice.tokens, choice.logprobs, _alternatives(choice))
    ]
    return {"content": content}


def completion_logprobs(choice: Choice) -> dict[str, Any]:
    """OpenAI's (legacy) completions ``logprobs``: parallel lists, one entry per token."""
    return {
        "tokens": choice.tokens,
        "token_logprobs": choice.logprobs,
        "top_logprobs": [None if top is None else dict(top) for top in _alternatives(choice)],
        "text_offset": choice.offsets or [],
    }

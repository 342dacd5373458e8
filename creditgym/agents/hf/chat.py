"""Conversations as token ids that grow turn by turn, for KV-cache reuse across turns.

A conversation is rendered with the model's own chat template (or, for a tokenizer without
one such as the tiny model's, `SIMPLE_CHAT_TEMPLATE`), but tokenised piece by piece: the
system message, then per turn the user message (with the generation prompt), the response
ids exactly as sampled, and the template's text that closes an assistant message. The ids
of turn k's context are therefore a prefix of turn k+1's, so a policy keeps the KV cache of a
conversation and prefills only the new pieces, and the update can score a whole episode as
one sequence. The pieces are found by rendering small fixed conversations and taking text
differences, which works for any template that renders earlier messages the same whatever
follows them.

When a context would overflow its token budget, the oldest turns are dropped (the system
message always stays) and the cache is rebuilt; a turn that cannot fit even alone is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SIMPLE_CHAT_TEMPLATE", "ChatState", "ChatTokens"]

#: The template of tokenizers that have none (the tiny model): the messages one per line, an
#: assistant message after the ``action:`` marker of the compact prompt, closed by EOS.
SIMPLE_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}action:{{ message['content'] }}{{ eos_token }}\n"
    "{% else %}{{ message['content'] }}\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}action:{% endif %}"
)

# Placeholder messages whose renderings give the template's pieces by text difference.
_SYSTEM = {"role": "system", "content": "S"}
_USER = {"role": "user", "content": "U"}
_ASSISTANT = {"role": "assistant", "content": "A"}


@dataclass
class ChatState:
    """A policy's token-level view of one `Conversation` (kept in ``conversation.state``)."""

    system: list[int]
    users: list[list[int]] = field(default_factory=list)  # per turn: its user piece
    responses: list[list[int]] = field(default_factory=list)  # per answered turn: sampled ids
    tails: list[list[int]] = field(default_factory=list)  # per answered turn: the closing piece
    first: int = 0  # the oldest turn still in the context (older ones dropped by the budget)
    seen: int = 0  # messages of the conversation already turned into pieces
    pending: list[int] | None = None  # ids of the response just sampled, until recorded
    cache: Any = None  # the policy's KV cache of context()[:cached] (per layer keys, values)
    cached: int = 0

    def context(self) -> list[int]:
        """The ids the model sees before the current turn's response."""
        ids = list(self.system)
        for k in range(self.first, len(self.users)):
            ids += self.users[k]
            if k < len(self.responses):
                ids += self.responses[k] + self.tails[k]
        return ids


class ChatTokens:
    """Renders conversations into `ChatState` pieces with one tokenizer and template.

    Args:
        tokenizer: the model's tokenizer.
        stop_token_ids: the ids a sampled response may end with.
        enable_thinking: passed to templates that take it (Qwen3-style thinking switches).
    """

    def __init__(
        self, tokenizer: Any, stop_token_ids: set[int], enable_thinking: bool | None = None
    ) -> None:
        self.tokenizer = tokenizer
        self.template = getattr(tokenizer, "chat_template", None) or SIMPLE_CHAT_TEMPLATE
        self.options = (
            {"enable_thinking": enable_thinking}
            if enable_thinking is not None and "enable_thinking" in self.template
            else {}
        )
        self.stop_texts = {
            token: tokenizer.decode([token], skip_special_tokens=False) for token in stop_token_ids
        }
        prompt = self.render([_SYSTEM, _USER], True)
        closed = self.render([_SYSTEM, _USER, _ASSISTANT], False)
        if not closed.startswith(prompt + _ASSISTANT["content"]):
            raise ValueError(
                "this chat template does not render an assistant message as the generation "
                "prompt followed by the message, so a conversation cannot grow turn by turn "
                "from its KV cache; use policy.context=window"
            )
        self.assistant_close = closed[len(prompt) + len(_ASSISTANT["content"]) :]
        self._after_assistant = closed

    def render(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(
            list(messages),
            chat_template=self.template,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            **self.options,
        )

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _difference(self, longer: str, prefix: str) -> str:
        if not longer.startswith(prefix):
            raise ValueError(
                "this chat template renders earlier messages differently once more follow, so "
                "a conversation cannot grow turn by turn from its KV cache; use "
                "policy.context=window"
            )
        return longer[len(prefix) :]

    def start(self, system: dict[str, str]) -> ChatState:
        return ChatState(system=self.encode(self.render([system], False)), seen=1)

    def user_piece(self, message: dict[str, str], first: bool) -> list[int]:
        """The ids of a user message and the generation prompt, after the system message
        (`first`) or after a closed assistant message."""
        if first:
            prefix = self.render([_SYSTEM], False)
            text = self.render([_SYSTEM, message], True)
        else:
            prefix = self._after_assistant
            text = self.render([_SYSTEM, _USER, _ASSISTANT, message], True)
        return self.encode(self._difference(text, prefix))

    def close_piece(self, response_ids: Sequence[int]) -> list[int]:
        """The ids that close an assistant message after `response_ids`: the template's closing
        text, less the stop token the response already ends with."""
        close = self.assistant_close
        if response_ids and response_ids[-1] in self.stop_texts:
            stop = self.stop_texts[response_ids[-1]]
            if stop and close.startswith(stop):
                close = close[len(stop) :]
        return self.encode(close) if close else []

    def sync(self, state: ChatState, messages: Sequence[dict[str, str]], eos: int) -> None:
        """Turn the messages added since the last call into pieces."""
        for message in messages[state.seen :]:
            if message["role"] == "assistant":
                ids = state.pending
                if ids is None:  # not sampled by this policy: tokenise the text
                    ids = self.encode(message["content"]) + [eos]
                state.responses.append(list(ids))
                state.tails.append(self.close_piece(ids))
                state.pending = None
            else:
                state.users.append(self.user_piece(message, first=not state.users))
        state.seen = len(messages)

    def fit(self, state: ChatState, budget: int, response_tokens: int) -> None:
        """Drop the oldest turns until the context plus a response fits in `budget` tokens
        (0 = no limit); dropping invalidates the KV cache."""
        if budget <= 0:
            return
        while (
            len(state.context()) + response_tokens > budget and state.first < len(state.users) - 1
        ):
            state.first += 1
            state.cache, state.cached = None, 0
        needed = len(state.context()) + response_tokens
        if needed > budget:
            raise ValueError(
                f"one turn needs {needed} tokens (system message {len(state.system)}, this "
                f"observation {len(state.users[-1])}, a response of up to {response_tokens}) but "
                f"policy.max_context_tokens={budget}; raise max_context_tokens or lower "
                "max_new_tokens / think_tokens"
            )

"""The model side of `creditgym serve`: fair turns on one model and a sliced decoding loop.

One model serves every request, one forward pass at a time. A request does not hold the model
for its whole generation: it decodes `slice_tokens` tokens per *turn*, then goes to the back of
a FIFO queue (`FairTurns`), so four short requests that arrive while a long one runs are
answered after a few of its slices, not after all of them. Each request carries a deadline
(a `time.monotonic` value): waiting for a turn or a decoding slot, and decoding itself, stop
with `DeadlinePassed` when it is over, and a `cancelled()` callback (the client hung up) stops
a generation between slices. At most `max_active` generations hold a KV cache at once; when
more wait, running ones take turns with them (`FairSlots`: a generation gives its cache up
between slices and re-reads its tokens when its slot comes back), so no number of long
generations locks a short request out.

Sampling is `HFPolicy`'s: log-probs are ``log_softmax(logits / temperature)`` (temperature 1
for greedy), nucleus filtering drops a token once the mass of the likelier ones reaches
``top_p``, and the draw uses the request's seeded generator (or the policy's shared one).
"""

from __future__ import annotations

import inspect
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "MIN_TEMPERATURE",
    "ClientGone",
    "DeadlinePassed",
    "Decoding",
    "Engine",
    "FairSlots",
    "FairTurns",
    "sampling_temperature",
]

#: The smallest temperature sampled at; a smaller positive one is raised to it. Logits divided
#: by 1e-300 overflow float32 to inf and the draw fails, while at 1e-4 the draw is already
#: greedy for any logit gap over about 1e-3, and the log-probs stay finite.
MIN_TEMPERATURE = 1e-4


def sampling_temperature(temperature: float) -> float:
    """The temperature decoding uses: 0 (greedy) stays 0, tiny ones become `MIN_TEMPERATURE`."""
    return 0.0 if temperature == 0 else max(float(temperature), MIN_TEMPERATURE)


class DeadlinePassed(Exception):
    """A request's deadline passed while it waited for the model or decoded."""


class ClientGone(Exception):
    """The client closed its connection: the work for it is abandoned."""


class FairTurns:
    """A first-come first-served lock: threads get it in the order they asked for it, so a
    thread that releases and asks again waits behind everyone already waiting (a plain
    `threading.Lock` lets it barge straight back in)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._queue: deque[object] = deque()
        self._held = False

    @contextmanager
    def turn(self, deadline: float) -> Iterator[None]:
        """Hold the lock for a block; raises `DeadlinePassed` if the wait outlasts `deadline`."""
        ticket = object()
        with self._condition:
            self._queue.append(ticket)
            try:
                while self._held or self._queue[0] is not ticket:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise DeadlinePassed("the request's deadline passed waiting for the model")
                    self._condition.wait(left)
            except BaseException:
                self._queue.remove(ticket)
                self._condition.notify_all()
                raise
            self._queue.popleft()
            self._held = True
        try:
            yield
        finally:
            with self._condition:
                self._held = False
                self._condition.notify_all()


class FairSlots:
    """`capacity` decoding slots (each a KV cache in memory) handed out first come, first
    served; `wanted()` tells a holder that someone is waiting for one, so it can give its slot
    up between slices instead of keeping it for its whole generation."""

    def __init__(self, capacity: int) -> None:
        self._condition = threading.Condition()
        self._free = max(int(capacity), 1)
        self._queue: deque[object] = deque()

    def acquire(self, deadline: float) -> None:
        """Take a slot; raises `DeadlinePassed` if the wait outlasts `deadline`."""
        ticket = object()
        with self._condition:
            self._queue.append(ticket)
            try:
                while self._free == 0 or self._queue[0] is not ticket:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise DeadlinePassed(
                            "the request's deadline passed waiting for a decoding slot"
                        )
                    self._condition.wait(left)
            except BaseException:
                self._queue.remove(ticket)
                self._condition.notify_all()
                raise
            self._queue.popleft()
            self._free -= 1
            self._condition.notify_all()  # the next in line may find a slot free too

    def release(self) -> None:
        with self._condition:
            self._free += 1
            self._condition.notify_all()

    def wanted(self) -> bool:
        """Whether a request is waiting for a slot."""
        return bool(self._queue)


@dataclass(frozen=True)
class Decoding:
    """How to decode one prompt (already validated and clamped by the server)."""

    max_tokens: int
    temperature: float
    top_p: float
    top_logprobs: int = 0  # alternatives to record per token
    ignore_eos: bool = False
    generator: torch.Generator | None = None  # None: the engine's shared generator


@dataclass
class Decoded:
    """A generation: token ids, their log-probs, per token the top alternatives as
    ``(token id, log-prob)`` pairs, and why it ended (``"stop"`` | ``"length"``)."""

    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    alternatives: list[list[tuple[int, float]]] = field(default_factory=list)
    finish_reason: str = "length"
    done: bool = False
    cache: Any = None
    next_logits: torch.Tensor | None = None  # (vocab,) logits for the next token


class Engine:
    """Runs a causal LM for many requests: short jobs under a turn (`run`), generations in
    slices (`generate`).

    Args:
        model: the causal LM (a transformers model, in eval mode).
        device: where its inputs go.
        stop_ids: token ids that end a generation (unless `Decoding.ignore_eos`).
        generator: the draw for requests without a seed.
        slice_tokens: tokens decoded per turn before yielding the model.
        max_active: generations that may hold a KV cache at once; more wait for a slot.
    """

    def __init__(
        self,
        model: Any,
        device: torch.device | str,
        stop_ids: set[int],
        generator: torch.Generator,
        *,
        slice_tokens: int = 16,
        max_active: int = 8,
    ) -> None:
        self.model = model
        self.device = device
        self.stop_ids = set(stop_ids)
        self.generator = generator
        self.slice_tokens = max(int(slice_tokens), 1)
        self.turns = FairTurns()
        self._slots = FairSlots(max_active)
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        # transformers >= 5.2x renamed `past_key_values` to `cache` (the old name warns)
        self._cache_argument = (
            "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
        )

    def run(self, job: Callable[[], Any], deadline: float) -> Any:
        """`job()` under one turn (tokenising, scoring: bounded work)."""
        with self.turns.turn(deadline):
            return job()

    def generate(
        self,
        prompt_ids: list[int],
        decoding: Decoding,
        deadline: float,
        cancelled: Callable[[], bool] = lambda: False,
        should_stop: Callable[[list[int]], bool] | None = None,
    ) -> Decoded:
        """Decode after `prompt_ids`, one slice per turn, until a stop token, `max_tokens`, or
        `should_stop(token_ids)` (checked under the turn after each slice; stop strings).

        At most `max_active` generations hold a KV cache at once. When more are waiting, a
        generation that has decoded a slice since it got its slot gives the slot up (and its
        cache) and queues again; with its slot back it re-reads its prompt and tokens in one
        forward pass. So a request that arrives while `max_active` long ones run waits a few
        slices, not for a long generation to end.

        Raises `DeadlinePassed` or `ClientGone`; the KV cache is dropped either way.
        """
        state = Decoded()
        holding = False
        try:
            while not state.done:
                if not holding:
                    self._slots.acquire(deadline)
                    holding, decoded_slices = True, 0
                with self.turns.turn(deadline):
                    if cancelled():
                        raise ClientGone("the client closed the connection")
                    prefill = state.cache is None
                    self._decode_slice(prompt_ids, decoding, state, deadline)
                    if not state.done and should_stop is not None:
                        state.done = should_stop(state.token_ids)
                decoded_slices += 0 if prefill else 1
                if not state.done and decoded_slices and self._slots.wanted():
                    state.cache = state.next_logits = None  # re-read when the slot comes back
                    self._slots.release()
                    holding = False
            state.cache = state.next_logits = None
            return state
        finally:
            if holding:
                self._slots.release()

    @torch.no_grad()
    def _decode_slice(
        self, prompt_ids: list[int], decoding: Decoding, state: Decoded, deadline: float
    ) -> None:
        if state.cache is None:  # the prefill (after a preemption: and the tokens so far) is
            self._forward(prompt_ids + state.token_ids, state)  # a slice of its own
            return
        for _ in range(self.slice_tokens):
            if time.monotonic() > deadline:
                raise DeadlinePassed(
                    f"the request's deadline passed after {len(state.token_ids)} generated tokens"
                )
            logprobs = torch.log_softmax(
                state.next_logits.float() / (decoding.temperature or 1.0), -1
            )
            token = self._draw(logprobs, decoding)
            state.token_ids.append(token)
            state.logprobs.append(float(logprobs[token]))
            if decoding.top_logprobs:
                values, indices = logprobs.topk(min(decoding.top_logprobs, logprobs.shape[-1]))
                state.alternatives.append(list(zip(indices.tolist(), values.tolist())))
            if token in self.stop_ids and not decoding.ignore_eos:
                state.finish_reason, state.done = "stop", True
            elif len(state.token_ids) >= decoding.max_tokens:
                state.finish_reason, state.done = "length", True
            if state.done:
                return
            self._forward([token], state)

    def _forward(self, ids: list[int], state: Decoded) -> None:
        inputs: dict[str, Any] = {
            "input_ids": torch.tensor([ids], dtype=torch.long, device=self.device),
            "use_cache": True,
        }
        if state.cache is not None:
            inputs[self._cache_argument] = state.cache
        outputs = self.model(**inputs)
        cache = outputs.get("cache")
        state.cache = cache if cache is not None else outputs.past_key_values
        state.next_logits = outputs.logits[0, -1]

    def _draw(self, logprobs: torch.Tensor, decoding: Decoding) -> int:
        if decoding.temperature == 0:
            return int(logprobs.argmax())
        probs = logprobs.exp()
        if decoding.top_p < 1:
            sorted_probs, order = probs.sort(descending=True)
            outside = sorted_probs.cumsum(-1) - sorted_probs >= decoding.top_p
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs.masked_fill(outside, 0))
        generator = decoding.generator if decoding.generator is not None else self.generator
        return int(torch.multinomial(probs, 1, generator=generator))

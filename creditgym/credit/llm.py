"""`CachedLLM`: the one way credit modules talk to an LLM (CALM's judge, LaRe's coder).

Wraps any text policy (``generate(prompts) -> [Generation]``: an `OpenAIPolicy` for a served
model, with its concurrency, deadlines and retries; an `HFPolicy` for a local one). Every
answer is cached on disk by a hash of (model, prompt), so reruns are free and identical; a
request that fails gives ``None`` and is counted, never raised: an LLM that is down costs a
shaping signal, not the run.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CachedLLM"]


@dataclass
class CachedLLM:
    """A text client with a disk cache and failure counters.

    Attributes:
        client: anything with ``generate(prompts) -> [Generation]``.
        cache_dir: where answers are cached; ``None`` keeps them in memory only.
        stats: counters since creation: ``requests``, ``cache_hits``, ``failed``.
    """

    client: Any
    cache_dir: str | Path | None = None
    stats: Counter = field(default_factory=Counter)
    _memory: dict[str, str] = field(default_factory=dict, repr=False)

    def identity(self) -> str:
        """What the cache keys on besides the prompt: the served model's name, else the client's
        repr."""
        model = getattr(self.client, "model", None)
        return model if isinstance(model, str) and model else repr(self.client)

    def _key(self, prompt: str) -> str:
        return hashlib.sha256(json.dumps([self.identity(), prompt]).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return Path(self.cache_dir) / key[:2] / f"{key}.json"

    def _cached(self, key: str) -> str | None:
        if key not in self._memory and self.cache_dir is not None and self._path(key).is_file():
            self._memory[key] = json.loads(self._path(key).read_text())["answer"]
        return self._memory.get(key)

    def _store(self, key: str, prompt: str, answer: str) -> None:
        self._memory[key] = answer
        if self.cache_dir is not None:
            path = self._path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(
                json.dumps({"model": self.identity(), "prompt": prompt, "answer": answer})
            )
            tmp.replace(path)  # atomic: a crash never leaves half an answer

    def ask(self, prompts: Sequence[str]) -> list[str | None]:
        """Answers to `prompts`: cached ones from the cache, the rest in one batched call."""
        keys = [self._key(p) for p in prompts]
        answers: dict[str, str | None] = {}
        missing: dict[str, str] = {}
        for key, prompt in zip(keys, prompts):
            cached = self._cached(key)
            self.stats["requests"] += 1
            if cached is not None:
                self.stats["cache_hits"] += 1
                answers[key] = cached
            else:
                missing.setdefault(key, prompt)
        if missing:
            try:
                generations = self.client.generate(list(missing.values()))
            except Exception:  # a client that is down costs this answer, not the run
                generations = [None] * len(missing)
            for (key, prompt), generation in zip(missing.items(), generations):
                if (
                    generation is None
                    or getattr(generation, "error", None)
                    or not generation.text.strip()
                ):
                    answers[key] = None
                else:
                    answers[key] = generation.text
                    self._store(key, prompt, generation.text)
        result = [answers[key] for key in keys]
        self.stats["failed"] += sum(answer is None for answer in result)
        return result

"""A tiny decoder-only transformer built offline, for training from scratch on a laptop.

`build_tiny_model` makes a Llama-style causal LM (RoPE, RMSNorm, SwiGLU, tied embeddings) of
about 1-2M parameters at the defaults, randomly initialised from a seed. `build_tiny_agent`
fits a tokenizer to the text it is given (a `TinyCorpus`, or plain strings), builds the model
and saves both as an ordinary Hugging Face directory, loadable with
``AutoModelForCausalLM.from_pretrained(dir)`` and ``AutoTokenizer.from_pretrained(dir)`` (or
``HFPolicy.from_pretrained(dir)``). This module never plays an env: the layer above does
(`creditgym.train.corpus.tiny_env_corpus` plays the registered envs for a corpus).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from creditgym.agents.hf.tokenizer import fit_tokenizer

__all__ = ["TinyCorpus", "build_tiny_agent", "build_tiny_model", "count_parameters"]


@dataclass(frozen=True)
class TinyCorpus:
    """Text to fit the tiny model's tokenizer on, and what identifies it in a cache key.

    Attributes:
        texts: ``texts(seed)`` gives the corpus; called only when a model is built (a corpus
            played from envs costs seconds), with the build seed, so a corpus that samples
            (episodes of a random agent) samples from the model's seed.
        key: JSON-able values that name the text (the envs and their first observations, or a
            hash of the strings): two corpora with the same key must give the same text, and
            `creditgym.agents.factory.tiny_agent_dir` reuses a cached model by it.
    """

    texts: Callable[[int], Iterable[str]]
    key: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of_texts(cls, texts: Iterable[str]) -> TinyCorpus:
        """A fixed corpus; its key is the SHA-256 of the strings (each one, in order)."""
        strings = [str(text) for text in texts]
        digest = hashlib.sha256()
        for text in strings:
            digest.update(hashlib.sha256(text.encode()).digest())
        return cls(texts=lambda seed: strings, key={"texts_sha256": digest.hexdigest()})


def build_tiny_model(
    tokenizer: PreTrainedTokenizerBase,
    *,
    hidden_size: int = 128,
    num_layers: int = 4,
    num_heads: int = 4,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 4096,
    seed: int = 0,
) -> LlamaForCausalLM:
    """A randomly initialised Llama-style causal LM sized to `tokenizer`'s vocabulary.

    Args:
        tokenizer: gives the vocabulary size and the pad/bos/eos ids.
        hidden_size: width of the residual stream; must be divisible by `num_heads`.
        num_layers: transformer blocks.
        num_heads: attention heads (no grouped-query attention: as many key/value heads).
        intermediate_size: SwiGLU hidden width; defaults to ``4 * hidden_size``.
        max_position_embeddings: longest sequence (prompt + response) in tokens.
        seed: the initialisation seed; the same seed gives the same weights. The global
            torch RNG is left as it was.
    """
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size={hidden_size} must be divisible by num_heads={num_heads}")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def count_parameters(model: torch.nn.Module) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    return sum(parameter.numel() for parameter in model.parameters())


def build_tiny_agent(
    out_dir: str | Path,
    texts: TinyCorpus | Iterable[str] = (),
    *,
    vocab_size: int = 2048,
    hidden_size: int = 128,
    num_layers: int = 4,
    num_heads: int = 4,
    seed: int = 0,
) -> Path:
    """Fit a tokenizer to `texts`, build a tiny model, save both to `out_dir`.

    Args:
        out_dir: directory to write (created if missing).
        texts: the tokenizer's corpus: strings, or a `TinyCorpus` (played with `seed`; e.g.
            `creditgym.train.corpus.tiny_env_corpus([env_id])` for an env's text).
        vocab_size: see `fit_tokenizer`.
        hidden_size, num_layers, num_heads, seed: see `build_tiny_model`.

    Returns:
        `out_dir` as a `Path`.
    """
    corpus = list(texts.texts(seed) if isinstance(texts, TinyCorpus) else texts)
    if not corpus:
        raise ValueError(
            "no text to fit the tokenizer on: `texts` is empty. Pass strings, or an env's "
            "text: creditgym.train.corpus.tiny_env_corpus([env_id]) plays registered envs."
        )
    tokenizer = fit_tokenizer(corpus, vocab_size=vocab_size)
    model = build_tiny_model(
        tokenizer, hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads, seed=seed
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out

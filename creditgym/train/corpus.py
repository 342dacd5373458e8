"""The tiny model's tokenizer corpus, played from the registered environments.

The tiny model (`creditgym.agents.hf.tiny`) is fitted on whatever text it is given; this module,
a layer above envs and agents, plays envs to make that text. `env_corpus` plays the envs (the
expert where the env has one, and a random agent) and collects their tasks, observations,
actions and prompts; `tiny_env_corpus` wraps that as a `TinyCorpus` whose cache key names the
envs and their first observations; `load_tiny` builds the ``tiny`` policy from it (what
``load_policy("tiny", env_ids=...)`` did). `corpus_env_ids` lists the envs a corpus can be
played from when none is named: every registered env that builds with its registered defaults
(an env that names arguments it needs, like ``creditgym/TextWorld-v0``'s ``game_file``, or
that fails to build, e.g. without its optional extra, is skipped with a warning).
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from creditgym.agents.base import Policy
from creditgym.agents.hf.tiny import TinyCorpus
from creditgym.agents.prompts import TEMPLATES, build_prompt
from creditgym.envs import info as keys
from creditgym.envs.registry import list_envs, make, required_kwargs

__all__ = [
    "SWEEP_EPISODES_PER_ENV",
    "corpus_env_ids",
    "env_corpus",
    "env_fingerprint",
    "load_tiny",
    "tiny_env_corpus",
]

#: Episodes played per env when the corpus sweeps every registered env (no env named): the
#: vocabulary of a byte-level BPE needs a sample of each env's text, not 50 games of each
#: (TextWorld generates a game per seed, seconds each).
SWEEP_EPISODES_PER_ENV = 4

#: Episodes played per env when envs are named and no count is given.
NAMED_EPISODES_PER_ENV = 50


def _episode_texts(
    env: Any, seed: int, use_expert: bool, max_steps: int, history_length: int
) -> list[str]:
    """Play one episode; return its task, observations, admissible actions and prompts."""
    rng = random.Random(seed)
    observation, info = env.reset(seed=seed)
    task = str(info.get(keys.TASK, ""))
    texts = [task]
    history: list[tuple[str, str]] = []
    for _ in range(max_steps):
        actions = info.get(keys.ADMISSIBLE_ACTIONS)
        texts.append(observation)
        texts.extend(actions or ())
        texts.extend(
            build_prompt(
                task,
                observation,
                history,
                actions,
                history_length=history_length,
                template=template,
            )
            for template in TEMPLATES
        )
        if use_expert:
            action = str(env.unwrapped.expert_action())
        elif actions:
            action = rng.choice(list(actions))
        else:
            break
        texts.append(action)
        history.append((observation, action))
        observation, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            texts.append(observation)
            break
    return texts


def env_corpus(
    env_ids: Sequence[str],
    episodes_per_env: int = NAMED_EPISODES_PER_ENV,
    seed: int = 0,
    *,
    max_steps: int = 50,
    history_length: int = 2,
    env_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[str]:
    """Text from playing registered envs, to fit a tokenizer that covers their vocabulary.

    Even-numbered episodes are played by the env's expert (``env.unwrapped.expert_action()``)
    when it has one, the others by a uniform random agent over the admissible actions, so the
    corpus holds both the states of successful play and the messages of failed actions.

    Args:
        env_ids: registered env ids (`creditgym.make`).
        episodes_per_env: episodes to play in each env (reset seeds ``seed, seed+1, ...``).
        seed: first reset seed; also seeds the random agent.
        max_steps: longest episode to play.
        history_length: history shown in the prompts collected.
        env_kwargs: per env id, keyword arguments for `creditgym.make` (an env that needs a
            ``game_file``, or the trainer's ``env.kwargs``).
    """
    corpus: list[str] = []
    for env_id in env_ids:
        env = make(env_id, **dict((env_kwargs or {}).get(env_id, {})))
        try:
            has_expert = callable(getattr(env.unwrapped, "expert_action", None))
            for episode in range(episodes_per_env):
                use_expert = has_expert and episode % 2 == 0
                corpus.extend(
                    _episode_texts(env, seed + episode, use_expert, max_steps, history_length)
                )
        finally:
            env.close()
    return [text for text in corpus if text]


def corpus_env_ids(namespace: str | None = "creditgym") -> list[str]:
    """Registered env ids (in `namespace`) that build with their registered defaults, sorted.

    Envs that name keyword arguments they cannot be built without (`register(requires=)`,
    like TextWorld-v0's ``game_file``) are left out unbuilt; every other env is built once,
    and one that raises (an optional dependency is missing, or a requirement was never
    named) is left out too. A warning names each env left out and why, so a corpus swept
    over "every env" never dies on one that cannot be played as registered.
    """
    usable, skipped = [], []
    for env_id in list_envs(namespace):
        needs = required_kwargs(env_id)
        if needs:
            skipped.append(f"{env_id} (needs {', '.join(needs)})")
            continue
        try:
            make(env_id).close()
        except Exception as error:  # noqa: BLE001 (any failure to build means: skip it)
            reason = (str(error).splitlines() or [""])[0]
            skipped.append(f"{env_id} ({type(error).__name__}: {reason})")
        else:
            usable.append(env_id)
    if skipped:
        warnings.warn(
            "the tokenizer corpus skips envs that do not build without arguments: "
            + "; ".join(skipped),
            stacklevel=2,
        )
    return usable


def env_fingerprint(
    env_ids: Sequence[str], env_kwargs: Mapping[str, Mapping[str, Any]] | None = None
) -> list[str]:
    """First observation and task of each env at seed 0: a cache rebuilds when env text changes."""
    prints = []
    for env_id in env_ids:
        env = make(env_id, **dict((env_kwargs or {}).get(env_id, {})))
        try:
            observation, info = env.reset(seed=0)
            prints.append(f"{env_id}|{info.get(keys.TASK, '')}|{observation}")
        finally:
            env.close()
    return prints


def tiny_env_corpus(
    env_ids: Sequence[str] | None = None,
    *,
    env_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    episodes_per_env: int | None = None,
) -> TinyCorpus:
    """The envs' text as a `TinyCorpus`: played only when the tiny model is built.

    Its cache key holds the env ids, each env's first observation at seed 0 (`env_fingerprint`,
    so a change to an env's text builds a new model), the `env_kwargs` given and
    `episodes_per_env` when set: the same key the tiny model cache used when it played envs
    itself, so existing caches stay valid.

    Args:
        env_ids: envs to play (the trainer names its own env); None means every registered
            ``creditgym/`` env that builds without arguments (`corpus_env_ids`), a few
            episodes each (`SWEEP_EPISODES_PER_ENV`).
        env_kwargs: per env id, keyword arguments to build it with (see `env_corpus`).
        episodes_per_env: episodes played in each env; None means 50 for named envs.
    """
    if env_ids is None:
        if episodes_per_env is None:
            episodes_per_env = SWEEP_EPISODES_PER_ENV
        env_ids = corpus_env_ids("creditgym")
    ids = sorted(env_ids)
    kwargs = {env_id: dict(kw) for env_id, kw in (env_kwargs or {}).items() if kw}
    key: dict[str, Any] = {"env_ids": ids, "envs": env_fingerprint(ids, kwargs)}
    if kwargs:
        key["env_kwargs"] = kwargs
    if episodes_per_env is not None:
        key["episodes_per_env"] = episodes_per_env
    episodes = NAMED_EPISODES_PER_ENV if episodes_per_env is None else episodes_per_env

    def play(seed: int) -> list[str]:
        return env_corpus(ids, episodes, seed=seed, env_kwargs=kwargs or None)

    return TinyCorpus(texts=play, key=key)


def load_tiny(
    env_ids: Sequence[str] | None = None,
    *,
    env_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    episodes_per_env: int | None = None,
    **options: Any,
) -> Policy:
    """The ``tiny`` policy with its tokenizer fitted on `env_ids`' text (cached on disk).

    `env_ids`, `env_kwargs` and `episodes_per_env` are `tiny_env_corpus`'s; `options` go to
    ``load_policy("tiny", ...)`` (the model's shape, ``seed``, the sampling options).
    """
    from creditgym.agents.factory import load_policy

    corpus = tiny_env_corpus(env_ids, env_kwargs=env_kwargs, episodes_per_env=episodes_per_env)
    return load_policy("tiny", corpus=corpus, **options)

"""A tokenizer fitted offline to the environments' own text, for tiny models trained from scratch.

`env_corpus` plays the registered environments (the expert where the env has one, and a
random agent) and collects their tasks, observations, actions and prompts; `fit_tokenizer`
trains a byte-level BPE on such text. `corpus_env_ids` lists the envs a corpus can be played
from when none is named: every registered env that builds with its registered defaults (an
env that declares arguments it needs, like ``creditgym/TextWorld-v0``'s ``game_file``, or
that fails to build, e.g. without its optional extra, is skipped with a warning).
Byte-level means every string round-trips exactly (``decode(encode(x)) == x``) and no
character is ever unknown.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from creditgym.agents.prompts import TEMPLATES, build_prompt

__all__ = [
    "SPECIAL_TOKENS",
    "SWEEP_EPISODES_PER_ENV",
    "corpus_env_ids",
    "env_corpus",
    "fit_tokenizer",
]

#: Episodes played per env when the corpus sweeps every registered env (no env named): the
#: vocabulary of a byte-level BPE needs a sample of each env's text, not 50 games of each
#: (TextWorld generates a game per seed, seconds each).
SWEEP_EPISODES_PER_ENV = 4

#: pad, bos, eos, unk, in the order they get ids 0..3.
SPECIAL_TOKENS = {
    "pad_token": "<pad>",
    "bos_token": "<bos>",
    "eos_token": "<eos>",
    "unk_token": "<unk>",
}


def fit_tokenizer(texts: Iterable[str], vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on `texts`.

    Encoding a text adds `<bos>` in front (``add_special_tokens=False`` leaves it out, which
    is how responses are tokenised); padding is on the left, as batched generation needs.
    Deterministic for the same texts in the same order.

    Args:
        texts: the training corpus (for example `env_corpus(...)`).
        vocab_size: target vocabulary size including the 256 byte symbols and 4 specials.
    """
    specials = list(SPECIAL_TOKENS.values())
    minimum = len(pre_tokenizers.ByteLevel.alphabet()) + len(specials)
    if vocab_size < minimum:
        raise ValueError(
            f"vocab_size={vocab_size} is too small: a byte-level BPE needs at least {minimum}"
        )
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    bos = SPECIAL_TOKENS["bos_token"]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, backend.token_to_id(bos))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        model_max_length=4096,
        **SPECIAL_TOKENS,
    )


def _episode_texts(
    env, seed: int, use_expert: bool, max_steps: int, history_length: int
) -> list[str]:
    """Play one episode; return its task, observations, admissible actions and prompts."""
    from creditgym.envs import info as keys

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
    episodes_per_env: int = 50,
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
    from creditgym.envs.registry import make

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

    Envs that declare keyword arguments they cannot be built without (`register(requires=)`,
    like TextWorld-v0's ``game_file``) are left out unbuilt; every other env is built once,
    and one that raises (an optional dependency is missing, or a requirement was never
    declared) is left out too. A warning names each env left out and why, so a corpus swept
    over "every env" never dies on one that cannot be played as registered.
    """
    from creditgym.envs.registry import list_envs, make, required_kwargs

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

"""The supervised warm start's demonstrations (creditgym/train/sft.py), plain and noisy (DART)."""

from __future__ import annotations

from pathlib import Path

import pytest

from creditgym.agents.prompts import COMPACT_MARKER, PromptFormat
from creditgym.config import load_config
from creditgym.train.sft import expert_demonstrations

QUICKSTART = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"


def demonstrations(noise: float, episodes: int = 40) -> list[tuple]:
    config = load_config(QUICKSTART, ["env.kwargs={expert: search}"])
    return expert_demonstrations(config, PromptFormat(), episodes, seed=3, noise=noise)


def played_after(demos: list[tuple]) -> list[tuple[str, str | None]]:
    """(label, the action the episode then played) per demonstration turn; a window prompt
    shows the previous turn's action as its last history line (None where the episode ended)."""
    pairs = []
    for (_, label, _, _), (next_prompt, *_) in zip(demos, [*demos[1:], ("",)]):
        lines = next_prompt.split("\n")
        history = [line for line in lines[:-1] if line.startswith(f"{COMPACT_MARKER} ")]
        starts_episode = not history
        played = None if starts_episode else history[-1].removeprefix(f"{COMPACT_MARKER} ")
        pairs.append((label, played))
    return pairs


def test_plain_demonstrations_are_the_experts_own_path():
    demos = demonstrations(noise=0.0)
    pairs = [(label, played) for label, played in played_after(demos) if played is not None]
    assert len(pairs) > 80
    assert all(label == played for label, played in pairs)


def test_noisy_demonstrations_play_random_moves_but_label_each_state_with_the_expert():
    plain, noisy = demonstrations(noise=0.0), demonstrations(noise=0.5)
    pairs = [(label, played) for label, played in played_after(noisy) if played is not None]
    off_path = sum(label != played for label, played in pairs) / len(pairs)
    # half the steps are random, and a random pick is the expert's move now and then
    assert 0.2 < off_path < 0.55, off_path
    assert len(noisy) > 1.5 * len(plain)  # detours make longer episodes, all of them kept
    for prompt, label, admissible, _ in noisy:
        assert label in admissible, (prompt, label)
    # the detours reach states the expert never visits, with the way back as the label: a
    # wrong object in hand is put down where the agent stands
    put_downs = [
        label
        for prompt, label, _, _ in noisy
        if "you pick up the" in prompt.split("\n")[-3].lower()
        and label.startswith("move ")
        and label.split()[1] not in prompt.split("\n")[0]
    ]
    assert put_downs, "no recovery demonstrations"


def test_noise_must_be_a_probability():
    with pytest.raises(ValueError, match="noise"):
        load_config(QUICKSTART, ["train.sft_warmup.noise=1.5"])

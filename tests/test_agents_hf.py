"""HFPolicy on a tiny offline model: sampling, scoring, constraint, save/reload; the tokenizer."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoModelForCausalLM, AutoTokenizer

from creditgym.agents.hf.policy import HFPolicy
from creditgym.agents.hf.tiny import build_tiny_agent, build_tiny_model, count_parameters
from creditgym.agents.hf.tokenizer import fit_tokenizer
from creditgym.agents.prompts import build_prompt

PLACES = [
    "countertop 1",
    "countertop 2",
    "diningtable 1",
    "fridge 1",
    "sinkbasin 1",
    "cabinet 3",
    "drawer 2",
]
OBJECTS = ["apple 1", "mug 2", "knife 1", "bread 1", "tomato 3"]
ACTIONS = (
    [f"go to {p}" for p in PLACES]
    + [f"take {o} from {p}" for o in OBJECTS for p in PLACES]
    + [f"move {o} to {p}" for o in OBJECTS for p in PLACES]
    + ["look", "inventory"]
)
OBSERVATIONS = [f"You arrive at {p}. On the {p}, you see a {o}." for p in PLACES for o in OBJECTS]
TASK = "put a clean apple in diningtable."
CORPUS = (
    ACTIONS
    + OBSERVATIONS
    + [
        build_prompt(
            TASK, obs, [(OBSERVATIONS[0], ACTIONS[0])], ACTIONS[i : i + 5], template=template
        )
        for i, obs in enumerate(OBSERVATIONS)
        for template in ("compact", "verl-agent")
    ]
)
PROMPTS = [
    build_prompt(TASK, OBSERVATIONS[3], [], ACTIONS[:4], template="compact"),
    build_prompt(
        TASK,
        OBSERVATIONS[7],
        [(OBSERVATIONS[2], "go to fridge 1")],
        ACTIONS[5:9],
        template="compact",
    ),
    "look",
]
ADMISSIBLE = [
    ACTIONS[:4],
    ACTIONS[5:9] + ["inventory"],
    ["look", "inventory", "take apple 1 from fridge 1"],
]


@pytest.fixture(scope="module")
def tokenizer():
    return fit_tokenizer(CORPUS, vocab_size=600)


@pytest.fixture(scope="module")
def model(tokenizer):
    return build_tiny_model(tokenizer, hidden_size=64, num_layers=2, num_heads=4, seed=0)


def make_policy(model, tokenizer, **kwargs):
    kwargs.setdefault("device", "cpu")
    return HFPolicy(model, tokenizer, **kwargs)


# ---- tokenizer and tiny model -----------------------------------------------------------


@pytest.mark.parametrize(
    "text", OBSERVATIONS[:3] + ACTIONS[-3:] + [PROMPTS[1], "  odd\tspacing\n\n ü ✓ {}", ""]
)
def test_tokenizer_round_trips_text_exactly(tokenizer, text):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids, clean_up_tokenization_spaces=False) == text


def test_tokenizer_adds_bos_to_prompts_and_pads_on_the_left(tokenizer):
    assert tokenizer("look")["input_ids"][0] == tokenizer.bos_token_id
    assert tokenizer.padding_side == "left"
    assert {tokenizer.pad_token, tokenizer.eos_token, tokenizer.bos_token, tokenizer.unk_token} == {
        "<pad>",
        "<eos>",
        "<bos>",
        "<unk>",
    }


def test_tokenizer_merges_env_words_into_single_tokens(tokenizer):
    mid_text = " countertop"  # words inside a sentence carry their leading space
    assert len(tokenizer(mid_text, add_special_tokens=False)["input_ids"]) == 1


def test_same_corpus_gives_the_same_tokenizer(tokenizer):
    assert fit_tokenizer(CORPUS, vocab_size=600).get_vocab() == tokenizer.get_vocab()


def test_default_tiny_model_has_one_to_five_million_parameters(tokenizer):
    assert 1_000_000 <= count_parameters(build_tiny_model(tokenizer)) <= 5_000_000


def test_same_seed_gives_the_same_weights_and_leaves_global_rng_alone(tokenizer, model):
    state = torch.random.get_rng_state()
    again = build_tiny_model(tokenizer, hidden_size=64, num_layers=2, num_heads=4, seed=0)
    other = build_tiny_model(tokenizer, hidden_size=64, num_layers=2, num_heads=4, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values())
    )
    assert not torch.equal(model.model.embed_tokens.weight, other.model.embed_tokens.weight)


def test_tiny_agent_directory_reloads_with_auto_classes(tmp_path, tokenizer):
    out = build_tiny_agent(tmp_path / "agent", CORPUS, vocab_size=600, hidden_size=64, num_layers=2)
    reloaded_tokenizer = AutoTokenizer.from_pretrained(out)
    reloaded_model = AutoModelForCausalLM.from_pretrained(out)
    assert reloaded_tokenizer.get_vocab() == tokenizer.get_vocab()
    assert reloaded_tokenizer.padding_side == "left"
    assert reloaded_model.config.num_hidden_layers == 2


def test_tiny_agent_without_any_text_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no text to fit the tokenizer"):
        build_tiny_agent(tmp_path / "agent", [])


# ---- generation and scoring -------------------------------------------------------------


@torch.no_grad()
def rescore(policy, generations, admissible=None):
    """Log-probs of the recorded ids, as the trainer recomputes them."""
    scores, _ = policy.score(
        [g.prompt_ids for g in generations], [g.token_ids for g in generations], admissible
    )
    return [score.numpy() for score in scores]


@pytest.mark.parametrize("temperature, top_p", [(1.0, 1.0), (0.7, 1.0), (1.3, 0.9)])
def test_free_form_recorded_logprobs_equal_score(model, tokenizer, temperature, top_p):
    policy = make_policy(model, tokenizer, temperature=temperature, top_p=top_p, max_new_tokens=12)
    generations = policy.generate(PROMPTS * 2)
    scores = rescore(policy, generations)
    for generation, score in zip(generations, scores):
        assert len(generation.logprobs) == len(generation.token_ids) > 0
        np.testing.assert_allclose(generation.logprobs, score, atol=1e-5)


def test_free_form_generation_stops_at_eos_or_the_token_budget(model, tokenizer):
    policy = make_policy(model, tokenizer, max_new_tokens=5)
    for generation in policy.generate(PROMPTS * 4):
        ended = generation.token_ids[-1] == tokenizer.eos_token_id
        assert ended or len(generation.token_ids) == 5
        assert tokenizer.eos_token_id not in generation.token_ids[:-1]


def test_constrained_samples_are_admissible_and_logprobs_recompute_from_text(model, tokenizer):
    policy = make_policy(model, tokenizer, constrained=True)
    generations = policy.generate(PROMPTS * 3, ADMISSIBLE * 3)
    recomputed = policy.logprobs(PROMPTS * 3, [g.text for g in generations], ADMISSIBLE * 3)
    for generation, actions, logprobs in zip(generations, ADMISSIBLE * 3, recomputed):
        assert generation.text in actions
        assert generation.token_ids == policy.encode_response(generation.text)
        np.testing.assert_allclose(generation.logprobs, logprobs, atol=1e-5)


def test_constrained_distribution_is_renormalised_over_admissible_first_tokens(model, tokenizer):
    policy = make_policy(model, tokenizer, constrained=True)
    actions = ["look", "inventory"]  # different first tokens, so both first steps are real choices
    logprobs = policy.logprobs([PROMPTS[0]] * 2, actions, [actions] * 2)
    assert np.exp(logprobs[0][0]) + np.exp(logprobs[1][0]) == pytest.approx(1.0, abs=1e-5)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    action_sets=st.lists(
        st.lists(
            st.text(alphabet="abcdefghij klmnop", min_size=1, max_size=14), min_size=1, max_size=6
        ),
        min_size=1,
        max_size=4,
    ),
    seed=st.integers(0, 1000),
)
def test_constrained_decoding_never_leaves_the_admissible_set(model, tokenizer, action_sets, seed):
    policy = make_policy(model, tokenizer, constrained=True, temperature=1.5, seed=seed)
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(len(action_sets))]
    generations = policy.generate(prompts, action_sets)
    scores = rescore(policy, generations, action_sets)
    for generation, actions, score in zip(generations, action_sets, scores):
        assert generation.text in actions
        np.testing.assert_allclose(generation.logprobs, score, atol=1e-5)


def test_constrained_mode_needs_admissible_actions(model, tokenizer):
    with pytest.raises(ValueError, match="constrained decoding needs admissible_actions"):
        make_policy(model, tokenizer, constrained=True).generate(PROMPTS)


def test_row_without_admissible_actions_gets_an_error_not_a_crash(model, tokenizer):
    generations = make_policy(model, tokenizer, constrained=True).generate(
        PROMPTS[:2], [[], ["look"]]
    )
    assert generations[0].error == "no admissible actions to choose from"
    assert generations[0].token_ids == []
    assert generations[1].text == "look"


def test_same_seed_gives_the_same_samples(model, tokenizer):
    first = make_policy(model, tokenizer, seed=3, max_new_tokens=8).generate(PROMPTS)
    second = make_policy(model, tokenizer, seed=3, max_new_tokens=8).generate(PROMPTS)
    assert [g.token_ids for g in first] == [g.token_ids for g in second]


def test_left_padded_batch_scores_equal_one_at_a_time(model, tokenizer):
    policy = make_policy(model, tokenizer)
    continuations = ["go to fridge 1", "take mug 2 from cabinet 3", "look"]
    batched = policy.logprobs(PROMPTS, continuations)
    for prompt, continuation, together in zip(PROMPTS, continuations, batched):
        alone = policy.logprobs([prompt], [continuation])[0]
        np.testing.assert_allclose(together, alone, atol=1e-5)


def test_greedy_batch_generation_equals_one_at_a_time(model, tokenizer):
    policy = make_policy(model, tokenizer, temperature=0.0, max_new_tokens=10)
    batched = policy.generate(PROMPTS)
    for prompt, together in zip(PROMPTS, batched):
        alone = policy.generate([prompt])[0]
        assert alone.token_ids == together.token_ids
        np.testing.assert_allclose(alone.logprobs, together.logprobs, atol=1e-5)


def test_tiny_top_p_keeps_only_the_most_likely_token(model, tokenizer):
    nucleus = make_policy(model, tokenizer, top_p=1e-6, max_new_tokens=6, seed=9).generate(PROMPTS)
    greedy = make_policy(model, tokenizer, temperature=0.0, max_new_tokens=6).generate(PROMPTS)
    assert [g.token_ids for g in nucleus] == [g.token_ids for g in greedy]


def test_score_is_differentiable(model, tokenizer):
    policy = make_policy(model, tokenizer, constrained=True)
    prompt_ids = [policy.encode_prompt(p) for p in PROMPTS]
    response_ids = [policy.encode_response(actions[-1]) for actions in ADMISSIBLE]
    model.zero_grad()
    scores, entropies = policy.score(prompt_ids, response_ids, ADMISSIBLE, with_entropy=True)
    (torch.cat(scores).sum() + torch.cat(entropies).sum()).backward()
    gradient = model.model.embed_tokens.weight.grad
    model.zero_grad()
    assert gradient is not None and torch.isfinite(gradient).all() and gradient.abs().sum() > 0


def test_entropy_is_zero_where_the_constraint_forces_the_token(model, tokenizer):
    policy = make_policy(model, tokenizer, constrained=True)
    response = policy.encode_response("look")
    with torch.no_grad():
        _, entropies = policy.score(
            [policy.encode_prompt(PROMPTS[0])],
            [response],
            [["look", "inventory"]],
            with_entropy=True,
        )
    assert entropies[0][0] > 0  # look vs inventory
    assert torch.allclose(entropies[0][1:], torch.zeros(len(response) - 1), atol=1e-6)


def test_unconstrained_entropy_is_at_most_log_vocab(model, tokenizer):
    policy = make_policy(model, tokenizer)
    with torch.no_grad():
        _, entropies = policy.score(
            [policy.encode_prompt("look")],
            [policy.encode_response("go to fridge 1")],
            with_entropy=True,
        )
    assert (entropies[0] <= np.log(len(tokenizer)) + 1e-4).all()


def test_save_and_reload_gives_the_same_logprobs(tmp_path, model, tokenizer):
    policy = make_policy(model, tokenizer, constrained=True)
    reloaded = HFPolicy.from_pretrained(
        policy.save_pretrained(tmp_path / "saved"), device="cpu", constrained=True
    )
    continuations = [actions[0] for actions in ADMISSIBLE]
    expected = policy.logprobs(PROMPTS, continuations, ADMISSIBLE)
    for a, b in zip(expected, reloaded.logprobs(PROMPTS, continuations, ADMISSIBLE)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_chat_template_without_one_is_a_clear_error(model, tokenizer):
    with pytest.raises(ValueError, match="no chat template"):
        make_policy(model, tokenizer, chat_template=True)


def test_require_tags_defaults_to_the_opposite_of_constrained(model, tokenizer):
    assert make_policy(model, tokenizer, constrained=True).require_tags is False
    assert make_policy(model, tokenizer).require_tags is True

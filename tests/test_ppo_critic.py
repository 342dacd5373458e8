"""PPO with a critic: turn-level GAE on hand-worked numbers, the clipped value loss, critics
that learn, the estimator's context hook, and a critic that trains, checkpoints and resumes
inside the trainer."""

import numpy as np
import pytest
import torch
from conftest import TINY, episode, training_rows
from safetensors.torch import load_file

from creditgym.agents.hf.policy import HFPolicy
from creditgym.agents.hf.tiny import build_tiny_model
from creditgym.agents.hf.tokenizer import fit_tokenizer
from creditgym.config import load_config
from creditgym.credit import (
    CreditConfigError,
    CreditContext,
    check_credit_config,
    compute_advantages,
    register_estimator,
    register_shaper,
)
from creditgym.credit.estimators.critic import (
    Critic,
    HeadCritic,
    TokenBagCritic,
    clipped_value_loss,
    make_critic,
)
from creditgym.credit.estimators.ppo import PPOEstimator, _critic_metrics, turn_gae, whiten
from creditgym.credit.registry import resolve
from creditgym.train.trainer import train
from creditgym.trajectory import Turn

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- turn-level GAE ---------------------------------------------------------------------


def test_gae_equals_the_direct_sum_of_discounted_deltas():
    rng = np.random.default_rng(3)
    lengths = np.array([3, 1, 4, 0, 2])
    rewards = rng.normal(size=lengths.sum())
    values = rng.normal(size=lengths.sum())
    final = rng.normal(size=len(lengths))
    gamma, lam = 0.9, 0.7

    expected = []
    start = 0
    for n, v_end in zip(lengths, final):
        r, v = rewards[start : start + n], values[start : start + n]
        v_next = [*v[1:], v_end]
        deltas = [r[t] + gamma * v_next[t] - v[t] for t in range(n)]
        for t in range(n):
            expected.append(sum((gamma * lam) ** k * deltas[t + k] for k in range(n - t)))
        start += n

    got = turn_gae(rewards, values, lengths, gamma=gamma, lam=lam, final_values=final)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_lambda_one_gives_the_discounted_return_minus_the_value():
    # rewards [0, 0, 1], gamma 0.5: returns-to-go [0.25, 0.5, 1]
    got = turn_gae(
        np.array([0.0, 0.0, 1.0]), np.array([0.2, 0.4, 0.3]), np.array([3]), gamma=0.5, lam=1.0
    )
    np.testing.assert_allclose(got, [0.25 - 0.2, 0.5 - 0.4, 1.0 - 0.3])


def test_lambda_zero_gives_the_one_step_td_error():
    # delta_t = r_t + 0.5 V(s_t+1) - V(s_t), V after the last turn 0
    got = turn_gae(
        np.array([0.0, 0.0, 1.0]), np.array([0.2, 0.4, 0.3]), np.array([3]), gamma=0.5, lam=0.0
    )
    np.testing.assert_allclose(got, [0.0 + 0.2 - 0.2, 0.0 + 0.15 - 0.4, 1.0 - 0.3])


def test_whitening_centres_and_scales_by_the_unbiased_std():
    np.testing.assert_allclose(whiten(np.array([1.0, 3.0])), [-1 / np.sqrt(2), 1 / np.sqrt(2)])
    np.testing.assert_array_equal(whiten(np.array([5.0])), [0.0])


# ---- the clipped value loss ---------------------------------------------------------------


def test_clipped_value_loss_keeps_the_larger_error_on_hand_numbers():
    values = torch.tensor([1.0, 0.0])
    old = torch.tensor([0.5, 0.5])
    returns = torch.tensor([2.0, 0.0])
    # turn 0: (1 - 2)^2 = 1 against clipped V 0.7: (0.7 - 2)^2 = 1.69 -> 1.69
    # turn 1: (0 - 0)^2 = 0 against clipped V 0.3: 0.09 -> 0.09
    loss = clipped_value_loss(values, old, returns, clip=0.2)
    assert loss.item() == pytest.approx(0.5 * (1.69 + 0.09) / 2)


def test_inside_the_clip_range_the_loss_is_half_the_squared_error():
    loss = clipped_value_loss(
        torch.tensor([0.6]), torch.tensor([0.5]), torch.tensor([1.0]), clip=0.2
    )
    assert loss.item() == pytest.approx(0.5 * 0.4**2)


def test_a_value_moved_past_the_return_beyond_the_clip_keeps_its_own_larger_error():
    # V moved from 0 to 2 with R = 0: (2 - 0)^2 = 4 against clipped V 0.2: 0.04 -> 4
    loss = clipped_value_loss(
        torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([0.0]), clip=0.2
    )
    assert loss.item() == pytest.approx(0.5 * 4.0)


# ---- critics learn --------------------------------------------------------------------------


def _prompted(rewards, prompts, **kwargs):
    ep = episode(rewards, **kwargs)
    for turn, prompt in zip(ep.turns, prompts):
        turn.prompt = prompt
    return ep


def _distinct_batch():
    """Three states worth 1, 0 and 0.5 by their (distinct) prompts."""
    return [
        _prompted([1.0], ["the apple is in the fridge"]),
        _prompted([0.0], ["you see nothing here"]),
        _prompted([0.5], ["a mug on the counter"]),
    ]


def test_the_token_bag_critic_fits_a_fixed_batch():
    critic = TokenBagCritic(seed=0, lr=1e-2)
    episodes = _distinct_batch()
    inputs = critic.encode([ep.turns for ep in episodes], CreditContext())
    returns = torch.tensor([1.0, 0.0, 0.5])
    with torch.no_grad():
        before = critic.values(inputs)
    losses = critic.fit(inputs, before, returns, epochs=60, clip=10.0)
    with torch.no_grad():
        after = critic.values(inputs)
    assert losses[-1] < 0.05 * losses[0]
    assert (after - returns).abs().max() < 0.5 * (before - returns).abs().max()


class _Features:
    """A stand-in policy whose hidden state of a prompt is a fixed random vector."""

    def __init__(self, dim: int = 8) -> None:
        self.table = torch.randn(100, dim, generator=torch.Generator().manual_seed(0))
        self.calls = 0

    def hidden_states(self, prompt_ids, *, positions=None):
        self.calls += 1
        self.sequences = [list(ids) for ids in prompt_ids]
        if positions is None:
            positions = [[len(ids) - 1] for ids in prompt_ids]
        return self.table[[ids[p] for ids, at in zip(prompt_ids, positions) for p in at]]


def test_the_value_head_fits_the_policys_features():
    critic = HeadCritic(seed=0, lr=1e-2)
    episodes = _distinct_batch()
    for i, ep in enumerate(episodes):
        ep.turns[0].prompt_ids = [1, 10 + i]
    inputs = critic.encode([ep.turns for ep in episodes], CreditContext(scorer=_Features()))
    returns = torch.tensor([1.0, 0.0, 0.5])
    with torch.no_grad():
        before = critic.values(inputs)
    losses = critic.fit(inputs, before, returns, epochs=60, clip=10.0)
    with torch.no_grad():
        after = critic.values(inputs)
    assert losses[-1] < 0.05 * losses[0]
    assert (after - returns).abs().max() < 0.5 * (before - returns).abs().max()


def test_the_value_head_reads_a_conversation_in_one_pass():
    conversation = episode([0.0, 0.0, 1.0])
    for turn, ids in zip(conversation.turns, [[1, 5], [1, 5, 7, 9], [1, 5, 7, 9, 11]]):
        turn.prompt_ids = ids
    window = episode([0.0, 1.0])
    for turn, ids in zip(window.turns, [[1, 20], [1, 21]]):
        turn.prompt_ids = ids
    policy = _Features()
    inputs = HeadCritic().encode([conversation.turns, window.turns], CreditContext(policy))
    assert policy.sequences == [[1, 5, 7, 9, 11], [1, 20], [1, 21]]
    torch.testing.assert_close(inputs[0], policy.table[[5, 9, 11, 20, 21]])


def test_over_calls_the_ppo_values_move_toward_the_returns():
    module = PPOEstimator()
    context = CreditContext(modules={"ppo": module})
    episodes = _distinct_batch()
    spec = {"name": "ppo", "normalize": False, "critic_lr": 1e-2}

    def errors():
        compute_advantages(episodes, ["env"], spec, context=context)
        details = [ep.turns[0].credit_details["ppo"] for ep in episodes]
        return np.abs([d["value"] - d["return"] for d in details])

    first = errors()
    for _ in range(20):
        last = errors()
    assert last.max() < 0.25 * first.max()


def test_beyond_the_clip_range_toward_the_return_the_loss_gives_no_gradient():
    # V moved 0.3 past V_old toward R: the clipped error (0.7 - 2)^2 is the larger, constant in V
    values = torch.tensor([0.8], requires_grad=True)
    clipped_value_loss(values, torch.tensor([0.5]), torch.tensor([2.0]), clip=0.2).backward()
    assert values.grad.item() == 0.0


# ---- the estimator ----------------------------------------------------------------------------


class _FixedCritic(Critic):
    """A critic whose V(s) is a fixed number per prompt and which never trains, so the value
    term of every formula below is a known, nonzero number (a fresh critic says V = 0)."""

    kind = "model"

    def __init__(self, table: dict[str, float]) -> None:
        super().__init__()
        self.table = table

    def encode(self, episodes, context):
        return [self.table[turn.prompt] for turns in episodes for turn in turns]

    def values(self, inputs):
        return torch.tensor(inputs, dtype=torch.float32)

    def fit(self, *args, **kwargs):
        return []


def _fixed_values(table: dict[str, float]) -> CreditContext:
    module = PPOEstimator()
    module.critic = _FixedCritic(table)
    return CreditContext(modules={"ppo": module})


ROOMS = {"first room": 0.3, "second room": 0.7}


def test_lambda_one_without_whitening_is_return_minus_the_critics_value():
    episodes = [_prompted([0.0, 1.0], ["first room", "second room"])]
    spec = {"name": "ppo", "gamma": 0.5, "normalize": False}
    advantages = compute_advantages(episodes, ["env"], spec, context=_fixed_values(ROOMS))
    # returns (0.5, 1.0) minus values (0.3, 0.7)
    np.testing.assert_allclose(advantages[0], [0.2, 0.3], rtol=1e-6)
    assert [turn.credit_details["ppo"]["value"] for turn in episodes[0].turns] == pytest.approx(
        [0.3, 0.7]
    )


def test_by_default_the_turn_advantages_are_whitened_over_the_batch():
    episodes = [_prompted([0.0, 1.0], ["first room", "second room"])]
    spec = {"name": "ppo", "gamma": 0.5}
    advantages = compute_advantages(episodes, ["env"], spec, context=_fixed_values(ROOMS))
    # GAE 0.2 and 0.3 (as above): mean 0.25, unbiased std 0.05 * sqrt(2)
    np.testing.assert_allclose(advantages[0], [-1 / np.sqrt(2), 1 / np.sqrt(2)], rtol=1e-5)


def test_lambda_zero_in_the_estimator_is_the_one_step_td_error():
    episodes = [_prompted([0.0, 1.0], ["first room", "second room"])]
    spec = {"name": "ppo", "gamma": 0.5, "lam": 0.0, "normalize": False}
    advantages = compute_advantages(episodes, ["env"], spec, context=_fixed_values(ROOMS))
    # delta_0 = 0 + 0.5 * 0.7 - 0.3; delta_1 = 1 - 0.7 (terminated: V(s_2) = 0)
    np.testing.assert_allclose(advantages[0], [0.05, 0.3], rtol=1e-5)


def test_failed_episodes_get_zero_and_leave_the_critic_alone():
    ok = [_prompted([1.0, 0.0], ["a", "b"]), _prompted([0.0], ["c"])]
    failed = _prompted([5.0, 5.0], ["x", "y"], failed=True)
    alone, with_failed = PPOEstimator(), PPOEstimator()
    a = compute_advantages(ok, ["env"], "ppo", context=CreditContext(modules={"ppo": alone}))
    b = compute_advantages(
        [ok[0], failed, ok[1]], ["env"], "ppo", context=CreditContext(modules={"ppo": with_failed})
    )
    np.testing.assert_array_equal(b[1], [0.0, 0.0])
    np.testing.assert_allclose(b[0], a[0])
    np.testing.assert_allclose(b[2], a[1])
    for name, tensor in alone.critic.network.state_dict().items():
        torch.testing.assert_close(with_failed.critic.network.state_dict()[name], tensor)


def test_explained_variance_is_one_minus_the_unexplained_share_of_the_returns_variance():
    episodes = [_prompted([r], [p]) for r, p in [(1.0, "a"), (1.0, "b"), (0.0, "c")]]
    context = _fixed_values({"a": 0.5, "b": 1.0, "c": 0.0})
    compute_advantages(episodes, ["env"], {"name": "ppo", "normalize": False}, context=context)
    metrics = context.modules["ppo"].metrics()
    # Var(R) = 2/9, Var(R - V) = Var(0.5, 0, 0) = 1/18: 1 - (1/18) / (2/9) = 0.75
    assert metrics["explained_variance"] == pytest.approx(0.75)
    assert metrics["value_mean"] == pytest.approx(0.5)
    assert metrics["return_mean"] == pytest.approx(2 / 3)


def test_a_truncated_episode_ends_at_zero_or_bootstraps_from_its_last_value():
    def advantages(truncated: str) -> np.ndarray:
        episodes = [_prompted([0.0, 1.0], ["first room", "second room"])]
        episodes[0].truncated = True
        spec = {"name": "ppo", "gamma": 1.0, "normalize": False, "truncated": truncated}
        return compute_advantages(episodes, ["env"], spec, context=_fixed_values(ROOMS))[0]

    # zero: delta_1 = 1 + 0 - 0.7 = 0.3, delta_0 = 0 + 0.7 - 0.3 = 0.4
    np.testing.assert_allclose(advantages("zero"), [0.7, 0.3], rtol=1e-6)
    # last_value: V(s_2) := V(s_1) = 0.7, so delta_1 = 1 + 0.7 - 0.7 = 1.0
    np.testing.assert_allclose(advantages("last_value"), [1.4, 1.0], rtol=1e-6)


def test_last_value_leaves_a_terminated_episode_at_zero():
    episodes = [_prompted([0.0, 1.0], ["first room", "second room"])]
    spec = {"name": "ppo", "gamma": 1.0, "normalize": False, "truncated": "last_value"}
    advantages = compute_advantages(episodes, ["env"], spec, context=_fixed_values(ROOMS))
    np.testing.assert_allclose(advantages[0], [0.7, 0.3], rtol=1e-6)


def test_unknown_options_and_bad_choices_are_errors():
    with pytest.raises(CreditConfigError, match="unknown option 'lambda'.*lam"):
        check_credit_config(["env"], {"name": "ppo", "lambda": 0.9})
    with pytest.raises(CreditConfigError, match="unknown option 'context'"):
        check_credit_config(["env"], {"name": "ppo", "context": 1})
    with pytest.raises(ValueError, match="critic='value'"):
        compute_advantages([episode([1.0])], ["env"], {"name": "ppo", "critic": "value"})


def test_the_head_critic_without_a_hidden_state_policy_says_to_use_the_model_critic():
    with pytest.raises(ValueError, match="has no hidden_states.*use critic: model"):
        compute_advantages([episode([1.0])], ["env"], {"name": "ppo", "critic": "head"})


def test_the_critic_kind_cannot_change_within_a_run():
    context = CreditContext(modules={"ppo": PPOEstimator()})
    compute_advantages([episode([1.0])], ["env"], "ppo", context=context)
    with pytest.raises(ValueError, match="run's critic is 'model'"):
        compute_advantages([episode([1.0])], ["env"], {"name": "ppo", "critic": "head"}, context)


def test_only_the_head_critic_requires_the_policy():
    assert resolve("estimator", "ppo").requires == ()
    assert resolve("estimator", {"name": "ppo", "critic": "model"}).requires == ()
    (needed,) = resolve("estimator", {"name": "ppo", "critic": "head"}).requires
    assert needed.kind == "scorer"


# ---- the context hook ---------------------------------------------------------------------


@register_estimator("test_iteration_scaled")
def iteration_scaled(episodes, turn_rewards, *, context, scale: float = 1.0):
    """A user estimator reading the run's context: rewards times (iteration + 1) * scale."""
    return [np.asarray(r) * (context.iteration + 1) * scale for r in turn_rewards]


def test_an_estimator_taking_context_receives_the_callers_context():
    got = compute_advantages(
        [episode([1.0, 2.0])],
        ["env"],
        {"name": "test_iteration_scaled", "scale": 2.0},
        context=CreditContext(iteration=4),
    )
    np.testing.assert_array_equal(got[0], [10.0, 20.0])


def test_without_a_context_the_estimator_gets_an_empty_one():
    got = compute_advantages([episode([1.0])], ["env"], "test_iteration_scaled")
    np.testing.assert_array_equal(got[0], [1.0])


def test_context_is_not_an_option_of_the_estimator():
    with pytest.raises(CreditConfigError, match="unknown option 'context'.*valid options: scale"):
        check_credit_config(["env"], {"name": "test_iteration_scaled", "context": None})


# ---- state ------------------------------------------------------------------------------------


@pytest.mark.parametrize("critic", ["model", "head"])
def test_a_restored_critic_computes_the_next_advantages_bit_for_bit(critic):
    def batch(seed):
        rng = np.random.default_rng(seed)
        episodes = []
        for g in range(3):
            n = int(rng.integers(1, 4))
            ep = _prompted(rng.integers(0, 2, n).astype(float), [f"room {g} {t}" for t in range(n)])
            for turn in ep.turns:
                turn.prompt_ids = [1, int(rng.integers(2, 100))]
            episodes.append(ep)
        return episodes

    spec = {"name": "ppo", "critic": critic}
    scorer = _Features()
    first = PPOEstimator()
    compute_advantages(batch(0), ["env"], spec, CreditContext(scorer, modules={"ppo": first}))
    restored = PPOEstimator()
    restored.load_state_dict(first.state_dict())
    straight = compute_advantages(
        batch(1), ["env"], spec, CreditContext(scorer, modules={"ppo": first})
    )
    resumed = compute_advantages(
        batch(1), ["env"], spec, CreditContext(scorer, modules={"ppo": restored})
    )
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)
    for name, tensor in first.state_dict()["critic"]["network"].items():
        assert torch.equal(restored.state_dict()["critic"]["network"][name], tensor)


def test_a_new_module_has_no_state_to_save():
    assert PPOEstimator().state_dict() == {}


# ---- the policy's hidden states -------------------------------------------------------------


def test_hf_policy_hidden_states_in_a_padded_batch_equal_one_at_a_time():
    tokenizer = fit_tokenizer(["go to the fridge", "take the apple", "look"], vocab_size=300)
    model = build_tiny_model(tokenizer, hidden_size=32, num_layers=1, num_heads=2, seed=0)
    policy = HFPolicy(model, tokenizer, device="cpu")
    prompts = [policy.encode_prompt(p) for p in ["go to the fridge", "look", "take the apple"]]
    together = policy.hidden_states(prompts)
    assert together.shape == (3, 32) and not together.requires_grad
    for row, ids in zip(together, prompts):
        torch.testing.assert_close(row, policy.hidden_states([ids])[0], atol=1e-5, rtol=1e-5)


def test_hf_policy_hidden_states_at_positions_equal_those_of_the_prefixes():
    tokenizer = fit_tokenizer(["go to the fridge", "take the apple", "look"], vocab_size=300)
    model = build_tiny_model(tokenizer, hidden_size=32, num_layers=1, num_heads=2, seed=0)
    policy = HFPolicy(model, tokenizer, device="cpu")
    conversation = policy.encode_prompt("go to the fridge take the apple look")
    other = policy.encode_prompt("look")
    at = [1, 4, len(conversation) - 1]
    together = policy.hidden_states([conversation, other], positions=[at, [len(other) - 1]])
    prefixes = policy.hidden_states([conversation[: p + 1] for p in at] + [other])
    torch.testing.assert_close(together, prefixes, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="not all within a sequence of"):
        policy.hidden_states([other], positions=[[len(other)]])


# ---- in the trainer -------------------------------------------------------------------------


@register_shaper("test_action_length")
def action_length(episodes, context) -> list[np.ndarray]:
    """A dense reward (len(action) / 100), so a tiny run's critic has non-zero returns to fit."""
    return [np.array([len(turn.action) / 100 for turn in ep.turns]) for ep in episodes]


def _config(tmp_path, name, critic, *overrides):
    return load_config(
        None,
        [
            *TINY,
            "env.kwargs={max_steps: 6}",
            "rollout.groups=2",
            "rollout.group_size=3",
            "eval.episodes=2",
            "eval.every=0",
            "run.save_every=1",
            "run.threads=1",
            "credit.shapers=[env, test_action_length]",
            f"credit.estimator={{name: ppo, critic: {critic}}}",
            f"run.output_dir={tmp_path / name}",
            *overrides,
        ],
    )


@pytest.mark.parametrize("critic", ["model", "head"])
def test_a_training_iteration_trains_and_saves_the_critic(tmp_path, critic):
    result = train(_config(tmp_path, critic, critic, "train.iterations=1"))
    saved = torch.load(result.checkpoint / "credit.pt", weights_only=False)["ppo"]["critic"]
    assert saved["kind"] == critic
    moved = [step["step"] for step in saved["optimizer"]["state"].values()]
    assert moved and all(s == 4 for s in moved)  # critic_epochs Adam steps
    (row,) = training_rows(tmp_path / critic)
    assert row["ppo/value_loss_last"] < row["ppo/value_loss_first"]
    assert "ppo/explained_variance" in row  # its value: the hand-worked test above


def test_a_resumed_run_continues_the_critic_exactly(tmp_path):
    straight = train(_config(tmp_path, "straight", "head", "train.iterations=2"))
    train(_config(tmp_path, "resumed", "head", "train.iterations=1"))
    resumed = train(_config(tmp_path, "resumed", "head", "train.iterations=2"))

    def critic_weights(result):
        saved = torch.load(result.checkpoint / "credit.pt", weights_only=False)
        return saved["ppo"]["critic"]["network"]

    for name, tensor in critic_weights(straight).items():
        assert torch.equal(critic_weights(resumed)[name], tensor)
    assert training_rows(tmp_path / "resumed") == training_rows(tmp_path / "straight")
    weights = load_file(straight.checkpoint / "model" / "model.safetensors")
    again = load_file(resumed.checkpoint / "model" / "model.safetensors")
    for name, tensor in weights.items():
        assert torch.equal(again[name], tensor)


def test_resuming_without_the_critic_would_change_the_run(tmp_path, monkeypatch):
    # the control for the test above: the restored critic really steers the update
    straight = train(_config(tmp_path, "straight", "head", "train.iterations=2"))
    train(_config(tmp_path, "forgetful", "head", "train.iterations=1"))
    monkeypatch.setattr(PPOEstimator, "load_state_dict", lambda self, state: None)
    forgetful = train(_config(tmp_path, "forgetful", "head", "train.iterations=2"))
    a = load_file(straight.checkpoint / "model" / "model.safetensors")
    b = load_file(forgetful.checkpoint / "model" / "model.safetensors")
    assert any(not torch.equal(a[name], b[name]) for name in a)


def test_explained_variance_is_zero_when_the_returns_do_not_vary():
    episodes = [_prompted([1.0], [p]) for p in ("a", "b")]
    context = _fixed_values({"a": 0.2, "b": 0.9})
    compute_advantages(episodes, ["env"], {"name": "ppo", "normalize": False}, context=context)
    assert context.modules["ppo"].metrics()["explained_variance"] == 0.0


def test_the_value_loss_metrics_are_the_first_and_the_last_epochs():
    row = _critic_metrics(np.array([0.0, 1.0]), np.array([0.0, 1.0]), [3.0, 2.0, 1.0])
    assert (row["value_loss_first"], row["value_loss_last"]) == (3.0, 1.0)
    assert "value_loss_first" not in _critic_metrics(np.zeros(2), np.zeros(2), [])


def test_the_critic_errors_say_exactly_what_to_change():
    with pytest.raises(ValueError) as error:
        make_critic("value", seed=0, lr=1e-3, hidden=8)
    assert str(error.value) == "ppo: critic='value' is not one of 'model', 'head'"
    model = make_critic("model", seed=0, lr=1e-3, hidden=8)
    model.values(model.encode([[Turn(observation="o", action="a", prompt="room")]], None))
    with pytest.raises(ValueError) as error:
        make_critic("head", seed=0, lr=1e-3, hidden=8).load_state_dict(model.state_dict())
    assert str(error.value) == (
        "the checkpoint holds a 'model' critic, but this run configures critic='head'; "
        "resume with the same critic or start a new run"
    )
    with pytest.raises(ValueError) as error:
        compute_advantages([episode([1.0])], ["env"], {"name": "ppo", "critic": "head"})
    assert str(error.value) == (
        "ppo with critic: head reads the policy's hidden states, but the policy in the credit "
        "context (NoneType) has no hidden_states(prompt_ids) (scripted and served policies "
        "have none); use critic: model, which needs nothing from the policy, or a Hugging Face "
        "model policy"
    )


# ---- edge cases and exact numbers (each guards a line no other test reads) --------------------


def test_gae_of_an_empty_batch_is_an_empty_array():
    got = turn_gae(np.zeros(0), np.zeros(0), np.zeros(0, dtype=int), gamma=0.9, lam=1.0)
    assert got.shape == (0,)


def test_whitening_equal_advantages_gives_zeros_not_nan():
    # var 0: the epsilon keeps the denominator sqrt(1e-8) > 0
    np.testing.assert_array_equal(whiten(np.array([0.5, 0.5, 0.5])), [0.0, 0.0, 0.0])


def test_the_ppo_details_of_a_turn_are_its_value_return_and_raw_gae():
    episodes = [_prompted([0.0, 1.0], ["first room", "second room"])]
    spec = {"name": "ppo", "gamma": 0.5, "lam": 0.0}
    compute_advantages(episodes, ["env"], spec, context=_fixed_values(ROOMS))
    # the raw (unwhitened) one-step TD errors 0.05 and 0.3; return = gae + value
    first, second = (turn.credit_details["ppo"] for turn in episodes[0].turns)
    assert first == pytest.approx({"value": 0.3, "return": 0.35, "gae": 0.05})
    assert second == pytest.approx({"value": 0.7, "return": 1.0, "gae": 0.3})


def test_last_value_bootstraps_a_truncated_one_turn_episode():
    episodes = [_prompted([1.0], ["first room"])]
    episodes[0].truncated = True
    spec = {"name": "ppo", "gamma": 1.0, "normalize": False, "truncated": "last_value"}
    advantages = compute_advantages(episodes, ["env"], spec, context=_fixed_values(ROOMS))
    # V(s_1) := V(s_0) = 0.3: delta_0 = 1 + 0.3 - 0.3 = 1 (with zero it would be 0.7)
    np.testing.assert_allclose(advantages[0], [1.0], rtol=1e-6)


def test_a_batch_of_only_failed_episodes_gets_zeros_and_builds_no_critic():
    episodes = [
        _prompted([1.0, 0.0], ["a", "b"], failed=True),
        _prompted([1.0], ["c"], failed=True),
    ]
    module = PPOEstimator()
    got = compute_advantages(episodes, ["env"], "ppo", CreditContext(modules={"ppo": module}))
    assert isinstance(got, list) and len(got) == 2
    np.testing.assert_array_equal(got[0], [0.0, 0.0])
    np.testing.assert_array_equal(got[1], [0.0])
    assert module.critic is None and module.metrics() == {}


@pytest.mark.parametrize(
    "option, message",
    [
        ({"critic_epochs": -1}, "got -1 and 0.2"),
        ({"value_clip": 0.0}, "got 4 and 0.0"),
        ({"value_clip": -0.5}, "got 4 and -0.5"),
    ],
)
def test_a_negative_epoch_count_or_a_non_positive_value_clip_is_refused(option, message):
    with pytest.raises(ValueError) as error:
        compute_advantages([episode([1.0])], ["env"], {"name": "ppo", **option})
    assert str(error.value) == f"ppo: critic_epochs must be >= 0 and value_clip > 0; {message}"


class _RecordingCritic(_FixedCritic):
    """A fixed critic that records how the estimator asks it to train."""

    def fit(self, inputs, old_values, returns, *, epochs, clip):
        self.fitted = {"epochs": epochs, "clip": clip, "returns": returns}
        return []


def test_zero_critic_epochs_are_allowed_and_the_defaults_are_four_epochs_clip_0_2():
    module = PPOEstimator()
    module.critic = _RecordingCritic(ROOMS)
    context = CreditContext(modules={"ppo": module})
    episodes = [_prompted([0.0, 1.0], ["first room", "second room"])]
    compute_advantages(episodes, ["env"], "ppo", context=context)
    assert (module.critic.fitted["epochs"], module.critic.fitted["clip"]) == (4, 0.2)
    # the critic regresses on float32 returns (0.95, 1.0) with the default gamma
    assert module.critic.fitted["returns"].dtype == torch.float32
    compute_advantages(episodes, ["env"], {"name": "ppo", "critic_epochs": 0}, context)
    assert module.critic.fitted["epochs"] == 0


def test_a_new_critic_is_built_with_the_default_hidden_width_learning_rate_and_seed():
    module = PPOEstimator()
    compute_advantages([episode([1.0])], ["env"], "ppo", CreditContext(modules={"ppo": module}))
    assert (module.critic.hidden, module.critic.lr, module.critic.seed) == (64, 1e-2, 0)
    assert module.critic.network.mlp[0].out_features == 64
    assert [group["lr"] for group in module.critic.optimizer.param_groups] == [1e-2]


def test_make_critic_passes_its_seed_learning_rate_and_width_on():
    critic = make_critic("model", seed=7, lr=0.25, hidden=5)
    assert (critic.seed, critic.lr, critic.hidden) == (7, 0.25, 5)


def test_set_lr_changes_the_learning_rate_of_a_built_critics_optimizer():
    critic = make_critic("model", seed=0, lr=1e-3, hidden=4)
    critic.values(critic.encode([[Turn(observation="o", action="a", prompt="room")]], None))
    critic.set_lr(0.5)
    assert [group["lr"] for group in critic.optimizer.param_groups] == [0.5]


def test_the_value_loss_metrics_are_the_float32_loss_of_the_returns():
    module = PPOEstimator()
    episodes = [_prompted([0.0, 1.0], ["first room", "second room"])]
    compute_advantages(episodes, ["env"], "ppo", CreditContext(modules={"ppo": module}))
    # a fresh critic says V = 0 with returns (0.95, 1): the loss is 0.5 mean(R^2), in float32
    returns = torch.tensor([0.95, 1.0], dtype=torch.float32)
    expected = (0.5 * (returns**2).mean()).item()
    assert module.metrics()["value_loss_first"] == expected


def test_the_head_critic_names_the_policy_type_that_lacks_hidden_states():
    with pytest.raises(ValueError, match=r"credit context \(object\) has no hidden_states"):
        compute_advantages(
            [episode([1.0])], ["env"], {"name": "ppo", "critic": "head"}, CreditContext(object())
        )


def test_the_head_critic_without_prompt_ids_says_exactly_to_use_the_model_critic():
    with pytest.raises(ValueError) as error:
        HeadCritic().encode([episode([1.0]).turns], CreditContext(_Features()))
    assert str(error.value) == (
        "ppo with critic: head needs every turn's prompt token ids (turn.prompt_ids), "
        "and some turn has none; use critic: model"
    )


class _DoubleFeatures(_Features):
    """Hidden states in float64, as a policy run in another precision would hand them."""

    def hidden_states(self, prompt_ids, *, positions=None):
        return super().hidden_states(prompt_ids, positions=positions).double()


def test_the_head_critics_inputs_are_float32_whatever_the_policys_precision():
    ep = episode([0.0, 1.0])
    for turn, ids in zip(ep.turns, [[1, 5], [1, 7]]):
        turn.prompt_ids, turn.response_ids = ids, [8, 9]
    (turns,) = HeadCritic().encode([ep.turns], CreditContext(_DoubleFeatures()))
    (tokens,) = HeadCritic().encode_tokens([ep.turns], CreditContext(_DoubleFeatures()))
    assert turns.dtype == tokens.dtype == torch.float32


def test_the_value_head_normalises_the_features_with_no_trainable_scale():
    critic = HeadCritic(seed=0, hidden=4)
    features = torch.randn(3, 8, generator=torch.Generator().manual_seed(1))
    critic.values((features,))
    with torch.no_grad():  # a nonzero output layer, so the value reads the features
        critic.network[1][2].weight.fill_(1.0)
        scaled = critic.values((100.0 * features + 3.0,))
        torch.testing.assert_close(scaled, critic.values((features,)), atol=1e-4, rtol=1e-4)
    # only the MLP trains: the LayerNorm has no weight or bias of its own
    assert [name for name, _ in critic.network.named_parameters()] == [
        "1.0.weight",
        "1.0.bias",
        "1.2.weight",
        "1.2.bias",
    ]


def test_a_head_critic_refuses_features_of_another_size_naming_both():
    # e.g. a run resumed with a policy of another hidden size than the saved critic's
    critic = HeadCritic(seed=0, hidden=4)
    critic.values((torch.zeros(2, 8),))
    with pytest.raises(ValueError) as error:
        critic.values((torch.zeros(2, 16),))
    assert str(error.value) == (
        "the head critic was built for inputs of size 8, but now gets size 16"
    )


def test_the_token_bag_value_is_the_mlp_of_the_mean_embeddings_of_tokens_and_pairs():
    # prompts [3, 4, 4] (keys: 3, 4, 4 and the pairs (3, 4), (4, 4)) and [7] (one key)
    def pair(a, b):
        return (a * 1_000_003 + b * 7_919 + 104_729) % 8192

    critic = TokenBagCritic(seed=0, hidden=4)
    turns = [Turn(observation="o", action="a", prompt_ids=ids) for ids in ([3, 4, 4], [7])]
    inputs = critic.encode([turns], None)
    critic.values(inputs)
    table = critic.network.embedding.weight
    with torch.no_grad():
        critic.network.mlp[2].weight.fill_(1.0)
        means = [table[[3, 4, 4, pair(3, 4), pair(4, 4)]].mean(0), table[[7]].mean(0)]
        # the prompts are shorter than TAIL: the tail's mean is the whole prompt's
        expected = critic.network.mlp(torch.stack([torch.cat([m, m]) for m in means]))
        torch.testing.assert_close(critic.values(inputs), expected.squeeze(-1))


def test_prompt_text_bytes_and_the_token_ids_of_the_same_numbers_land_on_other_rows():
    from creditgym.credit.estimators.critic import BUCKETS, _hashed_keys, _token_ids

    text = _hashed_keys(_token_ids(Turn(observation="o", action="a", prompt="hi")), BUCKETS)
    ids = _hashed_keys(
        _token_ids(Turn(observation="o", action="a", prompt_ids=[104, 105])), BUCKETS
    )
    assert len(text) == len(ids) == 3  # two unigrams and their pair
    assert not set(text.tolist()) & set(ids.tolist())
    assert text[:2].tolist() == [104 + BUCKETS // 2 + 1, 105 + BUCKETS // 2 + 1]

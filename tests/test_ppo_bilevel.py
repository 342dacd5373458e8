"""PPO's bi-level GAE (``level: bilevel``): token-level GAE on hand-worked numbers, per-token
advantages reaching the policy loss (and the micro-batch loss's other inputs), and a training
iteration on the tiny model."""

import numpy as np
import pytest
import torch
from conftest import TINY, episode, training_rows
from torch import nn

from creditgym.config import load_config
from creditgym.credit import CreditContext, assign_credit, register_shaper
from creditgym.credit.estimators.critic import Critic, HeadCritic
from creditgym.credit.estimators.ppo import PPOEstimator, token_gae, turn_gae
from creditgym.train.trainer import train
from creditgym.train.update import TrainTurn, flatten_sequences, flatten_turns, micro_batch_loss

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- token-level GAE ----------------------------------------------------------------------


def test_token_gae_equals_the_direct_double_loop_sum():
    rng = np.random.default_rng(5)
    lengths = np.array([3, 1, 5, 2])
    values = rng.normal(size=lengths.sum())
    turn_returns = rng.normal(size=len(lengths))
    gamma, lam = 0.9, 0.8

    expected = []
    start = 0
    for n, target in zip(lengths, turn_returns):
        v = values[start : start + n]
        deltas = [gamma * v[j + 1] - v[j] for j in range(n - 1)] + [target - v[n - 1]]
        for j in range(n):
            expected.append(sum((gamma * lam) ** k * deltas[j + k] for k in range(n - j)))
        start += n

    got = token_gae(values, lengths, turn_returns, gamma=gamma, lam=lam)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_with_one_value_per_turn_the_token_advantages_are_the_turns():
    # every token of turn t valued V(s_t): a_j = R_t - V(s_t) = A_t (token gamma = lam = 1)
    lengths = np.array([4, 2, 3])
    turn_values = np.array([0.3, -0.2, 0.7])
    turn_advantages = turn_gae(
        np.array([0.0, 1.0, 0.5]), turn_values, np.array([3]), gamma=0.95, lam=0.9
    )
    returns = turn_advantages + turn_values
    got = token_gae(np.repeat(turn_values, lengths), lengths, returns, gamma=1.0, lam=1.0)
    np.testing.assert_allclose(got, np.repeat(turn_advantages, lengths), rtol=1e-12)


# ---- per-token advantages reach the loss ----------------------------------------------------


class _LogprobPolicy:
    """Scores every response token with a trainable log-prob (its behaviour log-prob), so the
    loss's gradient on each is -advantage / token_count at ratio one."""

    def __init__(self, turns):
        self.model = nn.ParameterList(
            [nn.Parameter(torch.tensor(turn.logprobs, dtype=torch.float32)) for turn in turns]
        )
        self.rows = {id(turn.response_ids): p for turn, p in zip(turns, self.model)}

    def score(self, prompts, responses, admissible, *, with_entropy):
        return [self.rows[id(r)] for r in responses], None

    def score_spans(self, sequences, spans, admissible, *, with_entropy):
        rows = [[p] for p in self.model]  # one sequence per turn in these tests
        return rows[: len(sequences)], None


def _token_episode():
    ep = episode([0.0, 1.0])
    for k, turn in enumerate(ep.turns):
        turn.prompt_ids = [1, 2 + 10 * k]
        turn.response_ids = [3 + 10 * k, 4 + 10 * k, 5 + 10 * k]
        turn.logprobs = [-1.0, -0.5, -2.0]
    return ep


def test_flatten_turns_with_token_arrays_weights_each_token_by_its_own_advantage():
    ep = _token_episode()
    tokens = [[np.array([1.0, -2.0, 0.5]), np.array([0.0, 3.0, -1.0])]]
    flat = flatten_turns([ep], [np.array([7.0, 7.0])], tokens)
    policy = _LogprobPolicy(ep.turns)
    out = micro_batch_loss(policy, flat, token_count=6.0)
    out.loss.backward()
    for param, row in zip(policy.model, tokens[0]):
        torch.testing.assert_close(param.grad, torch.tensor(-row / 6.0, dtype=torch.float32))


def test_without_token_arrays_the_turns_advantage_is_broadcast_as_before():
    ep = _token_episode()
    flat = flatten_turns([ep], [np.array([2.0, -1.0])])
    policy = _LogprobPolicy(ep.turns)
    micro_batch_loss(policy, flat, token_count=6.0).loss.backward()
    for param, advantage in zip(policy.model, [2.0, -1.0]):
        torch.testing.assert_close(param.grad, torch.full((3,), -advantage / 6.0))


def test_flatten_sequences_carries_the_token_arrays_per_turn():
    ep = _token_episode()  # the second prompt does not extend the first: two sequences
    tokens = [[np.array([1.0, -2.0, 0.5]), np.array([0.0, 0.0, 0.0])]]
    sequences = flatten_sequences([ep], [np.array([0.0, 0.0])], tokens)
    assert [s.token_advantages for s in sequences] == [[[1.0, -2.0, 0.5]], [[0.0, 0.0, 0.0]]]
    assert [s.trains for s in sequences] == [True, False]  # nonzero tokens must be scored


def test_token_arrays_of_the_wrong_length_are_a_clear_error():
    ep = _token_episode()
    tokens = [[np.array([1.0, -2.0, 0.5]), np.array([0.0, 3.0])]]
    message = (
        "a turn has 3 response tokens but 2 token advantages; "
        "the estimator must give one per response token"
    )
    with pytest.raises(ValueError, match=message):
        flatten_sequences([ep], [np.array([0.0, 0.0])], tokens)


def test_a_micro_batch_mixing_token_arrays_and_turn_advantages_weighs_each_its_own_way():
    ep = _token_episode()
    flat = flatten_turns([ep], [np.array([7.0, 2.0])], [[np.array([1.0, -2.0, 0.5])] * 2])
    flat[1].token_advantages = None  # this turn's advantage, 2, goes to each of its tokens
    policy = _LogprobPolicy(ep.turns)
    micro_batch_loss(policy, flat, token_count=6.0).loss.backward()
    torch.testing.assert_close(policy.model[0].grad, torch.tensor([-1.0, 2.0, -0.5]) / 6.0)
    torch.testing.assert_close(policy.model[1].grad, torch.full((3,), -2.0 / 6.0))


# ---- the micro-batch loss's other inputs ------------------------------------------------


class _OneTokenPolicy:
    """One response token whose log-prob is a trainable parameter, scored with entropy 0.5."""

    def __init__(self, logprob: float):
        self.model = nn.ParameterList([nn.Parameter(torch.tensor([logprob]))])

    def score(self, prompts, responses, admissible, *, with_entropy):
        return [self.model[0]], [torch.tensor([0.5])]


def test_the_micro_batch_loss_defaults_to_ppos_clip_range_and_no_entropy_bonus():
    """At ratio 1.3 a positive advantage is clipped at 1 + 0.2: loss -1.2, no gradient, and
    the entropy is reported but not added."""
    policy = _OneTokenPolicy(float(np.log(1.3)))
    out = micro_batch_loss(policy, [TrainTurn([1], [2], [0.0], 1.0, None)], token_count=1.0)
    out.loss.backward()
    assert out.loss.item() == pytest.approx(-1.2)
    assert policy.model[0].grad.item() == 0.0
    assert out.entropy == pytest.approx(0.5)


def test_the_micro_batch_loss_adds_the_reference_kl_at_any_positive_coefficient():
    ep = _token_episode()
    flat = flatten_turns([ep], [np.array([0.0, 0.0])])
    for turn in flat:
        turn.ref_logprobs = torch.tensor(turn.old_logprobs) - 0.5
    out = micro_batch_loss(_LogprobPolicy(ep.turns), flat, token_count=6.0, kl_coef=0.1)
    k3 = float(np.exp(-0.5)) - 0.5  # per token, delta = log pi_ref - log pi = -0.5
    assert out.ref_kl == pytest.approx(k3)
    assert out.loss.item() == pytest.approx(0.1 * k3)


def test_behaviour_logprobs_recorded_as_numpy_floats_give_a_float32_loss():
    """A custom policy's numpy log-probs reach `Turn.logprobs` as numpy float64 values."""
    ep = _token_episode()
    for turn in ep.turns:
        turn.logprobs = list(np.array(turn.logprobs))
    flat = flatten_turns([ep], [np.array([2.0, -1.0])])
    out = micro_batch_loss(_LogprobPolicy(ep.turns), flat, token_count=6.0)
    assert out.loss.dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu_the_loss_moves_its_cpu_inputs_to_the_models_device():
    """The behaviour and reference log-probs and the advantages are made on the CPU; on a GPU
    model the loss moves them there and gives the CPU's loss and gradients."""
    results = []
    for device in ("cpu", "cuda"):
        ep = _token_episode()
        flat = flatten_turns([ep], [np.array([2.0, -1.0])])
        for turn in flat:
            turn.ref_logprobs = torch.tensor(turn.old_logprobs) - 0.5
        policy = _LogprobPolicy(ep.turns)
        policy.model.to(device)
        out = micro_batch_loss(policy, flat, token_count=6.0, kl_coef=0.1)
        out.loss.backward()
        assert out.loss.device.type == device
        results.append((out.loss.item(), [p.grad.cpu() for p in policy.model]))
    (cpu_loss, cpu_grads), (gpu_loss, gpu_grads) = results
    assert gpu_loss == pytest.approx(cpu_loss)
    for cpu_grad, gpu_grad in zip(cpu_grads, gpu_grads):
        torch.testing.assert_close(gpu_grad, cpu_grad)


# ---- the estimator --------------------------------------------------------------------------


class _Features:
    """A stand-in policy whose hidden state at a position is a fixed vector of that token."""

    def __init__(self, dim: int = 8) -> None:
        self.table = torch.randn(100, dim, generator=torch.Generator().manual_seed(0))

    def hidden_states(self, prompt_ids, *, positions=None):
        if positions is None:
            positions = [[len(ids) - 1] for ids in prompt_ids]
        self.positions = positions
        return self.table[[ids[p] for ids, at in zip(prompt_ids, positions) for p in at]]


def test_bilevel_gives_per_token_advantages_and_the_turn_level_ones():
    episodes = [_token_episode(), _token_episode(), episode([1.0], failed=True)]
    episodes[2].turns[0].response_ids = [9, 9]
    spec = {"name": "ppo", "critic": "head", "level": "bilevel", "normalize": False}
    context = CreditContext(scorer=_Features(), modules={"ppo": PPOEstimator()})
    assigned = assign_credit(episodes, ["env"], spec, context=context)
    # a fresh critic says V = 0: each token's advantage is its turn's discounted return
    np.testing.assert_allclose(assigned.advantages[0], [0.95, 1.0])
    np.testing.assert_allclose(assigned.token_advantages[0][0], [0.95] * 3)
    np.testing.assert_allclose(assigned.token_advantages[0][1], [1.0] * 3)
    np.testing.assert_array_equal(assigned.token_advantages[2][0], [0.0, 0.0])
    # the token values are read before each token: the prompt's last, then the response's
    assert context.scorer.positions[:2] == [[1, 2, 3], [1, 2, 3]]
    details = episodes[0].turns[0].credit_details["ppo"]
    assert details["value"] == 0.0 and details["return"] == pytest.approx(0.95)


class _FixedTokenValues(Critic):
    """A head critic whose token values are fixed numbers and which never trains."""

    kind = "head"

    def __init__(self, values: list[float]) -> None:
        super().__init__()
        self.fixed = values

    def encode_tokens(self, episodes, context):
        return None

    def values(self, inputs):
        return torch.tensor(self.fixed, dtype=torch.float32)

    def fit(self, *args, **kwargs):
        return []


def test_bilevel_token_advantages_are_the_turn_return_minus_each_tokens_value():
    module = PPOEstimator()
    module.critic = _FixedTokenValues([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    spec = {"name": "ppo", "critic": "head", "level": "bilevel", "normalize": False}
    context = CreditContext(scorer=_Features(), modules={"ppo": module})
    assigned = assign_credit([_token_episode()], ["env"], spec, context=context)
    # turn returns R = (0.95, 1.0) with V(s_t) the first token's value: A = (0.85, 0.6)
    np.testing.assert_allclose(assigned.advantages[0], [0.85, 0.6], rtol=1e-6)
    # token gamma = lambda = 1: the deltas telescope to R_t - v_j
    np.testing.assert_allclose(assigned.token_advantages[0][0], [0.85, 0.75, 0.65], rtol=1e-6)
    np.testing.assert_allclose(assigned.token_advantages[0][1], [0.6, 0.5, 0.4], rtol=1e-6)


def test_bilevel_with_normalize_whitens_the_tokens():
    episodes = [_token_episode(), _token_episode()]
    spec = {"name": "ppo", "critic": "head", "level": "bilevel"}
    context = CreditContext(scorer=_Features(), modules={"ppo": PPOEstimator()})
    tokens = np.concatenate(
        [
            row
            for rows in assign_credit(episodes, ["env"], spec, context).token_advantages
            for row in rows
        ]
    )
    assert tokens.mean() == pytest.approx(0.0, abs=1e-9)
    assert tokens.std(ddof=1) == pytest.approx(1.0, rel=1e-4)  # epsilon 1e-8 in the variance


def test_the_turn_level_returns_no_token_advantages():
    spec = {"name": "ppo", "critic": "head"}
    context = CreditContext(scorer=_Features(), modules={"ppo": PPOEstimator()})
    assert assign_credit([_token_episode()], ["env"], spec, context).token_advantages is None


def test_bilevel_with_the_model_critic_is_a_clear_error():
    with pytest.raises(ValueError, match="level: bilevel .* critic: head"):
        assign_credit([_token_episode()], ["env"], {"name": "ppo", "level": "bilevel"})


def test_bilevel_without_response_tokens_says_to_use_the_turn_level():
    spec = {"name": "ppo", "critic": "head", "level": "bilevel"}
    ep = _token_episode()
    ep.turns[1].response_ids = []
    with pytest.raises(ValueError, match="use level: turn"):
        assign_credit([ep], ["env"], spec, CreditContext(scorer=_Features()))


# ---- in the trainer -------------------------------------------------------------------------


@register_shaper("test_bilevel_action_length")
def action_length(episodes, context) -> list[np.ndarray]:
    """A dense reward (len(action) / 100), so a tiny run has non-zero advantages to train on."""
    return [np.array([len(turn.action) / 100 for turn in ep.turns]) for ep in episodes]


@pytest.mark.parametrize("context", ["window", "conversation"])
def test_a_bilevel_training_iteration_trains_the_policy_and_the_critic(tmp_path, context):
    config = load_config(
        None,
        [
            *TINY,
            "env.kwargs={max_steps: 4}",
            "rollout.groups=2",
            "rollout.group_size=2",
            "eval.episodes=2",
            "eval.every=0",
            "run.threads=1",
            "train.iterations=1",
            f"policy.context={context}",
            "credit.shapers=[env, test_bilevel_action_length]",
            "credit.estimator={name: ppo, critic: head, level: bilevel}",
            f"run.output_dir={tmp_path / 'run'}",
        ],
    )
    result = train(config)
    (row,) = training_rows(tmp_path / "run")
    assert row["update/steps"] >= 1
    assert row["ppo/value_loss_last"] < row["ppo/value_loss_first"]
    saved = torch.load(result.checkpoint / "credit.pt", weights_only=False)["ppo"]["critic"]
    assert saved["kind"] == "head"


# ---- edge cases and exact numbers (each guards a line no other test reads) --------------------


def test_token_gae_of_one_token_is_the_turn_return_minus_its_value():
    got = token_gae(np.array([0.25]), np.array([1]), np.array([1.0]), gamma=0.9, lam=0.8)
    np.testing.assert_array_equal(got, [0.75])


def test_token_gae_of_no_tokens_is_an_empty_array():
    got = token_gae(np.zeros(0), np.zeros(0, dtype=int), np.zeros(0), gamma=1.0, lam=1.0)
    assert got.shape == (0,)


def test_token_gae_skips_turns_without_tokens():
    # turns of 0, 2, 0 and 1 tokens: the returns 9 and 7 of the empty turns are never read
    got = token_gae(
        np.array([0.25, 0.5, 0.125]),
        np.array([0, 2, 0, 1]),
        np.array([9.0, 1.0, 7.0, 2.0]),
        gamma=1.0,
        lam=1.0,
    )
    np.testing.assert_array_equal(got, [0.75, 0.5, 1.875])


def test_bilevel_trains_the_critic_on_each_tokens_advantage_plus_its_value():
    module = PPOEstimator()
    module.critic = _FixedTokenValues([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    spec = {"name": "ppo", "critic": "head", "level": "bilevel", "normalize": False}
    context = CreditContext(scorer=_Features(), modules={"ppo": module})
    assign_credit([_token_episode()], ["env"], spec, context=context)
    # the token targets a_j + v_j are the turn returns (0.95 x 3, 1.0 x 3)
    metrics = module.metrics()
    assert metrics["return_mean"] == pytest.approx(0.975)
    assert metrics["value_mean"] == pytest.approx(0.35)


@pytest.mark.parametrize("level", ["turn", "bilevel"])
def test_a_batch_of_only_failed_episodes_gets_zero_turn_and_token_advantages(level):
    episodes = [episode([1.0, 0.0], failed=True), episode([1.0], failed=True)]
    for ep in episodes:
        for turn in ep.turns:
            turn.response_ids = [3, 4]
    spec = {"name": "ppo", "critic": "head", "level": level}
    assigned = assign_credit(episodes, ["env"], spec, CreditContext(scorer=_Features()))
    np.testing.assert_array_equal(assigned.advantages[0], [0.0, 0.0])
    np.testing.assert_array_equal(assigned.advantages[1], [0.0])
    if level == "turn":
        assert assigned.token_advantages is None
    else:
        assert [len(rows) for rows in assigned.token_advantages] == [2, 1]
        for rows in assigned.token_advantages:
            for row in rows:
                np.testing.assert_array_equal(row, [0.0, 0.0])


def test_bilevel_without_response_tokens_says_exactly_what_is_missing():
    spec = {"name": "ppo", "critic": "head", "level": "bilevel"}
    ep = _token_episode()
    ep.turns[1].response_ids = []
    with pytest.raises(ValueError) as error:
        assign_credit([ep], ["env"], spec, CreditContext(scorer=_Features()))
    assert str(error.value) == (
        "ppo with level: bilevel needs every turn's prompt and response token ids "
        "(turn.prompt_ids, turn.response_ids), and some turn has none; use level: turn"
    )


class _CountingFeatures(_Features):
    """Records the sequences it is asked to read."""

    def hidden_states(self, prompt_ids, *, positions=None):
        self.sequences = [list(ids) for ids in prompt_ids]
        return super().hidden_states(prompt_ids, positions=positions)


def test_bilevel_reads_a_conversation_of_three_turns_in_one_pass():
    # each turn's prompt is the previous prompt + response + a new observation token
    ep = episode([0.0, 0.0, 1.0])
    prompts = [[1, 2], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6, 7]]
    responses = [[3, 4], [6], [8, 9]]
    for turn, prompt, response in zip(ep.turns, prompts, responses):
        turn.prompt_ids, turn.response_ids = prompt, response
    policy = _CountingFeatures()
    (features,) = HeadCritic().encode_tokens([ep.turns], CreditContext(scorer=policy))
    assert policy.sequences == [[1, 2, 3, 4, 5, 6, 7, 8, 9]]
    assert policy.positions == [[1, 2, 4, 6, 7]]
    torch.testing.assert_close(features, policy.table[[2, 3, 5, 7, 8]])

"""The PPO-clip token loss: REINFORCE at ratio 1, clipping at the edges, token-mean
micro-batching."""

import pytest
import torch

from creditgym.train.losses import pad_sequences, ppo_clip_loss


def test_loss_at_ratio_one_has_the_reinforce_gradient():
    # At theta = theta_old the PPO surrogate's gradient is -mean_t A * grad log pi(token_t).
    logits = torch.tensor([[0.3, -0.2, 1.0], [0.5, 0.1, -1.0]], requires_grad=True)
    tokens = torch.tensor([[0, 2], [1, 0]])
    logprobs = (
        torch.log_softmax(logits, -1)[:, None, :]
        .expand(2, 2, 3)
        .gather(-1, tokens[..., None])[..., 0]
    )
    advantages = torch.tensor([2.0, -1.0])
    mask = torch.ones(2, 2)
    out = ppo_clip_loss(logprobs, logprobs.detach(), advantages, mask)
    (ppo_grad,) = torch.autograd.grad(out.loss, logits, retain_graph=True)

    reinforce = -(advantages[:, None] * logprobs).sum() / mask.sum()
    (reinforce_grad,) = torch.autograd.grad(reinforce, logits)
    torch.testing.assert_close(ppo_grad, reinforce_grad)
    assert out.approx_kl == pytest.approx(0.0)
    assert out.clip_fraction == 0.0


@pytest.mark.parametrize(
    "advantage, ratio, clipped",
    [
        (1.0, 1.3, True),  # positive advantage: no gain beyond 1 + eps
        (1.0, 0.7, False),  # positive advantage, ratio fell: unclipped term is the max
        (-1.0, 0.7, True),  # negative advantage: no gain below 1 - eps
        (-1.0, 1.3, False),  # negative advantage, ratio rose: unclipped (pessimistic) term
        (1.0, 1.2, False),  # exactly at the edge: still differentiable
    ],
)
def test_clipping_stops_the_gradient_only_beyond_the_trust_region(advantage, ratio, clipped):
    new = torch.tensor([[torch.log(torch.tensor(ratio)).item()]], requires_grad=True)
    out = ppo_clip_loss(
        new, torch.zeros(1, 1), torch.tensor([advantage]), torch.ones(1, 1), clip_eps=0.2
    )
    (grad,) = torch.autograd.grad(out.loss, new)
    if clipped:
        assert grad.item() == 0.0
        assert out.loss.item() == pytest.approx(-advantage * (1.2 if ratio > 1 else 0.8))
    else:
        assert grad.item() == pytest.approx(-advantage * ratio)


def test_micro_batches_with_a_shared_token_count_sum_to_the_full_batch_gradient():
    torch.manual_seed(0)
    base = torch.randn(3, 4)
    old = base + 0.1 * torch.randn(3, 4)
    advantages = torch.tensor([1.0, -0.5, 2.0])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.float32)

    full = base.clone().requires_grad_(True)
    ppo_clip_loss(full, old, advantages, mask).loss.backward()

    parts = base.clone().requires_grad_(True)
    total = mask.sum().item()
    for rows in ([0], [1, 2]):
        ppo_clip_loss(
            parts[rows], old[rows], advantages[rows], mask[rows], token_count=total
        ).loss.backward()
    torch.testing.assert_close(parts.grad, full.grad)


def test_padding_tokens_do_not_contribute():
    logprobs = torch.tensor([[-1.0, -5.0]], requires_grad=True)
    out = ppo_clip_loss(
        logprobs, torch.tensor([[-1.0, 0.0]]), torch.tensor([1.0]), torch.tensor([[1.0, 0.0]])
    )
    (grad,) = torch.autograd.grad(out.loss, logprobs)
    assert grad[0, 1].item() == 0.0


def test_reference_kl_is_zero_at_the_reference_and_positive_elsewhere():
    logprobs = torch.tensor([[-1.0, -2.0]])
    mask = torch.ones(1, 2)
    same = ppo_clip_loss(
        logprobs, logprobs, torch.zeros(1), mask, ref_logprobs=logprobs, kl_coef=0.1
    )
    assert same.ref_kl == pytest.approx(0.0)
    apart = ppo_clip_loss(
        logprobs, logprobs, torch.zeros(1), mask, ref_logprobs=logprobs - 0.5, kl_coef=0.1
    )
    # k3 estimator, delta = -0.5 per token: exp(-0.5) + 0.5 - 1
    assert apart.ref_kl == pytest.approx(float(torch.exp(torch.tensor(-0.5))) - 0.5)


def test_default_options_clip_at_0_2_and_add_no_kl_or_entropy_term():
    logprobs = torch.tensor([[-1.0, -2.0]])
    old = logprobs - torch.tensor([[0.5, -0.5]])  # ratios e^0.5 = 1.65 and e^-0.5 = 0.61
    given = {"ref_logprobs": logprobs - 1.0, "entropy": torch.ones(1, 2)}
    default = ppo_clip_loss(logprobs, old, torch.ones(1), torch.ones(1, 2), **given)
    explicit = ppo_clip_loss(
        logprobs,
        old,
        torch.ones(1),
        torch.ones(1, 2),
        clip_eps=0.2,
        kl_coef=0.0,
        entropy_coef=0.0,
        **given,
    )
    assert default.loss.item() == explicit.loss.item()
    assert default.clip_fraction == 1.0  # both ratios outside [0.8, 1.2]
    # A = 1: min(r, clip(r)) per token, 1.2 and 0.61, negated and averaged
    assert default.loss.item() == pytest.approx(-(1.2 + float(torch.exp(torch.tensor(-0.5)))) / 2)


def test_no_reference_kl_is_computed_or_reported_when_its_coefficient_is_0():
    logprobs = torch.tensor([[-1.0, -2.0]])
    out = ppo_clip_loss(
        logprobs, logprobs, torch.zeros(1), torch.ones(1, 2), ref_logprobs=logprobs - 0.5
    )
    assert out.ref_kl == 0.0


def test_reference_kl_leaves_out_padding_tokens():
    logprobs = torch.tensor([[-1.0, -2.0]])
    out = ppo_clip_loss(
        logprobs,
        logprobs,
        torch.zeros(1),
        torch.tensor([[1.0, 0.0]]),
        ref_logprobs=logprobs - torch.tensor([[0.5, 3.0]]),  # the padding token far off
        kl_coef=0.1,
    )
    assert out.ref_kl == pytest.approx(float(torch.exp(torch.tensor(-0.5))) - 0.5)


def test_weighted_loss_adds_the_reference_kl_with_the_same_token_weights():
    logprobs = torch.tensor([[-1.0, -2.0], [-0.5, 0.0]], requires_grad=True)
    weights = torch.tensor([[0.25, 0.25], [0.5, 0.0]])
    advantages = torch.tensor([2.0, -1.0])
    out = ppo_clip_loss(
        logprobs,
        logprobs.detach(),
        advantages,
        torch.ones(2, 2),
        ref_logprobs=logprobs.detach() - 0.5,
        kl_coef=0.5,
        token_weights=weights,
    )
    k3 = float(torch.exp(torch.tensor(-0.5))) - 0.5  # per token, delta = -0.5 everywhere
    pg = -(0.25 * 2 + 0.25 * 2 + 0.5 * -1.0)
    assert out.loss.item() == pytest.approx(pg + 0.5 * k3 * float(weights.sum()))


def test_weighted_loss_subtracts_the_entropy_bonus_with_the_same_token_weights():
    logprobs = torch.tensor([[-1.0, -2.0], [-0.5, 0.0]], requires_grad=True)
    weights = torch.tensor([[0.25, 0.25], [0.5, 0.0]])
    entropy = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    out = ppo_clip_loss(
        logprobs,
        logprobs.detach(),
        torch.zeros(2),
        torch.ones(2, 2),
        entropy=entropy,
        entropy_coef=0.1,
        token_weights=weights,
    )
    assert out.loss.item() == pytest.approx(-0.1 * (0.25 * 1 + 0.25 * 2 + 0.5 * 3))
    assert out.entropy == pytest.approx(2.5)  # the statistic stays the token mean


def test_a_ratio_exactly_at_the_clip_edge_is_not_counted_as_clipped():
    logprobs = torch.tensor([[-1.0, -2.0]])  # ratio exactly 1, |ratio - 1| = 0 = clip_eps
    out = ppo_clip_loss(logprobs, logprobs, torch.ones(1), torch.ones(1, 2), clip_eps=0.0)
    assert out.clip_fraction == 0.0


def test_the_loss_keeps_the_log_probs_dtype_whatever_the_other_inputs():
    logprobs = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    double = torch.float64
    for weights in (None, torch.tensor([[0.5, 0.5]], dtype=double)):
        out = ppo_clip_loss(
            logprobs,
            logprobs.detach(),
            torch.tensor([1.0], dtype=double),
            torch.ones(1, 2, dtype=double),
            token_weights=weights,
        )
        assert out.loss.dtype == torch.float32


def test_pad_sequences_pads_with_the_value_asked_and_masks_in_the_values_dtype():
    values, mask = pad_sequences([torch.tensor([1, 2]), torch.tensor([3])], pad_value=7)
    assert values.tolist() == [[1, 2], [3, 7]]
    assert mask.dtype == values.dtype == torch.int64
    assert mask.tolist() == [[1, 1], [1, 0]]


def test_pad_sequences_masks_the_padding():
    values, mask = pad_sequences([torch.tensor([1.0, 2.0]), torch.tensor([3.0])])
    assert values.tolist() == [[1.0, 2.0], [3.0, 0.0]]
    assert mask.tolist() == [[1.0, 1.0], [1.0, 0.0]]


def test_micro_batches_group_units_of_similar_length_within_the_turn_budget():
    from creditgym.train.units import TrainSequence, TrainTurn, micro_batches

    def turn(prompt_length: int) -> TrainTurn:
        return TrainTurn([1] * prompt_length, [2], [-0.1], 1.0, None)

    turns = [turn(n) for n in (9, 1, 5, 2)]
    batches = micro_batches(turns, micro_batch_turns=2)
    assert [[len(t.prompt_ids) for t in batch] for batch in batches] == [[1, 2], [5, 9]]

    # a conversation counts one turn per response span, and is never split
    sequence = TrainSequence([1] * 6, [(1, 2), (3, 4), (5, 6)], [[0.0]] * 3, [1.0] * 3, [None] * 3)
    batches = micro_batches([sequence, turn(20)], micro_batch_turns=2)
    assert [len(batch) for batch in batches] == [1, 1] and batches[0][0] is sequence


def test_micro_batches_sort_turns_by_their_prompt_and_response_tokens():
    from creditgym.train.units import TrainTurn, micro_batches

    def turn(prompt_length: int, response_length: int) -> TrainTurn:
        return TrainTurn(
            [1] * prompt_length, [2] * response_length, [-0.1] * response_length, 1.0, None
        )

    turns = [turn(5, 1), turn(2, 8), turn(3, 1)]  # 6, 10 and 4 tokens
    batches = micro_batches(turns, micro_batch_turns=2)
    assert [[len(t.prompt_ids) + len(t.response_ids) for t in b] for b in batches] == [[4, 6], [10]]


def test_turn_advantages_are_each_turns_own_or_the_mean_of_its_tokens():
    """As the update diagnostics correlate them with each turn's log-prob change; a turn
    without tokens counts 0 (not nan)."""
    from creditgym.train.units import TrainSequence, TrainTurn, turn_advantages

    sequence = TrainSequence(
        [1] * 6, [(1, 3), (3, 3), (4, 6)], [[0.0] * 2, [], [0.0] * 2], [7.0, 5.0, 3.0], [None] * 3
    )
    assert turn_advantages(sequence) == [7.0, 5.0, 3.0]
    sequence.token_advantages = [[1.0, 3.0], [], [-1.0, 0.0]]
    assert turn_advantages(sequence) == [2.0, 0.0, -0.5]

    turn = TrainTurn([1], [2, 3], [0.0, 0.0], 7.0, None)
    assert turn_advantages(turn) == [7.0]
    turn.token_advantages = [1.0, 4.0]
    assert turn_advantages(turn) == [2.5]
    turn.token_advantages = []
    assert turn_advantages(turn) == [0.0]


# ---- loss aggregation (train.loss_agg): each token's weight, worked by hand ----
# Three turns: A (episode 0) 2 free tokens; B (episode 0) 4 tokens of which 2 forced; C
# (episode 1) 1 free token; D (episode 1) 2 tokens, all forced.
COUNTED_WITHOUT_FORCED = [[True, True], [True, False, True, False], [True], [False, False]]
EPISODES = [0, 0, 1, 1]
ALL_COUNTED = [[True] * len(row) for row in COUNTED_WITHOUT_FORCED]


def _weights(mode, counted, norm_tokens=1):
    from creditgym.train.losses import aggregation_weights, batch_counts

    totals = batch_counts(counted, EPISODES)
    return aggregation_weights(mode, counted, EPISODES, totals, norm_tokens=norm_tokens)


def test_batch_counts_leave_out_forced_tokens_and_turns_with_none_free():
    from creditgym.train.losses import BatchCounts, batch_counts

    assert batch_counts(COUNTED_WITHOUT_FORCED, EPISODES) == BatchCounts(5.0, 3.0, 2.0)
    assert batch_counts(ALL_COUNTED, EPISODES) == BatchCounts(9.0, 4.0, 2.0)


@pytest.mark.parametrize(
    "mode, expected",
    [
        # DAPO: 5 free tokens, each 1/5
        ("token_mean", [[1 / 5] * 2, [1 / 5, 0, 1 / 5, 0], [1 / 5], [0, 0]]),
        # GRPO: 3 responses with free tokens; 1/(3 x the response's free tokens)
        ("seq_mean_token_mean", [[1 / 6] * 2, [1 / 6, 0, 1 / 6, 0], [1 / 3], [0, 0]]),
        # Dr. GRPO: 1/(3 responses x the constant 4)
        ("seq_mean_token_sum_norm", [[1 / 12] * 2, [1 / 12, 0, 1 / 12, 0], [1 / 12], [0, 0]]),
        # per episode: episode 0 has 4 free tokens, episode 1 one; each episode weighs 1/2
        ("episode_mean", [[1 / 8] * 2, [1 / 8, 0, 1 / 8, 0], [1 / 2], [0, 0]]),
    ],
)
def test_each_aggregation_weighs_free_tokens_as_its_paper_does(mode, expected):
    weights = _weights(mode, COUNTED_WITHOUT_FORCED, norm_tokens=4)
    for row, want in zip(weights, expected):
        assert row == pytest.approx(want)


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("token_mean", [[1 / 9] * 2, [1 / 9] * 4, [1 / 9], [1 / 9] * 2]),
        ("seq_mean_token_mean", [[1 / 8] * 2, [1 / 16] * 4, [1 / 4], [1 / 8] * 2]),
        ("episode_mean", [[1 / 12] * 2, [1 / 12] * 4, [1 / 6], [1 / 6] * 2]),
    ],
)
def test_counting_forced_tokens_puts_them_back_in_every_denominator(mode, expected):
    for row, want in zip(_weights(mode, ALL_COUNTED), expected):
        assert row == pytest.approx(want)


def test_an_unknown_aggregation_names_the_choices():
    with pytest.raises(ValueError, match="token_mean, seq_mean_token_mean"):
        _weights("sequence_mean", ALL_COUNTED)


def test_weighted_loss_at_ratio_one_is_minus_the_weighted_advantage_sum():
    logprobs = torch.tensor([[-1.0, -2.0], [-0.5, 0.0]], requires_grad=True)
    weights = torch.tensor([[0.25, 0.25], [0.5, 0.0]])
    advantages = torch.tensor([2.0, -1.0])
    out = ppo_clip_loss(
        logprobs, logprobs.detach(), advantages, torch.ones(2, 2), token_weights=weights
    )
    assert out.loss.item() == pytest.approx(-(0.25 * 2 + 0.25 * 2 + 0.5 * -1.0))
    (grad,) = torch.autograd.grad(out.loss, logprobs)
    torch.testing.assert_close(grad, torch.tensor([[-0.5, -0.5], [0.5, 0.0]]))


def test_a_turn_with_no_free_token_weighs_nothing_and_the_turns_after_it_still_do():
    from creditgym.train.losses import aggregation_weights, batch_counts

    counted, episodes = [[True], [False, False], [True, True]], [0, 0, 1]
    weights = aggregation_weights("token_mean", counted, episodes, batch_counts(counted, episodes))
    assert weights == [[1 / 3], [0.0, 0.0], [1 / 3, 1 / 3]]


def test_dr_grpos_constant_defaults_to_one_token():
    from creditgym.train.losses import aggregation_weights, batch_counts

    counted, episodes = [[True, True], [True]], [0, 1]
    totals = batch_counts(counted, episodes)
    assert aggregation_weights("seq_mean_token_sum_norm", counted, episodes, totals) == [
        [1 / 2, 1 / 2],
        [1 / 2],
    ]


# ---- which tokens count (units.counted_rows, free_tokens) and a mini-batch's weights ----


def _turn(forced, episode, advantage=1.0):
    from creditgym.train.units import TrainTurn

    n = len(forced)
    return TrainTurn(
        prompt_ids=[1, 2],
        response_ids=list(range(3, 3 + n)),
        old_logprobs=[-0.5] * n,
        advantage=advantage,
        admissible_actions=None,
        episode=episode,
        forced=forced,
    )


def test_counted_rows_follow_each_turns_own_span_of_forced_marks():
    from creditgym.train.units import TrainSequence, counted_rows, free_tokens

    # three turns of 2, 3 and 1 response tokens; forced marks run over all of them in order
    sequence = TrainSequence(
        ids=list(range(12)),
        spans=[(2, 4), (6, 9), (11, 12)],
        old_logprobs=[[-1.0] * 2, [-1.0] * 3, [-1.0]],
        advantages=[1.0, 1.0, 1.0],
        admissible_actions=[None, None, None],
        forced=[False, True, True, False, False, True],
    )
    assert counted_rows(sequence, count_forced=False) == [
        [True, False],
        [False, True, True],
        [False],
    ]
    assert counted_rows(sequence, count_forced=True) == [[True] * 2, [True] * 3, [True]]
    assert free_tokens(sequence) == 3.0
    sequence.forced = None  # unknown: every token counts
    assert counted_rows(sequence, count_forced=False) == [[True] * 2, [True] * 3, [True]]
    assert free_tokens(sequence) == 6.0
    turn = _turn([True, False, False], episode=0)
    assert counted_rows(turn, count_forced=False) == [[False, True, True]]
    assert free_tokens(turn) == 2.0


class _TwoEqualRanks:
    """Another rank holds a mini-batch like this one: every count doubles."""

    def sum(self, value):
        return 2 * value


# the four turns of COUNTED_WITHOUT_FORCED above, as units with forced marks
FORCED_BATCH = [
    ([False, False], 0),
    ([False, True, False, True], 0),
    ([False], 1),
    ([True, True], 1),
]


@pytest.mark.parametrize(
    "mode, norm_tokens, expected",
    [
        # 2 ranks: 6 responses with free tokens, 10 free tokens, 4 episodes
        ("seq_mean_token_mean", 1, [[1 / 12] * 2, [1 / 12, 0, 1 / 12, 0], [1 / 6], [0, 0]]),
        ("seq_mean_token_sum_norm", 4, [[1 / 24] * 2, [1 / 24, 0, 1 / 24, 0], [1 / 24], [0, 0]]),
        ("token_mean", 1, [[1 / 10] * 2, [1 / 10, 0, 1 / 10, 0], [1 / 10], [0, 0]]),
    ],
)
def test_a_mini_batchs_weights_count_free_tokens_over_every_rank(mode, norm_tokens, expected):
    from creditgym.train.update import _mini_batch_weights

    batch = [_turn(forced, episode) for forced, episode in FORCED_BATCH]
    tokens, weights, counted = _mini_batch_weights(
        batch, mode, count_forced=False, norm_tokens=norm_tokens, distributed=_TwoEqualRanks()
    )
    assert tokens == 10.0
    for unit, want in zip(batch, expected):
        assert weights[id(unit)] == pytest.approx(want)
    assert [counted[id(unit)] for unit in batch] == [
        [1.0, 1.0],
        [1.0, 0.0, 1.0, 0.0],
        [1.0],
        [0.0, 0.0],
    ]
    tokens, weights, _ = _mini_batch_weights(
        batch, mode, count_forced=True, norm_tokens=norm_tokens, distributed=_TwoEqualRanks()
    )
    assert tokens == 18.0 and weights[id(batch[3])] != [0, 0]


def test_a_mini_batch_with_every_token_forced_has_nothing_to_weigh():
    from creditgym.train.distributed import ALONE
    from creditgym.train.update import _mini_batch_weights

    batch = [_turn([True, True], 0), _turn([True], 1)]
    assert _mini_batch_weights(batch, "token_mean", False, 1, ALONE) == (0.0, {}, {})


def test_a_conversations_turns_each_count_as_a_response_of_its_episode():
    from creditgym.train.distributed import ALONE
    from creditgym.train.units import TrainSequence
    from creditgym.train.update import _mini_batch_weights

    conversation = TrainSequence(
        ids=list(range(8)),
        spans=[(2, 4), (6, 8)],
        old_logprobs=[[-1.0] * 2, [-1.0] * 2],
        advantages=[1.0, 1.0],
        admissible_actions=[None, None],
        episode=0,
    )
    batch = [conversation, _turn([False], episode=1)]
    tokens, weights, _ = _mini_batch_weights(batch, "seq_mean_token_mean", False, 1, ALONE)
    # three responses (two in the conversation), each weighing 1/3 over its own tokens
    assert tokens == 5.0
    assert weights[id(conversation)] == pytest.approx([1 / 6] * 4)
    assert weights[id(batch[1])] == pytest.approx([1 / 3])

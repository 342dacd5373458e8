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


def test_pad_sequences_masks_the_padding():
    values, mask = pad_sequences([torch.tensor([1.0, 2.0]), torch.tensor([3.0])])
    assert values.tolist() == [[1.0, 2.0], [3.0, 0.0]]
    assert mask.tolist() == [[1.0, 1.0], [1.0, 0.0]]


def test_micro_batches_group_units_of_similar_length_within_the_turn_budget():
    from creditgym.train.update import TrainSequence, TrainTurn, _micro_batches

    def turn(prompt_length: int) -> TrainTurn:
        return TrainTurn([1] * prompt_length, [2], [-0.1], 1.0, None)

    turns = [turn(n) for n in (9, 1, 5, 2)]
    batches = _micro_batches(turns, micro_batch_turns=2)
    assert [[len(t.prompt_ids) for t in batch] for batch in batches] == [[1, 2], [5, 9]]

    # a conversation counts one turn per response span, and is never split
    sequence = TrainSequence([1] * 6, [(1, 2), (3, 4), (5, 6)], [[0.0]] * 3, [1.0] * 3, [None] * 3)
    batches = _micro_batches([sequence, turn(20)], micro_batch_turns=2)
    assert [len(batch) for batch in batches] == [1, 1] and batches[0][0] is sequence

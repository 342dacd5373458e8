"""The trust-region options of the PPO update: today's defaults take today's steps bit for bit,
`target_kl` stops the epochs, forced tokens are found, and the diagnostics say how far the
policy moved and in which direction."""

import _update_before_trust_region as before
import numpy as np
import pytest
import torch
from conftest import TINY

from creditgym.config import load_config
from creditgym.train.models import build_policy
from creditgym.train.update import (
    TrainSequence,
    TrainTurn,
    mark_forced_tokens,
    ppo_update,
)
from creditgym.train.update_diagnostics import update_diagnostics

pytestmark = pytest.mark.usefixtures("one_thread")

ACTIONS = ["go to sofa 1", "go to desk 1", "open drawer 2", "take apple 1 from table 1"]


@pytest.fixture(scope="module")
def config():
    return load_config(None, [*TINY, "run.device=cpu"])


def _policy(config):
    torch.manual_seed(0)
    return build_policy(config)


def _turns(policy, *, behaviour: bool) -> list[TrainTurn]:
    """16 turns of admissible actions; with `behaviour` their old log-probs are the policy's
    own (ratio 1 before any step), else a fixed -2 per token."""
    rng = np.random.default_rng(0)
    turns = []
    for k in range(16):
        action = ACTIONS[k % len(ACTIONS)]
        response = policy.encode_response(action)
        turns.append(
            TrainTurn(
                prompt_ids=rng.integers(3, 200, size=10).tolist(),
                response_ids=response,
                old_logprobs=[-2.0] * len(response),
                advantage=0.0 if k % 5 == 0 else float(rng.normal()),
                admissible_actions=list(ACTIONS),
                episode=k // 4,
            )
        )
    if behaviour:
        with torch.no_grad():
            scored, _ = policy.score(
                [t.prompt_ids for t in turns],
                [t.response_ids for t in turns],
                [t.admissible_actions for t in turns],
            )
        for turn, values in zip(turns, scored):
            turn.old_logprobs = values.tolist()
    return turns


def _weights(policy) -> list[torch.Tensor]:
    return [p.detach().clone() for p in policy.model.parameters()]


def _update(config, update, **options):
    """A policy after `update` (2 epochs x 3 mini-batches, micro-batches of 4 turns)."""
    policy = _policy(config)
    optimizer = torch.optim.AdamW(policy.model.parameters(), lr=1e-2)
    turns = _turns(policy, behaviour=False)
    stats = update(
        policy,
        optimizer,
        turns,
        ppo_epochs=2,
        mini_batches=3,
        micro_batch_turns=4,
        rng=np.random.default_rng(3),
        **options,
    )
    return policy, turns, stats


def test_default_options_take_the_steps_the_update_took_before_them(config):
    old_policy, _, old_stats = _update(config, before.ppo_update)
    new_policy, turns, new_stats = _update(config, ppo_update)
    weights = _weights(new_policy)
    update_diagnostics(new_policy, turns, 4)  # scores only: moves nothing
    for old, new, after in zip(_weights(old_policy), weights, _weights(new_policy)):
        assert torch.equal(old, new)
        assert torch.equal(new, after)
    assert new_stats["update/steps"] == old_stats["update/steps"] == 6
    for name, value in old_stats.items():
        assert new_stats[name] == pytest.approx(value, rel=1e-6, abs=1e-9)
    assert new_stats["update/stopped_step"] == 0


def test_another_aggregation_takes_other_steps(config):
    # the yardstick above can fail: the same update with another denominator differs
    old_policy, _, _ = _update(config, before.ppo_update)
    new_policy, _, _ = _update(config, ppo_update, loss_agg="episode_mean")
    assert not all(torch.equal(a, b) for a, b in zip(_weights(old_policy), _weights(new_policy)))


def test_target_kl_stops_before_the_step_of_the_first_mini_batch_past_it(config):
    policy = _policy(config)
    turns = _turns(policy, behaviour=True)
    optimizer = torch.optim.AdamW(policy.model.parameters(), lr=1e-2)
    stats = ppo_update(
        policy, optimizer, turns, ppo_epochs=4, mini_batches=2, target_kl=1e-6, max_grad_norm=1e9
    )
    # the first mini-batch sees the behaviour policy itself (KL 0) and steps; the second sees
    # the moved policy and stops before its step
    assert stats["update/steps"] == 1
    assert (stats["update/stopped_epoch"], stats["update/stopped_step"]) == (1, 2)
    assert stats["update/epochs"] == 1
    # the KL checked is the second mini-batch's (ppo_update's default rng: seed 0), over the
    # turns it trains (advantage != 0) and only their tokens the constraint did not force
    second = np.array_split(np.random.default_rng(0).permutation(len(turns)), 2)[1]
    trained = [turns[i] for i in second if turns[i].advantage != 0.0]
    mark_forced_tokens(policy, trained)
    with torch.no_grad():
        scored, _ = policy.score(
            [t.prompt_ids for t in trained],
            [t.response_ids for t in trained],
            [t.admissible_actions for t in trained],
        )
    k3, free = 0.0, 0
    for turn, new in zip(trained, scored):
        log_ratio = new.double() - torch.tensor(turn.old_logprobs, dtype=torch.float64)
        keep = ~torch.tensor(turn.forced)
        k3 += float(((log_ratio.exp() - 1) - log_ratio)[keep].sum())
        free += int(keep.sum())
    assert stats["update/checked_kl"] == pytest.approx(k3 / free, rel=1e-3)


def test_without_target_kl_every_epoch_and_mini_batch_steps(config):
    policy = _policy(config)
    turns = _turns(policy, behaviour=True)
    optimizer = torch.optim.AdamW(policy.model.parameters(), lr=1e-2)
    stats = ppo_update(policy, optimizer, turns, ppo_epochs=4, mini_batches=2)
    assert (stats["update/steps"], stats["update/epochs"], stats["update/stopped_step"]) == (
        8,
        4,
        0,
    )


def test_forced_tokens_are_those_with_one_allowed_continuation(config):
    policy = _policy(config)
    sofa, desk = policy.encode_response("go to sofa 1"), policy.encode_response("go to desk 1")
    split = next(t for t, (a, b) in enumerate(zip(sofa, desk)) if a != b)
    (forced,) = policy.forced_tokens([sofa], [ACTIONS])
    # free: the first token (go / open / take) and where sofa and desk part; forced: the
    # rest of "go to" (only "go" actions start so) and, after the parting, "sofa 1" and EOS
    assert forced == [t not in (0, split) for t in range(len(sofa))]
    (free,) = policy.forced_tokens([sofa], None)  # unconstrained: nothing is forced
    assert free == [False] * len(sofa)


def test_mark_forced_tokens_follows_the_constraint_the_update_scores_under(config):
    policy = _policy(config)
    turns = _turns(policy, behaviour=False)
    mark_forced_tokens(policy, turns)
    assert all(len(t.forced) == len(t.response_ids) for t in turns)
    assert all(t.forced[-1] for t in turns)  # EOS after a whole action: the only way on
    turns[0].admissible_actions = None  # one turn unconstrained: the update scores all free
    mark_forced_tokens(policy, turns)
    assert not any(f for t in turns for f in t.forced)


def test_diagnostics_see_no_move_without_a_step_and_a_move_along_the_advantages(config):
    policy = _policy(config)
    turns = _turns(policy, behaviour=True)
    still = update_diagnostics(policy, turns, 4)
    assert still["update/kl_after"] == 0.0
    assert still["update/ratio_std"] == 0.0
    assert still["update/ratio_min"] == still["update/ratio_max"] == 1.0
    assert still["update/logprob_change_corr"] == 0.0  # nothing moved: no direction
    assert 0.0 < still["update/forced_token_share"] < 1.0

    optimizer = torch.optim.AdamW(policy.model.parameters(), lr=3e-3)
    ppo_update(policy, optimizer, turns, ppo_epochs=3, mini_batches=2, max_grad_norm=1e9)
    moved = update_diagnostics(policy, turns, 4)
    assert moved["update/kl_after"] > 0.0
    assert moved["update/ratio_p05"] < 1.0 < moved["update/ratio_p95"]
    assert moved["update/ratio_min"] <= moved["update/ratio_p05"]
    assert moved["update/logprob_change_corr"] > 0.5  # actions moved the way advantages asked
    assert moved["update/logprob_change_abs_mean"] > 0.0


def test_diagnostics_measure_the_turns_the_update_trained_on(config):
    policy = _policy(config)
    turns = _turns(policy, behaviour=False)  # old log-probs -2: every ratio differs from 1
    trained = [t for t in turns if t.advantage != 0.0]
    assert 0 < len(trained) < len(turns)
    assert update_diagnostics(policy, turns, 4) == update_diagnostics(policy, trained, 4)
    for turn in trained:
        turn.advantage = 0.0
    assert update_diagnostics(policy, turns, 4) == {}  # nothing trained: nothing to measure


def test_a_conversation_marks_each_turns_forced_tokens_under_its_own_actions(config):
    policy = _policy(config)
    sofa, drawer = policy.encode_response("go to sofa 1"), policy.encode_response("open drawer 2")
    ids = [5, 6, 7, *sofa, 8, 9, *drawer]
    spans = [(3, 3 + len(sofa)), (5 + len(sofa), len(ids))]
    few = ["go to sofa 1", "open drawer 2"]  # the second turn has other actions than the first
    sequence = TrainSequence(ids, spans, [[0.0] * len(sofa), [0.0] * len(drawer)], [1.0, -1.0],
                             [list(ACTIONS), few])  # fmt: skip
    mark_forced_tokens(policy, [sequence])
    expected = policy.forced_tokens([sofa], [ACTIONS])[0] + policy.forced_tokens([drawer], [few])[0]
    assert sequence.forced == expected
    assert sequence.forced[len(sofa)] is False  # "open" vs "go": the turn's first choice

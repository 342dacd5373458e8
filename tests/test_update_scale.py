"""Under AdamW a constant scale on every advantage leaves the update as it was: Adam divides
each parameter's step by the running RMS of its gradients. So an estimator whose advantages
are half another's takes the same steps, not smaller ones; only their direction differs."""

import numpy as np
import pytest
import torch
from conftest import TINY

from creditgym.config import load_config
from creditgym.train.models import build_policy
from creditgym.train.update import TrainTurn, ppo_update

pytestmark = pytest.mark.usefixtures("one_thread")

OVERRIDES = [*TINY, "run.device=cpu", "policy.constrained=false"]


def _turns(vocab: int, scale: float) -> list[TrainTurn]:
    rng = np.random.default_rng(0)
    return [
        TrainTurn(
            prompt_ids=rng.integers(3, vocab, size=12).tolist(),
            response_ids=rng.integers(3, vocab, size=4).tolist(),
            old_logprobs=[-6.0] * 4,
            advantage=scale * float(rng.normal()),
            admissible_actions=None,
        )
        for _ in range(16)
    ]


def _weight_change(
    scale: float, optimizer_class=torch.optim.AdamW, epochs: int = 3
) -> torch.Tensor:
    """The weights' change over an update of 16 turns with every advantage times `scale`
    (no gradient clipping: clipping rescales some steps and not others)."""
    torch.manual_seed(0)
    policy = build_policy(load_config(None, OVERRIDES))
    parameters = [p for p in policy.model.parameters() if p.requires_grad]
    before = torch.cat([p.detach().flatten().clone() for p in parameters])
    optimizer = optimizer_class(parameters, lr=1e-3)
    turns = _turns(policy.model.config.vocab_size, scale)
    ppo_update(
        policy,
        optimizer,
        turns,
        ppo_epochs=epochs,
        mini_batches=2,
        clip_eps=10.0,
        max_grad_norm=1e9,
    )
    return torch.cat([p.detach().flatten() for p in parameters]) - before


def test_halving_every_advantage_leaves_adams_steps_as_they_were():
    full, half = _weight_change(1.0), _weight_change(0.5)
    assert full.abs().max() > 1e-4  # the update moved the weights
    # the same size and direction; only weights whose gradients are near Adam's epsilon (1e-8)
    # differ, which is what "up to epsilon" means
    assert float(half.norm() / full.norm()) == pytest.approx(1.0, abs=1e-3)
    assert float(torch.nn.functional.cosine_similarity(half, full, dim=0)) > 0.999
    differ = (half - full).abs() > 1e-2 * full.abs() + 1e-7
    assert float(differ.float().mean()) < 0.02


def test_under_plain_sgd_the_same_halving_halves_the_first_step():
    full = _weight_change(1.0, torch.optim.SGD, epochs=1)
    half = _weight_change(0.5, torch.optim.SGD, epochs=1)
    assert full.abs().max() > 0
    torch.testing.assert_close(half, 0.5 * full, rtol=1e-3, atol=1e-6)  # float32 weights

"""Run by test_distributed.py under torchrun: two PPO updates, each rank on its share of a batch.

    torchrun --standalone --nproc-per-node N tests/_ddp_update.py OUT.pt

Every rank builds the same tiny policy and the same global batches of turns; `ppo_update` gets
this rank's shard. Rank 0 saves the final weights to OUT.pt, which must not depend on N.
"""

import sys

import numpy as np
import torch

from creditgym.agents.hf.policy import HFPolicy
from creditgym.agents.hf.tiny import build_tiny_model
from creditgym.agents.hf.tokenizer import fit_tokenizer
from creditgym.train.distributed import setup, shard, shutdown
from creditgym.train.update import TrainTurn, ppo_update

CORPUS = ["go to the fridge", "take apple 1 from the countertop", "put the mug in the cabinet"]


def global_batch(policy: HFPolicy, rng: np.random.Generator, turns: int = 12) -> list[TrainTurn]:
    """Random token turns; behaviour log-probs a little off the current policy's (so ratios
    clip)."""
    vocab = policy.model.config.vocab_size
    prompts = [rng.integers(3, vocab, size=rng.integers(3, 9)).tolist() for _ in range(turns)]
    responses = [rng.integers(3, vocab, size=rng.integers(1, 5)).tolist() for _ in range(turns)]
    with torch.no_grad():
        current, _ = policy.score(prompts, responses)
    advantages = rng.normal(size=turns) * (rng.random(turns) > 0.25)  # some exact zeros
    return [
        TrainTurn(p, r, (lp.numpy() + rng.normal(scale=0.3, size=len(r))).tolist(), float(a), None)
        for p, r, lp, a in zip(prompts, responses, current, advantages)
    ]


def main(out: str) -> None:
    distributed = setup()
    tokenizer = fit_tokenizer(CORPUS, vocab_size=300)
    policy = HFPolicy(
        build_tiny_model(tokenizer, hidden_size=32, num_layers=1, num_heads=2, seed=0), tokenizer
    )
    optimizer = torch.optim.AdamW(policy.model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    for _ in range(2):  # two iterations, each on a fresh global batch
        turns = global_batch(policy, rng)
        stats = ppo_update(
            policy,
            optimizer,
            shard(turns, distributed),
            micro_batch_turns=2,
            distributed=distributed,
        )
    if distributed.is_main:
        torch.save({"weights": policy.model.state_dict(), "stats": stats}, out)
    shutdown()


if __name__ == "__main__":
    main(sys.argv[1])

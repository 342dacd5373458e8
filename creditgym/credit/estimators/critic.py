"""Critics for the ``ppo`` estimator: V(s_t) of every turn's state, trained on the batch.

The state of a turn is its prompt (``turn.prompt_ids``: what the policy saw when it decided).
Two kinds, picked by the estimator's ``critic`` option:

* ``model`` (`TokenBagCritic`): a separate small value model that needs nothing from the policy.
  The prompt's token ids and adjacent-id pairs are hashed into a fixed table of embeddings,
  averaged over the whole prompt and over its last `TAIL` tokens (the newest observation,
  which a long conversation prompt would otherwise drown), and an MLP maps the two means to a
  value. Where a turn records no token ids (scripted policies), the UTF-8 bytes of its prompt
  text stand in for them, so it works with every policy.
* ``head`` (`HeadCritic`): a value head (an MLP) on the policy's final hidden state at the
  prompt's last token, read through `HiddenStateScorer.hidden_states` (``HFPolicy`` has it).
  The features are detached: the head trains on them, but the trunk is the policy's and is
  trained by the policy loss only. That is cheaper than verl's separate critic LM (one extra
  forward pass over the prompts, one per episode in conversation mode; no second model), and
  weaker: the trunk never learns features for value prediction, and they drift as the policy
  trains.

Both start at V = 0 (a zero output layer) and train on CPU with Adam, on the whole batch at
once, with PPO's clipped value loss (`clipped_value_loss`); their weights and optimizer state
go into checkpoints.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from creditgym.credit.context import CreditContext
from creditgym.trajectory import Turn

__all__ = [
    "HiddenStateScorer",
    "clipped_value_loss",
    "Critic",
    "TokenBagCritic",
    "HeadCritic",
    "CRITICS",
    "make_critic",
]

TAIL = 64  # tokens of the prompt's end averaged on their own by the token-bag critic
BUCKETS = 8192  # rows of the token-bag critic's hashed embedding table
# Prompt-text bytes (a turn without token ids) are hashed apart from real token ids: byte b
# lands where token id b + offset would, not where b does. (A multiple of BUCKETS, such as
# the 2**24 this was, would land every byte and byte pair on the same row as that id.)
_BYTE_OFFSET = BUCKETS // 2 + 1


@runtime_checkable
class HiddenStateScorer(Protocol):
    """A policy that exposes its final hidden state at each prompt's last token."""

    def hidden_states(
        self, prompt_ids: list[list[int]], *, positions: list[list[int]] | None = None
    ) -> torch.Tensor:
        """(len(prompt_ids), hidden size) float tensor, without grad: each prompt's last token;
        with `positions`, one row per listed position of each sequence, sequences in order."""
        ...


def clipped_value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip: float
) -> torch.Tensor:
    """PPO's clipped value loss, as verl's ``compute_value_loss`` (token-mean over turns here):

        0.5 * mean( max( (V - R)^2, (clip(V, V_old - clip, V_old + clip) - R)^2 ) )

    The max keeps the larger error, so the critic gains nothing by moving V more than `clip`
    away from the values the advantages were computed with. All tensors are (turns,).
    """
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    return 0.5 * torch.maximum((values - returns) ** 2, (clipped - returns) ** 2).mean()


def _mlp(inputs: int, hidden: int) -> nn.Sequential:
    """inputs -> hidden -> value, the output layer zero: an untrained critic says V = 0
    everywhere (then A_t is the plain discounted return-to-go), not noise from its init."""
    out = nn.Linear(hidden, 1)
    nn.init.zeros_(out.weight)
    nn.init.zeros_(out.bias)
    return nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), out)


class Critic:
    """A value function over turns, trained online; subclasses say what a turn's input is.

    Args:
        seed: seeds the network's initialisation (global RNG untouched).
        lr: Adam's learning rate.
        hidden: the MLP's hidden width.
    """

    kind = ""

    def __init__(self, seed: int = 0, lr: float = 1e-3, hidden: int = 64) -> None:
        self.seed = seed
        self.lr = lr
        self.hidden = hidden
        self.input_size = 0
        self.network: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None

    # ---- what subclasses define -------------------------------------------------------------

    def encode(self, episodes: Sequence[Sequence[Turn]], context: CreditContext) -> Any:
        """The network's input for every turn of these episodes' turns, in order (computed once
        per call)."""
        raise NotImplementedError

    def _input_size(self, inputs: Any) -> int:
        """The width the network is built for, read off the first batch's inputs."""
        raise NotImplementedError

    def _new_network(self, input_size: int) -> nn.Module:
        raise NotImplementedError

    # ---- shared -----------------------------------------------------------------------------

    def _build(self, input_size: int) -> None:
        self.input_size = input_size
        with torch.random.fork_rng():  # seed the init without touching the run's global RNG
            torch.manual_seed(self.seed)
            self.network = self._new_network(input_size)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=self.lr)

    def values(self, inputs: Any) -> torch.Tensor:
        """V(s) of each encoded turn, (turns,) float32; differentiable."""
        if self.network is None:
            self._build(self._input_size(inputs))
        elif self._input_size(inputs) != self.input_size:
            raise ValueError(
                f"the {self.kind} critic was built for inputs of size {self.input_size}, "
                f"but now gets size {self._input_size(inputs)}"
            )
        return self.network(*inputs).squeeze(-1)

    def set_lr(self, lr: float) -> None:
        """Adam's learning rate from now on (the configured one; it may differ on resume)."""
        self.lr = lr
        if self.optimizer is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = lr

    def fit(
        self,
        inputs: Any,
        old_values: torch.Tensor,
        returns: torch.Tensor,
        *,
        epochs: int,
        clip: float,
    ) -> list[float]:
        """`epochs` full-batch Adam steps on the clipped value loss; the loss before each."""
        losses = []
        for _ in range(epochs):
            loss = clipped_value_loss(self.values(inputs), old_values, returns, clip)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            losses.append(loss.item())
        return losses

    def state_dict(self) -> dict[str, Any]:
        """Weights and optimizer state ({} before the first batch), for checkpoints."""
        if self.network is None:
            return {}
        return {
            "kind": self.kind,
            "input_size": self.input_size,
            "lr": self.lr,
            "hidden": self.hidden,
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()`'s output, so the next call computes what it would have."""
        if not state:
            return
        state = copy.deepcopy(state)  # Adam would otherwise share its moments with the source
        if state["kind"] != self.kind:
            raise ValueError(
                f"the checkpoint holds a {state['kind']!r} critic, but this run configures "
                f"critic={self.kind!r}; resume with the same critic or start a new run"
            )
        self.lr, self.hidden = state["lr"], state["hidden"]
        self._build(state["input_size"])
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])


class _BagValue(nn.Module):
    """Mean hashed embedding of the whole prompt and of its tail -> MLP -> value."""

    def __init__(self, buckets: int, dim: int, hidden: int) -> None:
        super().__init__()
        # a bag's distinct keys weighted by their share of it: the mean, with fewer rows
        self.embedding = nn.EmbeddingBag(buckets, dim, mode="sum")
        self.mlp = _mlp(2 * dim, hidden)

    def forward(  # a (keys, offsets, weights) bag per turn for the whole and the tail
        self, *bags: torch.Tensor
    ) -> torch.Tensor:  # (turns, 1)
        whole, end = (
            self.embedding(keys, offsets, per_sample_weights=weights)
            for keys, offsets, weights in (bags[:3], bags[3:])
        )
        return self.mlp(torch.cat([whole, end], dim=-1))


def _token_ids(turn: Turn) -> np.ndarray:
    if turn.prompt_ids:
        return np.asarray(turn.prompt_ids, dtype=np.int64)
    text = turn.prompt or turn.observation
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64) + _BYTE_OFFSET


def _hashed_keys(ids: np.ndarray, buckets: int) -> np.ndarray:
    """Unigram ids and adjacent-id pairs, hashed into `buckets` rows."""
    pairs = ids[:-1] * 1_000_003 + ids[1:] * 7_919 + 104_729
    return np.concatenate([ids, pairs]) % buckets


def _bags(rows: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """EmbeddingBag inputs for one bag per row: distinct keys, offsets, each key's share."""
    keys, shares = [], []
    for row in rows:
        distinct, counts = np.unique(row, return_counts=True)
        keys.append(distinct)
        shares.append(counts / max(len(row), 1))
    offsets = np.cumsum([0] + [len(k) for k in keys[:-1]])
    return (
        torch.as_tensor(np.concatenate(keys) if keys else np.zeros(0), dtype=torch.long),
        torch.as_tensor(offsets, dtype=torch.long),
        torch.as_tensor(np.concatenate(shares) if shares else np.zeros(0), dtype=torch.float32),
    )


class TokenBagCritic(Critic):
    """``critic: model``: a separate value model over the prompt's hashed token ids."""

    kind = "model"
    dim = 32

    def encode(
        self, episodes: Sequence[Sequence[Turn]], context: CreditContext
    ) -> tuple[torch.Tensor, ...]:
        ids = [_token_ids(turn) for turns in episodes for turn in turns]
        whole = _bags([_hashed_keys(row, BUCKETS) for row in ids])
        tail = _bags([_hashed_keys(row[-TAIL:], BUCKETS) for row in ids])
        return (*whole, *tail)

    def _new_network(self, input_size: int) -> nn.Module:
        return _BagValue(input_size, self.dim, self.hidden)

    def _input_size(self, inputs: Any) -> int:
        return BUCKETS


class HeadCritic(Critic):
    """``critic: head``: an MLP on the policy's detached final hidden state (see module doc)."""

    kind = "head"

    def encode(
        self, episodes: Sequence[Sequence[Turn]], context: CreditContext
    ) -> tuple[torch.Tensor]:
        policy = self._policy(context)
        if any(not turn.prompt_ids for turns in episodes for turn in turns):
            raise ValueError(
                "ppo with critic: head needs every turn's prompt token ids (turn.prompt_ids), "
                "and some turn has none; use critic: model"
            )
        sequences, positions = [], []
        for turns in episodes:
            prompts = [list(turn.prompt_ids) for turn in turns]
            if prompts and all(p == prompts[-1][: len(p)] for p in prompts):
                # a conversation: every turn's prompt is a prefix of the last; one pass
                sequences.append(prompts[-1])
                positions.append([len(p) - 1 for p in prompts])
            else:
                sequences += prompts
                positions += [[len(p) - 1] for p in prompts]
        features = policy.hidden_states(sequences, positions=positions)
        return (torch.as_tensor(features, dtype=torch.float32).detach().cpu(),)

    @staticmethod
    def _policy(context: CreditContext) -> HiddenStateScorer:
        policy = context.scorer
        if not isinstance(policy, HiddenStateScorer):
            raise ValueError(
                f"ppo with critic: head reads the policy's hidden states, but the policy in the "
                f"credit context ({type(policy).__name__}) has no hidden_states(prompt_ids) "
                "(scripted and served policies have none); use critic: model, which needs "
                "nothing from the policy, or a Hugging Face model policy"
            )
        return policy

    def encode_tokens(
        self, episodes: Sequence[Sequence[Turn]], context: CreditContext
    ) -> tuple[torch.Tensor]:
        """The network's input for every response token of these episodes' turns, in order
        (``ppo``'s ``level: bilevel``): the hidden state *before* each token, at positions
        len(prompt) - 1 .. len(prompt) + len(response) - 2 of prompt + response, so a turn's
        first token reads the same state as `encode` (the turn's value V(s_t))."""
        policy = self._policy(context)
        if any(not turn.prompt_ids or not turn.response_ids for ts in episodes for turn in ts):
            raise ValueError(
                "ppo with level: bilevel needs every turn's prompt and response token ids "
                "(turn.prompt_ids, turn.response_ids), and some turn has none; use level: turn"
            )
        sequences, positions = [], []
        for turns in episodes:
            whole = [list(turn.prompt_ids) + list(turn.response_ids) for turn in turns]
            spans = [
                range(len(turn.prompt_ids) - 1, len(whole_ids) - 1)
                for turn, whole_ids in zip(turns, whole)
            ]
            if whole and all(ids == whole[-1][: len(ids)] for ids in whole):
                # a conversation: every turn's prompt + response is a prefix of the last; one pass
                sequences.append(whole[-1])
                positions.append([p for span in spans for p in span])
            else:
                sequences += whole
                positions += [list(span) for span in spans]
        features = policy.hidden_states(sequences, positions=positions)
        return (torch.as_tensor(features, dtype=torch.float32).detach().cpu(),)

    def _new_network(self, input_size: int) -> nn.Module:
        # features of another model's scale: normalise them before the MLP
        return nn.Sequential(
            nn.LayerNorm(input_size, elementwise_affine=False), _mlp(input_size, self.hidden)
        )

    def _input_size(self, inputs: Any) -> int:
        return int(inputs[0].shape[-1])  # the policy's hidden size


CRITICS: dict[str, type[Critic]] = {"model": TokenBagCritic, "head": HeadCritic}


def make_critic(kind: str, *, seed: int, lr: float, hidden: int) -> Critic:
    """A new critic of `kind` (``"model"`` or ``"head"``)."""
    if kind not in CRITICS:
        raise ValueError(f"ppo: critic={kind!r} is not one of {', '.join(map(repr, CRITICS))}")
    return CRITICS[kind](seed=seed, lr=lr, hidden=hidden)

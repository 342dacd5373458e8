"""PPO's advantages with a learned critic: turn-level GAE over the turn rewards.

Schulman et al., "High-Dimensional Continuous Control Using Generalized Advantage
Estimation", arXiv:1506.02438, Sec. 3 (Eq. 16), applied at the level of turns as RAGEN's
turn-level ("high level") GAE does (Wang et al., arXiv:2504.20073; reference code:
github.com/RAGEN-AI/RAGEN, ``compute_bi_level_gae_advantage_return``). For each episode with
turns t = 0..T-1, turn rewards r_t and a critic's value V(s_t) of each turn's state:

    delta_t = r_t + gamma * V(s_{t+1}) - V(s_t)        V(s_T) = 0 after the last turn
    A_t     = sum_{k>=0} (gamma * lambda)^k delta_{t+k}   (within the episode)
    R_t     = A_t + V(s_t)                              the critic's regression target

lambda = 1 gives A_t = (discounted return-to-go) - V(s_t); lambda = 0 the one-step TD error.
Then the critic trains on the batch: `critic_epochs` Adam steps on the clipped value loss
(Schulman et al., arXiv:1707.06347 as in OpenAI baselines' ppo2 and verl's
``compute_value_loss``; see `critic.clipped_value_loss`), and the advantages are whitened
over the batch's turns (``normalize``), as verl's ``compute_gae_advantage_return`` does over
tokens. The critic (``critic: model`` or ``head``, `creditgym.credit.estimators.critic`) and
its optimizer are the module's state, checkpointed with the run.

The state s_t is the turn's prompt. A truncated episode (cut by the step budget) has no
recorded next prompt to score, so by default it ends like a terminated one: V(s_T) = 0, the
step budget read as part of the task, which is also how every other creditgym estimator counts
returns. ``truncated: last_value`` bootstraps instead with V(s_{T-1}), the value of the last
state the critic saw, as a stand-in for the unrecorded next state.

``level: bilevel`` (with ``critic: head`` only) is RAGEN's bi-level GAE: the turn-level GAE
above, then a token-level GAE inside each turn's response. The head scores every response
token: v_j is the value of the state before token j (the policy's hidden state one position
earlier), so v_1 = V(s_t), the turn's value used at the turn level. With the turn's GAE return
R_t = A_t + V(s_t) as the reward of its last token (n tokens):

    d_j = token_gamma * v_{j+1} - v_j   (j < n)        d_n = R_t - v_n
    a_j = sum_{k>=0} (token_gamma * token_lam)^k d_{j+k}    (within the turn)

and the critic trains on every token's target a_j + v_j (a_n + v_n = R_t). With token_gamma =
token_lam = 1, a_j = R_t - v_j: each token's advantage is the turn's return minus its own value.
The token advantages are whitened over the batch's response tokens (RAGEN's ``masked_whiten``)
and weight each token in the policy loss; the per-turn advantages that logs, metrics and
credit-report read are the (whitened) turn-level GAE A_t, the same as ``level: turn`` gives from
the same values.
"""

# Where we differ from verl (PPO with GAE) and RAGEN (turn-level GAE), all in one place:
# 1. GAE runs over turns, one value per turn's prompt, not over tokens: the estimator contract
#    gives one advantage per turn, and the trainer broadcasts it to the turn's action tokens.
#    RAGEN's turn level reads V at each response's last token (after the action); ours is
#    V(s_t) before it, as in the GAE paper. ``level: bilevel`` adds the token level: then the
#    estimator returns per-token advantages too (`creditgym.credit.tokens.TokenAdvantages`).
#    RAGEN's token level uses the turn level's lam and a token gamma (1.0); ours has its own
#    token_lam (1.0 = RAGEN's default lam) and token_gamma (1.0). RAGEN whitens only the
#    token advantages; we whiten the turn advantages (for logs) and the token ones separately.
# 2. Defaults: lam = 1.0 (verl's and RAGEN's `lam`); gamma = 0.95 per *turn* (RAGEN's
#    `high_level_gamma` 0.95 for its turn level, and GiGPO's gamma), where verl's gamma = 1.0
#    discounts *tokens*. value_clip = 0.2 (ppo2's cliprange, shared with the policy), where
#    verl's critic uses cliprange_value = 0.5. critic_lr = 1e-2 for a small critic trained
#    from scratch, where verl's 1e-5 fine-tunes a whole LM: measured with
#    benchmarks/ppo_critic_learning.py (one seed), the token-bag critic's explained variance on
#    each new household batch averaged +0.08 over the last 10 of 20 batches at 1e-2 and 0.00
#    at 1e-3 (expert:eps=0.6, 83% success); +0.03 and +0.005 over the last 6 of 12 at 9%
#    success, where 1e-2 also had one batch at -0.22. critic_epochs = 4 full-batch steps (32
#    overfitted each batch: the next one's explained variance averaged -0.04), where verl's
#    critic takes ppo_epochs (1) passes of mini-batches.
# 3. The critic trains inside the credit call, on this batch, after the advantages were
#    computed from its values; verl updates it in the trainer's update phase, also after the
#    advantages. Same order, same data.
# 4. Whitening uses the unbiased variance over the turns of non-failed episodes, as verl's
#    `masked_whiten` does over response tokens; a batch of one turn gets 0 where verl divides
#    by zero. Failed episodes get 0 and never train the critic.
# 5. `truncated`: see the module docstring; verl has no truncation in single-turn PPO and RAGEN
#    sets the value after the last turn to 0 whatever ended the episode (our default).

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from creditgym.credit.batch import (
    batch_discounted_returns,
    check_choice,
    flatten,
    split_by_episode,
)
from creditgym.credit.context import CreditContext
from creditgym.credit.estimators.critic import CRITICS, Critic, make_critic
from creditgym.credit.modules import Requirement, RunContext
from creditgym.credit.registry import register_estimator
from creditgym.credit.tokens import TokenAdvantages
from creditgym.trajectory import Episode

__all__ = ["PPOEstimator", "turn_gae", "token_gae", "whiten", "TRUNCATION", "LEVELS"]

TRUNCATION: tuple[str, ...] = ("zero", "last_value")
LEVELS: tuple[str, ...] = ("turn", "bilevel")
DEFAULT_CRITIC = "model"


def turn_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    lengths: np.ndarray,
    *,
    gamma: float,
    lam: float,
    final_values: np.ndarray | None = None,
) -> np.ndarray:
    """GAE over the turns of a flat batch (episodes one after another).  # (turns,)

    Args:
        rewards: (turns,) r_t.
        values: (turns,) V(s_t).
        lengths: (episodes,) turns per episode.
        gamma: the discount per turn.
        lam: GAE's lambda.
        final_values: (episodes,) V(s_T) after each episode's last turn; default 0.

    Returns:
        A_t = sum_k (gamma lam)^k delta_{t+k}, with delta_t = r_t + gamma V(s_{t+1}) - V(s_t).
    """
    n_turns = len(rewards)
    if n_turns == 0:
        return np.zeros(0)
    last = np.cumsum(lengths)[lengths > 0] - 1  # each non-empty episode's last turn
    next_values = np.append(values[1:], 0.0)
    next_values[last] = 0.0 if final_values is None else np.asarray(final_values)[lengths > 0]
    deltas = rewards + gamma * next_values - values
    # A_t = delta_t + (gamma lam) A_{t+1}: a discounted return of the deltas
    return batch_discounted_returns(deltas, lengths, gamma * lam)


def token_gae(
    values: np.ndarray,
    lengths: np.ndarray,
    turn_returns: np.ndarray,
    *,
    gamma: float,
    lam: float,
) -> np.ndarray:
    """Token-level GAE inside each turn of a flat batch of tokens.  # (tokens,)

    Args:
        values: (tokens,) v_j, every turn's response tokens one turn after another.
        lengths: (turns,) response tokens per turn.
        turn_returns: (turns,) R_t, the reward of each turn's last token.
        gamma: the discount per token.
        lam: GAE's lambda per token.

    Returns:
        a_j = sum_k (gamma lam)^k d_{j+k}, d_j = gamma v_{j+1} - v_j, and d_n = R_t - v_n on a
        turn's last token.
    """
    if len(values) == 0:
        return np.zeros(0)
    last = np.cumsum(lengths)[lengths > 0] - 1  # each non-empty turn's last token
    next_values = gamma * np.append(values[1:], 0.0)
    next_values[last] = np.asarray(turn_returns, dtype=np.float64)[lengths > 0]
    return batch_discounted_returns(next_values - values, lengths, gamma * lam)


def whiten(advantages: np.ndarray, epsilon: float = 1e-8) -> np.ndarray:
    """(A - mean) / sqrt(var + epsilon), var unbiased (verl's ``masked_whiten``).  # (turns,)

    Fewer than two turns: all 0.
    """
    if len(advantages) < 2:
        return np.zeros(len(advantages))
    centred = advantages - advantages.mean()
    return centred / np.sqrt(centred.var(ddof=1) + epsilon)


def _critic_metrics(values: np.ndarray, returns: np.ndarray, losses: list[float]) -> dict:
    spread = returns.var()
    explained = 1.0 - (returns - values).var() / spread if spread > 0 else 0.0
    row = {
        "explained_variance": float(explained),
        "value_mean": float(values.mean()),
        "return_mean": float(returns.mean()),
    }
    if losses:
        row.update(value_loss_first=losses[0], value_loss_last=losses[-1])
    return row


@register_estimator("ppo")
class PPOEstimator:
    """Turn-level GAE with a critic trained online on each batch (see the module docstring).

    One instance per run: `setup` takes the run's seed for the critic's initialisation, and
    the critic's weights and Adam state go through `state_dict` / `load_state_dict` into
    checkpoints. With ``critic: head`` it requires the ``scorer`` (the trained policy, handed
    in by the trainer at every call), whose hidden states it reads; ``critic: model`` needs
    nothing from the policy, so it runs with any agent (a scripted one in credit-report too).
    """

    multiprocess = False  # the critic would fit only each process's share of the batch

    @classmethod
    def requirements(cls, options: dict[str, Any]) -> tuple[Requirement, ...]:
        """The policy (``scorer``) for ``critic: head``; nothing for ``critic: model``."""
        critic = options.get("critic", DEFAULT_CRITIC)
        return (Requirement("scorer"),) if critic == "head" else ()

    def __init__(self) -> None:
        self.seed = 0
        self.critic: Critic | None = None
        self._last: dict[str, float] = {}

    def setup(self, run: RunContext) -> None:
        self.seed = run.seed

    def state_dict(self) -> dict[str, Any]:
        if self.critic is None or self.critic.network is None:
            return {}
        return {"critic": self.critic.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        saved = state["critic"]  # its kind, sizes and learning rate replace these placeholders
        self.critic = make_critic(saved["kind"], seed=self.seed, lr=saved["lr"], hidden=64)
        self.critic.load_state_dict(saved)

    def metrics(self) -> dict[str, float]:
        """The last call's critic numbers, logged by the trainer under ``ppo/``.

        ``explained_variance``: 1 - Var(R - V) / Var(R) of the values the advantages used,
        before the critic trained on this batch (so it measures prediction, not fit), over
        turns, or with ``level: bilevel`` over response tokens and their token targets;
        ``value_loss_first`` / ``value_loss_last``: the clipped value loss at the first and
        last of its Adam steps; ``value_mean``, ``return_mean``.
        """
        return dict(self._last)

    def _critic(self, kind: str, lr: float, hidden: int) -> Critic:
        if self.critic is None:
            self.critic = make_critic(kind, seed=self.seed, lr=lr, hidden=hidden)
        elif self.critic.kind != kind:
            raise ValueError(
                f"ppo: this run's critic is {self.critic.kind!r} (from its first batch or its "
                f"checkpoint), but critic={kind!r} is configured; keep one critic per run"
            )
        return self.critic

    def __call__(
        self,
        episodes: Sequence[Episode],
        turn_rewards: Sequence[np.ndarray],
        *,
        context: CreditContext,
        critic: str = DEFAULT_CRITIC,
        gamma: float = 0.95,
        lam: float = 1.0,
        normalize: bool = True,
        critic_epochs: int = 4,
        critic_lr: float = 1e-2,
        value_clip: float = 0.2,
        critic_hidden: int = 64,
        truncated: str = "zero",
        level: str = "turn",
        token_gamma: float = 1.0,
        token_lam: float = 1.0,
    ) -> list[np.ndarray] | TokenAdvantages:
        """Whitened turn-level GAE advantages; trains the critic on this batch after.

        Args:
            episodes: the batch; `failed` episodes get 0 and do not train the critic.
            turn_rewards: one array of turn rewards per episode (the summed shapers).
            context: the run's credit context (``critic: head`` reads its ``scorer``).
            critic: ``"model"`` (a separate small value model) or ``"head"`` (a value head
                on the policy's hidden state); see `creditgym.credit.estimators.critic`.
            gamma: discount per turn.
            lam: GAE's lambda (1: return minus value; 0: one-step TD error).
            normalize: whiten the advantages over the batch's turns.
            critic_epochs: full-batch Adam steps of the critic per call.
            critic_lr: the critic's Adam learning rate.
            value_clip: how far the critic's values may move from those the advantages were
                computed with before the clipped loss stops rewarding it.
            critic_hidden: the critic MLP's hidden width (fixed when first built).
            truncated: the value after a truncated episode's last turn: ``"zero"`` or
                ``"last_value"`` (V of its last state).
            level: ``"turn"`` (one advantage per turn) or ``"bilevel"`` (also a token-level
                GAE inside each turn; needs ``critic: head``; returns `TokenAdvantages`).
            token_gamma: the discount per token (``level: bilevel``).
            token_lam: GAE's lambda per token (``level: bilevel``).
        """
        check_choice("critic", critic, tuple(CRITICS), "ppo")
        check_choice("truncated", truncated, TRUNCATION, "ppo")
        check_choice("level", level, LEVELS, "ppo")
        bilevel = level == "bilevel"
        if bilevel and critic != "head":
            raise ValueError(
                f"ppo: level: bilevel needs a value for every response token, which only "
                f"critic: head gives (the policy's hidden state at each token); got "
                f"critic: {critic}. Set critic: head, or level: turn"
            )
        if critic_epochs < 0 or value_clip <= 0:
            raise ValueError(
                f"ppo: critic_epochs must be >= 0 and value_clip > 0; got {critic_epochs} and "
                f"{value_clip}"
            )
        batch = flatten(episodes, turn_rewards)
        kept = np.flatnonzero(~batch.failed)
        advantages = np.zeros(len(batch.rewards))
        kept_lengths = batch.lengths[kept]
        turns = [turn for i in kept for turn in episodes[i].turns]
        if not turns:
            per_turn = split_by_episode(advantages, batch.lengths)
            return TokenAdvantages(per_turn, _zero_tokens(episodes)) if bilevel else per_turn
        keep_turn = ~batch.turn_failed
        rewards = batch.rewards[keep_turn]

        value_fn = self._critic(critic, critic_lr, critic_hidden)
        value_fn.set_lr(critic_lr)
        if bilevel:
            inputs = value_fn.encode_tokens([episodes[i].turns for i in kept], context)
            token_lengths = np.array([len(turn.response_ids) for turn in turns])
        else:
            inputs = value_fn.encode([episodes[i].turns for i in kept], context)
        with torch.no_grad():
            old_values = value_fn.values(inputs)  # (kept turns,), or (their tokens,) if bilevel
        if bilevel:
            token_values = old_values.double().numpy()
            values = token_values[np.cumsum(token_lengths) - token_lengths]  # v_1 = V(s_t)
        else:
            values = old_values.double().numpy()
        final_values = np.zeros(len(kept))  # V(s_T) after each kept episode's last turn
        if truncated == "last_value":
            last = np.cumsum(kept_lengths) - 1
            for j, i in enumerate(kept):
                if episodes[i].truncated and kept_lengths[j] > 0:
                    final_values[j] = values[last[j]]
        gae = turn_gae(
            rewards, values, kept_lengths, gamma=gamma, lam=lam, final_values=final_values
        )
        returns = gae + values
        targets, predicted = returns, values
        if bilevel:
            token_advantages = token_gae(
                token_values, token_lengths, returns, gamma=token_gamma, lam=token_lam
            )
            targets, predicted = token_advantages + token_values, token_values

        losses = value_fn.fit(
            inputs,
            old_values,
            torch.as_tensor(targets, dtype=torch.float32),
            epochs=critic_epochs,
            clip=value_clip,
        )
        self._last = _critic_metrics(predicted, targets, losses)
        for turn, value, target, raw in zip(turns, values, returns, gae):
            turn.credit_details["ppo"] = {
                "value": float(value),
                "return": float(target),
                "gae": float(raw),
            }
        advantages[keep_turn] = whiten(gae) if normalize else gae
        per_turn = split_by_episode(advantages, batch.lengths)
        if not bilevel:
            return per_turn
        flat = whiten(token_advantages) if normalize else token_advantages
        rows = iter(np.split(flat, np.cumsum(token_lengths)[:-1]))
        tokens = _zero_tokens(episodes)
        for i in kept:
            tokens[i] = [next(rows) for _ in episodes[i].turns]
        return TokenAdvantages(per_turn, tokens)


def _zero_tokens(episodes: Sequence[Episode]) -> list[list[np.ndarray]]:
    return [[np.zeros(len(turn.response_ids)) for turn in episode.turns] for episode in episodes]

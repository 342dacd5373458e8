"""EMPG: the episode's group advantage, rescaled by each step's confidence, plus a clarity bonus.

Wang, Liu, Fu, Li, Wang, Lin, Yue, Zhang, Wang, Wang, "Harnessing Uncertainty:
Entropy-Modulated Policy Gradients for Long-Horizon LLM Agents", arXiv:2509.09265;
pseudocode on the project page (empgseed-seed.github.io, ``compute_empg_advantage``).
A step is one turn. With H_t the step's entropy, over all steps of the batch (equation numbers
as the pseudocode cites them):

    Eq. 12  batch-normalised entropy  H_norm_t = (H_t - min H) / (max H - min H + 1e-8)
    Eq. 10  self-calibrating scale    g_t = exp(-k H_norm_t) / (mean_batch exp(-k H_norm) + 1e-8)
    Eq. 11  future clarity            f_t = exp(-k_f H_norm_t)
            modulated advantage       A_mod_t = g_t * A(tau) + zeta * f_{t+1}
                                      (no bonus on an episode's last step: it has no next one)
            final normalisation       A_t = A_mod_t - mean_batch A_mod   ("mean", the default)

A(tau) is the episode-level group advantage EMPG modulates: GRPO's (`grpo.episode_advantages`).
g has batch mean 1, so it only redistributes the signal: confident (low-entropy) steps get more
of the episode's advantage, for better and for worse (a confident step of a failed episode is
penalised hardest), uncertain steps less. The bonus rewards steps whose *next* step is
confident, i.e. paths that lead somewhere predictable. Defaults are the pseudocode's:
k = 1, k_f = 1, zeta = 0.1, GRPO's mean_std base advantage.

**Step entropy.** The paper averages the exact token entropies of the step's response. We
record only the sampled tokens' log-probabilities (`turn.logprobs`), so H_t is the step's mean
token surprisal, -mean(logprobs): a one-sample estimate of the mean token entropy (its
expectation over the sampled tokens is the entropy). It is noisier than the exact value and
zero for a deterministic policy, exactly as the entropy. Scripted policies record no
log-probabilities, so EMPG needs a model policy.
"""

# Where we differ from the paper and its pseudocode:
# 1. Step entropy: the mean token surprisal of the sampled response, -mean(logprobs), instead
#    of the mean exact token entropy (not recorded by our rollouts); see above.
# 2. The final normalisation subtracts the batch mean of A_mod ("mean"); "mean_std" also
#    divides by the batch std, "none" skips it. We read the paper as normalising the
#    modulated advantages over the batch before the update, but the part of its pseudocode
#    available to us stops before that step, so the form is our choice: zero mean, which
#    cancels the bonus's constant push (every non-final step gets a positive bonus) and keeps
#    g's scale. Check it against the paper's Algorithm 1 before relying on it.
# 3. Failed episodes (`episode.failed`) get 0 and are left out of every batch statistic
#    (min/max entropy, mean of g, the final mean) and of the group advantage.
# 4. The batch statistics are over the whole batch handed to the estimator (one iteration's
#    episodes); the paper's are over its training mini-batch.

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from creditgym.credit.batch import (
    GROUP_NORMALIZATIONS,
    TurnBatch,
    check_choice,
    flatten,
    split_by_episode,
)
from creditgym.credit.estimators.grpo import episode_advantages
from creditgym.credit.registry import register_estimator
from creditgym.trajectory import Episode

__all__ = ["empg_advantages", "step_entropies", "FINAL_NORMALIZATIONS"]

FINAL_NORMALIZATIONS: tuple[str, ...] = ("mean", "mean_std", "none")
_EPS = 1e-8  # the pseudocode's epsilon in Eqs. 10 and 12


def step_entropies(episodes: Sequence[Episode], batch: TurnBatch) -> np.ndarray:  # (turns,)
    """H_t = -mean(logprobs) of every turn; 0 on failed episodes (which are not checked).

    Raises:
        ValueError: a turn of a non-failed episode has no log-probabilities.
    """
    ok = ~batch.turn_failed
    # A failed episode's turns count as empty: never checked, never read.
    per_turn = [
        () if episode.failed else turn.logprobs for episode in episodes for turn in episode.turns
    ]
    counts = np.fromiter(map(len, per_turn), dtype=np.int64, count=len(per_turn))
    missing = np.flatnonzero(ok & (counts == 0))
    if len(missing):
        turn = int(missing[0])
        raise ValueError(
            f"empg: turn {int(batch.step[turn])} of episode {int(batch.episode[turn])} has no "
            "log-probabilities (turn.logprobs is empty), so its step entropy is unknown. EMPG "
            "needs a model policy that records them (hf, vllm, openai with logprobs), not a "
            "scripted one (expert, random); pick another estimator for scripted rollouts."
        )
    logprobs = np.fromiter(
        itertools.chain.from_iterable(per_turn), dtype=np.float64, count=int(counts.sum())
    )
    owner = np.repeat(np.arange(len(counts)), counts)
    surprisal = np.bincount(owner, weights=-logprobs, minlength=len(counts))
    return surprisal / np.maximum(counts, 1)


def _final_normalize(values: np.ndarray, how: str) -> np.ndarray:
    if how == "none" or len(values) == 0:
        return values
    deviation = values - values.mean()
    if how == "mean":
        return deviation
    return deviation / (deviation.std() + _EPS)


def empg_advantages(
    episodes: Sequence[Episode],
    turn_rewards: Sequence[np.ndarray],
    *,
    k: float = 1.0,
    k_f: float = 1.0,
    zeta: float = 0.1,
    normalization: str = "mean_std",
    final_normalization: str = "mean",
    epsilon: float = 1e-6,
) -> list[np.ndarray]:
    """EMPG advantage of every turn: g(H_t) * A(tau) + zeta * f(H_{t+1}), batch-centred.

    Args:
        episodes: the batch; every turn of a non-failed episode needs `logprobs` (a model
            policy's); `group_id` forms the groups of the base advantage; `failed` ones get 0.
        turn_rewards: one array of turn rewards per episode (the summed shaper outputs).
        k: sharpness of the self-calibrating scale g (pseudocode: 1.0); 0 turns it off.
        k_f: sharpness of the future-clarity term f (pseudocode: 1.0).
        zeta: weight of the future-clarity bonus (pseudocode: 0.1); 0 turns it off.
        normalization: the base advantage A(tau), GRPO's: ``"mean_std"`` or ``"mean"``.
        final_normalization: over the batch's turns after modulation: ``"mean"`` (subtract the
            mean, the default), ``"mean_std"`` (also divide by the std) or ``"none"``.
        epsilon: added to the group std of the base advantage.
    """
    check_choice("normalization", normalization, GROUP_NORMALIZATIONS, "empg")
    check_choice("final_normalization", final_normalization, FINAL_NORMALIZATIONS, "empg")
    if k < 0 or k_f < 0 or zeta < 0:
        raise ValueError(
            f"empg: k={k}, k_f={k_f} and zeta={zeta} must be >= 0 "
            "(pseudocode defaults 1.0, 1.0, 0.1)."
        )
    batch = flatten(episodes, turn_rewards)
    ok = ~batch.turn_failed
    H = step_entropies(episodes, batch)
    A_tau = episode_advantages(
        batch.returns, batch.group, batch.n_groups, batch.failed, normalization, epsilon
    )[batch.episode]

    # Eq. 12: batch-level min-max normalisation of the step entropies.
    H_norm = np.zeros(len(H))
    if ok.any():
        low, high = H[ok].min(), H[ok].max()
        H_norm[ok] = (H[ok] - low) / (high - low + _EPS)

    # Eq. 10: self-calibrating gradient scaling, mean 1 over the batch.
    g = np.zeros(len(H))
    g[ok] = np.exp(-k * H_norm[ok])
    if ok.any():
        g[ok] /= g[ok].mean() + _EPS

    # Eq. 11: future clarity of the *next* step of the same episode; none after the last.
    f = np.exp(-k_f * H_norm)
    has_next = np.zeros(len(H), dtype=bool)
    has_next[:-1] = batch.episode[1:] == batch.episode[:-1]
    f_next = np.zeros(len(H))
    f_next[:-1] = f[1:]
    bonus = np.where(has_next & ok, zeta * f_next, 0.0)

    # The modulated advantage, then the batch-level normalisation.
    A = np.zeros(len(H))
    A[ok] = _final_normalize(g[ok] * A_tau[ok] + bonus[ok], final_normalization)
    _record(episodes, H, g, bonus, A_tau)
    return split_by_episode(A, batch.lengths)


register_estimator("empg")(empg_advantages)


def _record(
    episodes: Sequence[Episode], H: np.ndarray, g: np.ndarray, bonus: np.ndarray, A_tau: np.ndarray
) -> None:
    """Each turn's step entropy, scale, bonus and base advantage, for the episode viewer."""
    turns = (turn for episode in episodes for turn in episode.turns)
    for turn, h, scale, b, a in zip(turns, H.tolist(), g.tolist(), bonus.tolist(), A_tau.tolist()):
        turn.credit_details["empg"] = {
            "step_entropy": h,
            "scale": scale,
            "clarity_bonus": b,
            "episode_advantage": a,
        }

"""Credit fidelity: how well per-turn advantages agree with what the environment knows.

The environments' oracles give each turn a progress label ``d(s_t) - d(s_t+1)`` (the expert's
cost-to-go before minus after the turn: +1 an optimal step, 0 a wasted one, negative a step
away; `Turn.progress`) and, where the env can clone its state, Monte-Carlo advantages of the
behaviour policy ``A = Q - V``. These functions score any credit method's advantages against
them; they read only the episodes and the advantages (no envs, no policy).

Conventions (stated once, used everywhere):

- A turn after which the env can no longer give a cost-to-go although it gave one before (a
  wrong answer or purchase: the expert cannot win from there) is a *dead end*, labelled
  ``-inf``: below every other label in the rankings, and non-progress in the AUC. Turns with
  no cost-to-go before them are unlabelled and left out.
- Spearman correlation uses average ranks for ties, and is 0 when either side is constant
  (a constant ranks nothing; this is what makes GRPO's within-episode agreement exactly 0,
  since GRPO gives every turn of an episode the same advantage).
- Within-episode agreement is the mean Spearman correlation over the episodes that have at
  least two distinct progress labels (an episode of all-optimal steps says nothing about
  ranking); failed episodes and turns without a label are left out.
- Batch AUC is P(advantage of a progress-making turn > advantage of a non-progress turn) over
  every labelled turn of the batch, ties counting 1/2 (the Mann-Whitney U statistic / n1 n2).
  "Progress-making" means label > 0; everything else (0 or negative) is non-progress.
- Information-state labels (an expert's *expected* cost-to-go from what the agent has seen,
  ``D(s) - D(s')``; see `creditgym.measure.credit_report.informed_labels`) are scored with the
  same within-episode and batch AUC definitions: in a partially observed env, finding a hidden
  object by luck is progress to the omniscient planner and to the informed labels alike, but
  only the informed labels also count a step that rules out where it is not.
- Sign agreement with Monte-Carlo advantages is the share of turns whose advantage has the MC
  advantage's sign, over turns with a non-zero MC advantage; a zero method advantage counts 1/2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from creditgym.trajectory import Episode, Turn

__all__ = [
    "FidelityScores",
    "average_ranks",
    "spearman",
    "within_episode_agreement",
    "batch_auc",
    "sign_agreement",
    "DEAD_END",
    "turn_label",
    "progress_labels",
    "score_fidelity",
    "score_turn_sample",
]


def average_ranks(values: Sequence[float] | np.ndarray) -> np.ndarray:  # (n,)
    """Ranks 1..n of `values`, tied values sharing the mean of their ranks."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values))
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); 0 when either side is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f"spearman needs two sequences of one length; got {len(x)} and {len(y)}")
    if len(x) < 2:
        return 0.0
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return 0.0 if denominator == 0.0 else float((rx * ry).sum() / denominator)


DEAD_END = float("-inf")


def turn_label(turn: Turn) -> float:
    """The turn's progress label ``d(s) - d(s')``, `DEAD_END` where ``d(s')`` became unknown
    after a known ``d(s)``, NaN where ``d(s)`` is unknown."""
    if turn.cost_to_go is None:
        return float("nan")
    if turn.next_cost_to_go is None:
        return DEAD_END
    return float(turn.cost_to_go - turn.next_cost_to_go)


def progress_labels(episode: Episode) -> np.ndarray:  # (turns,)
    """The oracle progress label of each turn (see `turn_label`)."""
    return np.array([turn_label(turn) for turn in episode.turns], dtype=np.float64)


def within_episode_agreement(
    episodes: Sequence[Episode],
    advantages: Sequence[np.ndarray],
    labels_of: Sequence[np.ndarray] | None = None,
) -> tuple[float, int]:
    """Mean within-episode Spearman of advantages vs progress labels (the planner's, or
    `labels_of`: one array per episode), and how many episodes it averages (those with >= 2
    distinct labels); (0.0, 0) when there are none."""
    correlations = []
    for i, (episode, advantage) in enumerate(zip(episodes, advantages)):
        if episode.failed:
            continue
        labels = progress_labels(episode) if labels_of is None else np.asarray(labels_of[i])
        labelled = ~np.isnan(labels)
        if len(np.unique(labels[labelled])) < 2:
            continue
        correlations.append(spearman(np.asarray(advantage)[labelled], labels[labelled]))
    return (float(np.mean(correlations)) if correlations else 0.0), len(correlations)


def batch_auc(advantages: np.ndarray, labels: np.ndarray) -> float:
    """P(advantage of a turn with label > 0 > advantage of a turn with label <= 0), ties 1/2;
    NaN when either kind is missing. `advantages` and `labels` are flat, NaN labels skipped."""
    advantages, labels = np.asarray(advantages, np.float64), np.asarray(labels, np.float64)
    keep = ~np.isnan(labels)
    advantages, labels = advantages[keep], labels[keep]
    positive = labels > 0
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = average_ranks(advantages)  # Mann-Whitney: U = sum of positive ranks - n1(n1+1)/2
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def sign_agreement(advantages: np.ndarray, reference: np.ndarray) -> float:
    """Share of turns whose advantage has the sign of `reference` (over non-zero references;
    a zero advantage counts 1/2); NaN when every reference is 0."""
    advantages, reference = np.asarray(advantages, np.float64), np.asarray(reference, np.float64)
    keep = reference != 0
    if not keep.any():
        return float("nan")
    agree = np.sign(advantages[keep]) == np.sign(reference[keep])
    zero = advantages[keep] == 0
    return float(np.mean(np.where(zero, 0.5, agree.astype(np.float64))))


@dataclass
class FidelityScores:
    """One credit method's scores on one batch (see the module docstring for definitions).

    Attributes:
        within_episode_spearman: mean within-episode Spearman vs progress labels.
        episodes_ranked: episodes with >= 2 distinct labels that the mean is over.
        constant_within_episodes: every episode's advantages are one value (GRPO-like), so
            the within-episode agreement is 0 by construction, not by measurement.
        batch_auc: P(progress turn's advantage > non-progress turn's), ties 1/2.
        informed_within_episode_spearman, informed_episodes_ranked, informed_batch_auc: the
            same against the information-state labels (an expert's expected cost-to-go from
            what the agent has seen; NaN / 0 where the env has none).
        mc_spearman: Spearman vs the Monte-Carlo advantages of the sampled turns (NaN: none).
        mc_sign_agreement: sign agreement with them.
        zero_share: share of (non-failed) turns with advantage exactly 0.
        advantage_std: std of the (non-failed) turns' advantages.
        seconds: time the method took to compute its advantages (filled by the caller).
    """

    within_episode_spearman: float
    episodes_ranked: int
    constant_within_episodes: bool
    batch_auc: float
    informed_within_episode_spearman: float
    informed_episodes_ranked: int
    informed_batch_auc: float
    mc_spearman: float
    mc_sign_agreement: float
    zero_share: float
    advantage_std: float
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            key: (None if isinstance(value, float) and np.isnan(value) else value)
            for key, value in asdict(self).items()
        }


def score_fidelity(
    episodes: Sequence[Episode],
    advantages: Sequence[np.ndarray],
    mc_turns: Sequence[tuple[int, int]] = (),
    mc_advantages: Sequence[float] | np.ndarray = (),
    informed_labels: Sequence[np.ndarray] | None = None,
) -> FidelityScores:
    """Score one method's `advantages` (one array per episode) against the oracle labels and,
    where given, Monte-Carlo advantages of the turns `mc_turns` ((episode, turn) indices) and
    information-state labels (one array per episode)."""
    kept = [i for i, episode in enumerate(episodes) if not episode.failed]
    flat_advantage = np.concatenate([np.asarray(advantages[i], np.float64) for i in kept] or [[]])
    flat_labels = np.concatenate([progress_labels(episodes[i]) for i in kept] or [[]])
    within, ranked = within_episode_agreement(episodes, advantages)
    constant = all(np.ptp(advantages[i]) == 0 for i in kept if len(advantages[i]))
    if len(mc_turns):
        method = np.array([advantages[e][t] for e, t in mc_turns], dtype=np.float64)
        mc = np.asarray(mc_advantages, dtype=np.float64)
        mc_rho, mc_sign = spearman(method, mc), sign_agreement(method, mc)
    else:
        mc_rho = mc_sign = float("nan")
    informed_within, informed_ranked, informed_auc = float("nan"), 0, float("nan")
    if informed_labels is not None:
        informed_within, informed_ranked = within_episode_agreement(
            episodes, advantages, informed_labels
        )
        flat_informed = np.concatenate(
            [np.asarray(informed_labels[i], np.float64) for i in kept] or [[]]
        )
        informed_auc = batch_auc(flat_advantage, flat_informed)
    return FidelityScores(
        within_episode_spearman=within,
        episodes_ranked=ranked,
        constant_within_episodes=constant,
        batch_auc=batch_auc(flat_advantage, flat_labels),
        informed_within_episode_spearman=informed_within,
        informed_episodes_ranked=informed_ranked,
        informed_batch_auc=informed_auc,
        mc_spearman=mc_rho,
        mc_sign_agreement=mc_sign,
        zero_share=float(np.mean(flat_advantage == 0)) if len(flat_advantage) else float("nan"),
        advantage_std=float(np.std(flat_advantage)) if len(flat_advantage) else float("nan"),
    )


def score_turn_sample(
    episodes: Sequence[Episode],
    turns: Sequence[tuple[int, int]],
    values: Sequence[float],
    labels_of: Sequence[np.ndarray] | None = None,
) -> tuple[float, int, float]:
    """Within-episode Spearman, episodes ranked, and batch AUC of per-turn `values` known only
    on a sample of turns ((episode, turn) pairs), e.g. Monte-Carlo advantages: the same
    definitions as `score_fidelity`, over the sampled turns, against the planner's labels (or
    `labels_of`, one array per episode)."""
    labels = np.array(
        [
            turn_label(episodes[e].turns[t]) if labels_of is None else labels_of[e][t]
            for e, t in turns
        ],
        dtype=np.float64,
    )
    values = np.asarray(values, dtype=np.float64)
    by_episode: dict[int, list[int]] = {}
    for i, (e, _) in enumerate(turns):
        if not np.isnan(labels[i]):
            by_episode.setdefault(e, []).append(i)
    correlations = [
        spearman(values[idx], labels[idx])
        for idx in by_episode.values()
        if len(np.unique(labels[idx])) >= 2
    ]
    within = float(np.mean(correlations)) if correlations else 0.0
    return within, len(correlations), batch_auc(values, labels)

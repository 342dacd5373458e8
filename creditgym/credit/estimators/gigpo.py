"""GiGPO: episode-level group advantage plus a step-level advantage among turns from the same state.

Feng, Xue, Liu, An, "Group-in-Group Policy Optimization for LLM Agent Training",
arXiv:2505.10978 (NeurIPS 2025), Sec. 4; reference code: github.com/langfengQ/verl-agent,
``gigpo/core_gigpo.py``. For the N episodes tau_1..tau_N of one group (same start state):

    Eq. 3  episode relative advantage   A^E(tau_i) = (R(tau_i) - mean_j R(tau_j)) / F_norm
    Eq. 5  discounted return             R_t^(i) = sum_{k>=t} gamma^(k-t) r_k^(i)
    Eq. 6  anchor-state step groups      G^S(s) = {(a_t^(i), R_t^(i)) : s_t^(i) = s}, over every
                                          turn of every episode in the group (a state revisited
                                          within one episode joins the same step group)
    Eq. 7  step relative advantage       A^S(a_t^(i)) = (R_t^(i) - mean_{G^S} R) / F_norm
    Eq. 8  combined                      A(a_t^(i)) = A^E(tau_i) + omega * A^S(a_t^(i))

with F_norm = std + epsilon (``normalization="mean_std"``) or 1 (``"mean"``). Defaults are the
paper's: gamma = 0.95, omega = 1, F_norm = 1 (verl-agent's default ``mean_norm`` mode and its
ALFWorld/WebShop scripts), invalid-action penalty 0.1. ``std`` is unbiased (``torch.std``).
The state s_t is `turn.anchor`, the environment's canonical state key.
"""

# Where we differ from the paper and from verl-agent (all in one place):
# 1. A group with one (non-failed) episode gets A^E = 0; verl-agent uses mean 0 and std 1 for
#    it, i.e. A^E = R. Step groups of one turn get A^S = 0 in both.
# 2. Failed episodes (`episode.failed`: env crash, dead worker) get A = 0 and are left out of
#    every mean and std; neither the paper nor verl-agent has failed episodes.
# 3. Invalid-action penalty (not in the paper; verl-agent's `apply_invalid_action_penalty` in
#    ray_trainer.py): verl-agent subtracts it, after computing the step returns, from the
#    turn's episode-level score (each step sample carries the episode reward) and from that
#    turn's R_t. So it is never discounted into earlier turns, and it sits inside both
#    normalisations. We do the same, with one exception: at the episode level with statistics
#    over trajectories (our default), we subtract it after normalising, because trajectory
#    statistics do not contain it and dividing it by a zero group std (all returns equal)
#    would turn -0.1 into -0.1 / 1e-6. With F_norm = 1 (the default) the two are identical.
#    verl-agent's per-trajectory statistics also use each trajectory's first step sample,
#    whose score includes the first turn's penalty; ours use R(tau) itself.
# 4. `episode_stats="turns"` is verl-agent's default `compute_mean_std_cross_all_data=True`:
#    Eq. 3's mean and std taken over every turn of the group (each episode weighted by its
#    length, penalised scores included). `"trajectories"` (our default) is the paper's Eq. 3.
# 5. Turns without an anchor (None) are never grouped, so A^S = 0; verl-agent needs one per step.
# 6. Similarity grouping (verl-agent's `enable_similarity`, difflib ratio >= threshold, greedy
#    against each cluster's first member) compares each distinct anchor once instead of every
#    turn: the clusters are the same, since equal strings always join the same cluster.
#    Non-string anchors are matched exactly there; verl-agent raises on them.

from __future__ import annotations

import inspect
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

import numpy as np

from creditgym.credit.batch import (
    GROUP_NORMALIZATIONS,
    TurnBatch,
    batch_discounted_returns,
    check_choice,
    factorize,
    flatten,
    group_normalize,
    split_by_episode,
)
from creditgym.credit.estimators.grpo import episode_advantages
from creditgym.credit.registry import register_estimator
from creditgym.info_keys import ANCHOR
from creditgym.trajectory import Episode

__all__ = ["GiGPOTerms", "gigpo_terms", "gigpo_advantages", "step_groups", "EPISODE_STATS"]

EPISODE_STATS: tuple[str, ...] = ("trajectories", "turns")


@dataclass
class GiGPOTerms:
    """GiGPO's parts for a flat batch (turns of episode 0, then episode 1, ...).

    Attributes:
        episode_advantage: (turns,) A^E of each turn's episode (minus its invalid penalty).
        step_advantage: (turns,) A^S.
        advantage: (turns,) A^E + omega * A^S; 0 on failed episodes.
        step_group: (turns,) step-group id of each turn, -1 on failed episodes.
        n_step_groups: number of step groups.
        batch: the flat batch the terms were computed on.
    """

    episode_advantage: np.ndarray
    step_advantage: np.ndarray
    advantage: np.ndarray
    step_group: np.ndarray
    n_step_groups: int
    batch: TurnBatch


class _Kind:
    """A tag no anchor value can spell, so that an array, a dict or a set never shares a key
    with a list that happens to spell the same contents (a string tag could be spelled)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


_ARRAY, _DICT, _SET = _Kind("ndarray"), _Kind("dict"), _Kind("set")


def _hashable(anchor: Any) -> Hashable:
    """A hashable stand-in for lists, dicts, sets and arrays used as anchors (a list and a tuple
    of the same items are the same state, as after a JSON round trip)."""
    if isinstance(anchor, np.ndarray):
        return (_ARRAY, anchor.shape, tuple(anchor.ravel().tolist()))
    if isinstance(anchor, dict):
        return (_DICT, tuple(sorted((k, _hashable(v)) for k, v in anchor.items())))
    if isinstance(anchor, (set, frozenset)):
        return (_SET, frozenset(_hashable(v) for v in anchor))
    if isinstance(anchor, (list, tuple)):
        return tuple(_hashable(v) for v in anchor)
    return anchor


def _similar(a: str, b: str, threshold: float) -> bool:
    matcher = SequenceMatcher(None, a, b)
    # The quick ratios are upper bounds of ratio(): cheap rejections, same answer.
    return (
        matcher.real_quick_ratio() >= threshold
        and matcher.quick_ratio() >= threshold
        and matcher.ratio() >= threshold
    )


def _cluster_similar(anchors: list[Hashable], group: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster id per distinct (group, anchor) pair, merging similar text anchors in a group.

    Greedy, in first-seen order: a text anchor joins the first cluster of its group whose
    first member is similar enough, or starts a new cluster.
    """
    cluster_of = np.empty(len(anchors), dtype=np.int64)
    first_members: dict[int, list[tuple[str, int]]] = {}
    n_clusters = 0
    for pair, (g, anchor) in enumerate(zip(group.tolist(), anchors)):
        if isinstance(anchor, str):
            clusters = first_members.setdefault(g, [])
            match = next((c for first, c in clusters if _similar(anchor, first, threshold)), None)
            if match is not None:
                cluster_of[pair] = match
                continue
            clusters.append((anchor, n_clusters))
        cluster_of[pair] = n_clusters
        n_clusters += 1
    return cluster_of


def step_groups(
    episodes: Sequence[Episode],
    batch: TurnBatch,
    similarity: bool = False,
    similarity_threshold: float = 0.95,
) -> tuple[np.ndarray, int]:
    """Eq. 6: step-group id per turn, from (episode group, anchor); -1 on failed episodes.

    Turns whose anchor is None each get a group of their own.
    """
    ok = ~batch.turn_failed
    # `turn.anchor` inlined: this loop and the dict pass below are most of GiGPO's cost.
    anchors = [
        turn.info.get(ANCHOR)
        for episode in episodes
        if not episode.failed
        for turn in episode.turns
    ]
    try:
        anchor_id, distinct = factorize(anchors)
    except TypeError:  # an unhashable anchor (list, dict, array)
        anchor_id, distinct = factorize([_hashable(a) for a in anchors])
    group = batch.group[batch.episode][ok]
    missing = (
        anchor_id == distinct.index(None) if None in distinct else np.zeros(len(anchors), bool)
    )
    pair_key = group * (len(distinct) + 1) + anchor_id
    _, first_turn, pair = np.unique(pair_key[~missing], return_index=True, return_inverse=True)
    if similarity:
        seen_order = np.argsort(first_turn, kind="stable")
        turn_of_pair = np.flatnonzero(~missing)[first_turn[seen_order]]
        cluster = np.empty(len(first_turn), dtype=np.int64)
        cluster[seen_order] = _cluster_similar(
            [distinct[i] for i in anchor_id[turn_of_pair]],
            group[turn_of_pair],
            similarity_threshold,
        )
        pair = cluster[pair]
    n_paired = int(pair.max()) + 1 if len(pair) else 0
    ids_ok = np.empty(len(anchors), dtype=np.int64)
    ids_ok[~missing] = pair
    ids_ok[missing] = n_paired + np.arange(int(missing.sum()))
    ids = np.full(len(batch.rewards), -1, dtype=np.int64)
    ids[ok] = ids_ok
    return ids, n_paired + int(missing.sum())


def _check_options(
    gamma: float, normalization: str, similarity_threshold: float, episode_stats: str
) -> None:
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gigpo: gamma={gamma} must be in [0, 1] (the paper uses 0.95).")
    if not 0.0 < similarity_threshold <= 1.0:
        raise ValueError(
            f"gigpo: similarity_threshold={similarity_threshold} must be in (0, 1] (default 0.95)."
        )
    check_choice("normalization", normalization, GROUP_NORMALIZATIONS, "gigpo")
    check_choice("episode_stats", episode_stats, EPISODE_STATS, "gigpo")


def _gigpo(
    episodes: Sequence[Episode],
    turn_rewards: Sequence[np.ndarray],
    gamma: float,
    step_weight: float,
    normalization: str,
    invalid_penalty: float,
    similarity: bool,
    similarity_threshold: float,
    episode_stats: str,
    epsilon: float,
) -> GiGPOTerms:
    _check_options(gamma, normalization, similarity_threshold, episode_stats)
    batch = flatten(episodes, turn_rewards)
    ok = ~batch.turn_failed
    valid = np.array([turn.valid for episode in episodes for turn in episode.turns], dtype=bool)
    penalty = invalid_penalty * (~valid & ok)  # (turns,)
    group_of_turn = batch.group[batch.episode]

    # Eq. 3: episode relative advantage A^E.
    if episode_stats == "trajectories":
        per_episode = episode_advantages(
            batch.returns, batch.group, batch.n_groups, batch.failed, normalization, epsilon
        )
        A_E = per_episode[batch.episode] - penalty
    else:  # verl-agent's statistics over all turns of the group
        episode_score = batch.returns[batch.episode] - penalty
        A_E = np.zeros(len(batch.rewards))
        A_E[ok] = group_normalize(
            episode_score[ok], group_of_turn[ok], batch.n_groups, normalization, epsilon
        )

    # Eq. 5: discounted return of every turn.
    R_t = batch_discounted_returns(batch.rewards, batch.lengths, gamma)

    # Eq. 6: anchor-state step groups.
    step_group, n_step_groups = step_groups(episodes, batch, similarity, similarity_threshold)

    # Eq. 7: step relative advantage A^S.
    A_S = np.zeros(len(batch.rewards))
    A_S[ok] = group_normalize(
        (R_t - penalty)[ok], step_group[ok], n_step_groups, normalization, epsilon
    )

    # Eq. 8: combined advantage A = A^E + omega * A^S (both are 0 on failed episodes).
    omega = step_weight
    return GiGPOTerms(A_E, A_S, A_E + omega * A_S, step_group, n_step_groups, batch)


def gigpo_advantages(
    episodes: Sequence[Episode],
    turn_rewards: Sequence[np.ndarray],
    *,
    gamma: float = 0.95,
    step_weight: float = 1.0,
    normalization: str = "mean",
    invalid_penalty: float = 0.1,
    similarity: bool = False,
    similarity_threshold: float = 0.95,
    episode_stats: str = "trajectories",
    epsilon: float = 1e-6,
) -> list[np.ndarray]:
    """GiGPO advantage of every turn: A = A^E + omega * A^S (arXiv:2505.10978, Eqs. 3-8).

    Args:
        episodes: the batch; `group_id` forms episode groups, `turn.anchor` step groups,
            `turn.valid` marks invalid actions, `failed` episodes get 0.
        turn_rewards: one array of turn rewards r_t per episode (the summed shaper outputs).
        gamma: discount of the step-level return R_t (paper: 0.95).
        step_weight: omega, the weight of A^S (paper: 1.0).
        normalization: F_norm; ``"mean"`` (F_norm = 1, the default) or ``"mean_std"``
            (unbiased std + epsilon), at both levels.
        invalid_penalty: subtracted from both levels' score of a turn whose action was invalid
            (verl-agent: 0.1); 0 turns it off.
        similarity: group text anchors whose difflib ratio >= `similarity_threshold` with a
            cluster's first member, instead of equal anchors only.
        similarity_threshold: see `similarity` (verl-agent: 0.95).
        episode_stats: ``"trajectories"`` (paper Eq. 3) or ``"turns"`` (verl-agent's default:
            A^E's mean and std over every turn of the group).
        epsilon: added to the std.
    """
    terms = _gigpo(**locals())  # exactly this function's arguments
    _record_step_groups(episodes, terms)
    return split_by_episode(terms.advantage, terms.batch.lengths)


register_estimator("gigpo")(gigpo_advantages)


def _record_step_groups(episodes: Sequence[Episode], terms: GiGPOTerms) -> None:
    """Each turn's step group, its size and both advantage terms, for the episode viewer.

    Stored column-wise per episode (`Episode.credit_columns`: views of the batch's arrays),
    not as a dict per turn: this runs on every batch, and 51,200 small dicts cost about as
    much as computing the advantages.
    """
    group = terms.step_group
    size = np.bincount(group[group >= 0], minlength=terms.n_step_groups)
    group_size = np.where(group >= 0, size[np.maximum(group, 0)], 0) if size.size else 0 * group
    columns = {
        "step_group": group,
        "step_group_size": group_size,
        "episode_advantage": terms.episode_advantage,
        "step_advantage": terms.step_advantage,
    }
    ends = np.cumsum(terms.batch.lengths).tolist()
    for episode, start, end in zip(episodes, [0, *ends[:-1]], ends):
        episode.credit_columns["gigpo"] = {
            name: column[start:end] for name, column in columns.items()
        }


def gigpo_terms(
    episodes: Sequence[Episode], turn_rewards: Sequence[np.ndarray], **options: Any
) -> GiGPOTerms:
    """A^E, A^S, A and the step groups as flat arrays; options and defaults as
    `gigpo_advantages`."""
    arguments = inspect.signature(gigpo_advantages).bind(episodes, turn_rewards, **options)
    arguments.apply_defaults()
    return _gigpo(**arguments.arguments)

"""Tree advantage: a turn's credit is how much its action moved the mean outcome of the leaves.

In the style of the tree-search RL methods for LLMs, TreeRL (Hou et al., arXiv:2506.11902,
Sec. 3), TreePO and BranchGRPO, which branch rollouts and score a step by the outcomes of the
complete rollouts (leaves) below it. Within a group (episodes from the same start state of a
deterministic env) a **node** is a sequence of actions from the start; every episode is a path
from the root (the empty sequence) to its leaf (all its actions). With R(tau) the episode's
return (the sum of its turn rewards, undiscounted) and L(n) the episodes passing through node n:

    V(n)           = mean_{tau in L(n)} R(tau)                   (a node's value: its leaves' mean)
    A_t(tau)       = V(a_1..a_t) - V(a_1..a_t-1)                 (the child after a_t minus the node
                                                                  before it: TreeRL's local term)
    + global_weight * (V(a_1..a_t) - V(root))                    (TreeRL's global term; off by
                                                                  default)

A turn whose node has one child (every episode through it took the same action) gets 0: its
action was not compared with anything. On a plain batch of independent episodes only the first
turns where episodes of a group diverge get credit; branch rollouts (``rollout.branch.mode=
tree``, `creditgym.rollout.branching`) add continuations that share a prefix with their parent
and so make later nodes branch too. ``normalization="mean_std"`` then standardises the
advantages over the batch's trained turns.
"""

# Where we differ from the papers (all in one place):
# 1. Node values are means of the whole episode's return, not of a 0/1 outcome; with the env's
#    own sparse success reward the two agree. Since a node's leaves share its prefix (and its
#    rewards, in a deterministic env), V(child) - V(node) equals r_t + V'(child) - V'(node) with
#    V' the mean return-to-go.
# 2. Nodes are action sequences (`turn.action`), so two responses that parse to the same action
#    share a node (the env reaches the same state); TreeRL's nodes are token segments.
# 3. TreeRL's process signal is (GA + LA) / sqrt(|L(n)|); we default to the local term LA alone
#    (global_weight=0) and offer the 1/sqrt(|L|) scaling as `leaf_scaling`.
# 4. Failed episodes are no leaves and get 0. Copied prefix turns of branch continuations
#    (`Episode.copied_turns`) are leaves' paths like any other, but are left out of the
#    normalisation statistics (the trainer does not train them again).

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from creditgym.credit.batch import check_choice
from creditgym.credit.registry import register_estimator
from creditgym.trajectory import Episode

__all__ = ["tree_advantages", "tree_values", "normalize_trained_turns", "TREE_NORMALIZATIONS"]

TREE_NORMALIZATIONS: tuple[str, ...] = ("none", "mean_std")


class _Node:
    """A node of a group's action trie: the return sum and count of the leaves through it."""

    __slots__ = ("total", "leaves", "children")

    def __init__(self) -> None:
        self.total = 0.0
        self.leaves = 0
        self.children: dict[str, _Node] = {}

    @property
    def value(self) -> float:
        return self.total / self.leaves


def tree_values(
    episodes: Sequence[Episode], turn_rewards: Sequence[np.ndarray]
) -> list[list[tuple[float, float, int, float]]]:
    """Per episode, per turn: (V(node before a_t), V(child after a_t), leaves through the child,
    V(root)); empty for failed episodes."""
    roots: dict[Hashable, _Node] = {}
    paths: list[list[_Node]] = []
    for episode, rewards in zip(episodes, turn_rewards):
        if episode.failed:
            paths.append([])
            continue
        node = roots.setdefault(episode.group_id, _Node())
        path = [node]
        for turn in episode.turns:
            node = node.children.setdefault(turn.action, _Node())
            path.append(node)
        episode_return = float(np.sum(rewards))
        for node in path:
            node.total += episode_return
            node.leaves += 1
        paths.append(path)
    return [
        [
            (path[t].value, path[t + 1].value, path[t + 1].leaves, path[0].value)
            for t in range(len(path) - 1)
        ]
        for path in paths
    ]


def normalize_trained_turns(
    episodes: Sequence[Episode], advantages: list[np.ndarray], epsilon: float
) -> list[np.ndarray]:
    """(A - mean) / (std + epsilon) with the mean and (population) std over the turns the update
    trains: those of non-failed episodes after any copied prefix."""
    trained = [
        a[episode.copied_turns :] for episode, a in zip(episodes, advantages) if not episode.failed
    ]
    pooled = np.concatenate(trained) if trained else np.zeros(0)
    if pooled.size == 0:
        return advantages
    mean, std = float(pooled.mean()), float(pooled.std())
    return [
        np.zeros_like(a) if episode.failed else (a - mean) / (std + epsilon)
        for episode, a in zip(episodes, advantages)
    ]


def tree_advantages(
    episodes: Sequence[Episode],
    turn_rewards: Sequence[np.ndarray],
    *,
    global_weight: float = 0.0,
    leaf_scaling: bool = False,
    normalization: str = "none",
    epsilon: float = 1e-6,
) -> list[np.ndarray]:
    """Tree advantage of every turn (see the module docstring).

    Args:
        episodes: the batch; `group_id` forms the trees, `turn.action` the nodes, `failed`
            episodes get 0. Needs a deterministic env (the same actions reach the same state).
        turn_rewards: one array of turn rewards per episode; a leaf's outcome is their sum.
        global_weight: weight of TreeRL's global term V(child) - V(root) (TreeRL: 1).
        leaf_scaling: divide by sqrt(leaves through the child), as TreeRL does.
        normalization: ``"none"`` (default) or ``"mean_std"`` over the batch's trained turns.
        epsilon: added to the std.
    """
    check_choice("normalization", normalization, TREE_NORMALIZATIONS, "tree")
    advantages = []
    for episode, terms in zip(episodes, tree_values(episodes, turn_rewards)):
        advantage = np.zeros(len(episode.turns))
        for t, (value, child_value, leaves, root_value) in enumerate(terms):
            advantage[t] = child_value - value + global_weight * (child_value - root_value)
            if leaf_scaling:
                advantage[t] /= np.sqrt(leaves)
            episode.turns[t].credit_details["tree"] = {
                "value": value,
                "child_value": child_value,
                "child_leaves": leaves,
            }
        advantages.append(advantage)
    if normalization == "mean_std":
        advantages = normalize_trained_turns(episodes, advantages, epsilon)
    return advantages


register_estimator("tree")(tree_advantages)

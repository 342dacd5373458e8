"""Episode builders shared by the credit tests (imported as `test_credit_helpers`)."""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Sequence

from creditgym.trajectory import Episode, Turn

_fresh = itertools.count()


def episode(
    rewards: Sequence[float],
    anchors: Sequence[Hashable] | None = None,
    group: Hashable = 0,
    valid: Sequence[bool] | None = None,
    failed: bool = False,
) -> Episode:
    """An episode with these turn rewards, anchors (default: never repeated) and valid flags."""
    anchors = list(anchors) if anchors is not None else [f"fresh-{next(_fresh)}" for _ in rewards]
    valid = list(valid) if valid is not None else [True] * len(rewards)
    assert len(anchors) == len(rewards) == len(valid)
    turns = [
        Turn(
            observation=f"obs {t}",
            action=f"act {t}",
            reward=float(r),
            info={"anchor": a},
            valid=bool(v),
        )
        for t, (r, a, v) in enumerate(zip(rewards, anchors, valid))
    ]
    return Episode(turns=turns, group_id=group, failed=failed)


def test_default_anchors_never_repeat():
    a, b = episode([0, 0]), episode([0, 0])
    anchors = [turn.anchor for ep in (a, b) for turn in ep.turns]
    assert len(set(anchors)) == 4

"""The shared episode builder (`conftest.episode`) behaves as the credit tests assume."""

from __future__ import annotations

from conftest import episode


def test_default_anchors_never_repeat():
    a, b = episode([0, 0]), episode([0, 0])
    anchors = [turn.anchor for ep in (a, b) for turn in ep.turns]
    assert len(set(anchors)) == 4

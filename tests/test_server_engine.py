"""`FairTurns`, the first-come first-served lock that shares the served model between requests."""

from __future__ import annotations

import threading
import time

import pytest

from creditgym.agents.serve.engine import DeadlinePassed, FairTurns


def test_a_thread_that_asks_again_waits_behind_those_already_waiting():
    turns, order = FairTurns(), []
    far = time.monotonic() + 10

    def greedy() -> None:  # takes three turns back to back, as a long generation does
        for slice_ in range(3):
            with turns.turn(far):
                order.append(f"long{slice_}")
                time.sleep(0.05)

    def short(name: str) -> None:
        with turns.turn(far):
            order.append(name)

    first = threading.Thread(target=greedy)
    first.start()
    time.sleep(0.02)  # the long one holds its first turn
    others = [threading.Thread(target=short, args=(f"short{i}",)) for i in range(2)]
    for thread in others:
        thread.start()
        time.sleep(0.005)  # ask in a known order
    for thread in [first, *others]:
        thread.join(timeout=5)
    assert order[:3] == ["long0", "short0", "short1"]
    assert order[3:] == ["long1", "long2"]


def test_waiting_past_the_deadline_raises_and_leaves_the_queue():
    turns = FairTurns()
    release = threading.Event()

    def holder() -> None:
        with turns.turn(time.monotonic() + 10):
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    time.sleep(0.02)
    started = time.monotonic()
    with pytest.raises(DeadlinePassed):
        with turns.turn(time.monotonic() + 0.2):
            pass
    assert 0.15 < time.monotonic() - started < 1.0
    release.set()
    thread.join(timeout=5)
    with turns.turn(time.monotonic() + 1):  # the timed-out ticket does not block the next one
        pass

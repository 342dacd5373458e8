"""A process-wide pool of idle Java game engines (ScienceWorld, TextWorldExpress).

Each engine is a JVM started by py4j (0.3-3 s); every env holds one while it lives, since an
engine plays one game at a time. `close()` gives the engine back here instead of shutting the
JVM down, so the next env of the same kind in this process starts at once (tests, evaluation
and benchmarks build many envs one after another). Engines left in the pool are shut down
when Python exits. A JVM that died is never handed out again.
"""

from __future__ import annotations

import atexit
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

__all__ = ["acquire", "release", "shutdown_idle"]

_idle: dict[str, list[Any]] = defaultdict(list)
_lock = threading.Lock()


def _alive(engine: Any) -> bool:
    process = getattr(getattr(engine, "_gateway", None), "java_process", None)
    return process is not None and process.poll() is None


def acquire(kind: str, start: Callable[[], Any]) -> Any:
    """An idle live engine of `kind` from the pool, or a new one from `start()`."""
    with _lock:
        while _idle[kind]:
            engine = _idle[kind].pop()
            if _alive(engine):
                return engine
    return start()


def release(kind: str, engine: Any) -> None:
    """Give `engine` back to the pool of `kind` (a dead one is dropped)."""
    if _alive(engine):
        with _lock:
            _idle[kind].append(engine)


def shutdown_idle() -> None:
    """Shut down every pooled engine (done at exit; the pool refills on demand)."""
    with _lock:
        engines = [engine for pool in _idle.values() for engine in pool]
        _idle.clear()
    for engine in engines:
        try:
            engine.close()
        except Exception:  # a JVM already gone: nothing to shut down
            pass


atexit.register(shutdown_idle)

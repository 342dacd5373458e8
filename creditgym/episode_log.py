"""Episodes on disk: a sample of each iteration's episodes, every turn with its rewards and credit.

Training appends whole groups of episodes (``run.log_episodes`` episodes per iteration, rounded
up to whole tasks so that the G episodes of a task are always logged together) to
``episodes.jsonl`` in the run directory; ``creditgym eval --save-episodes PATH`` writes the same
format. ``creditgym view`` shows these files in a browser; any other tool can read them as
JSON Lines.

**Schema, version 1.** One JSON object per line, one line per episode (per agent in multi-agent
envs). Floats that are not finite are written as ``null``. Fields:

==================  ===================================================================
``schema_version``  ``1``; a reader should skip records with a version it does not know
``source``          ``"train"`` or ``"eval"``
``iteration``       training iteration (1-based) the episode was collected in; ``null`` in eval
``policy``          who acted: ``"policy"`` in training, the agent spec in eval (``expert``, ...)
``env_id``          registered env id
``task_id``         ``"<split>:<seed>"``
``group_id``        the episode group (episodes that began from the same state), a JSON value
``agent_id``        the agent's name (``"agent"`` in single-agent envs)
``task``            the instruction the agent saw
``task_type``       the task family (may be ``""``)
``split``, ``seed`` where the task came from
``success``         the env's ``won`` flag at the end
``terminated``, ``truncated``, ``failed``  how the episode ended (``failed``: env crash)
``error``           why it failed, or ``null``
``failure``         the reason it failed (``error``, ``crash``, ``timeout``, ``garbage`` or
                    ``memory``: `creditgym.rollout.failures`), or ``null``
``return``          undiscounted sum of the env's rewards
``length``          number of turns
``score``           the env's graded score where it has one (WebShop), else ``null``
``final_observation``  the observation after the last turn
``estimator``       the advantage estimator's name, ``null`` in eval
``shapers``         the turn-reward shapers' names, in config order
``turns``           list of turn records (below)
==================  ===================================================================

Each turn: ``t`` (0-based), ``observation`` (what the decision was made on), ``action``,
``response`` (the policy's raw output), ``valid``, ``reward`` (the env's), ``shaper_rewards``
(``{shaper name: its turn reward}``), ``turn_reward`` (their sum, what the estimator read),
``advantage`` (``null`` in eval), ``anchor`` (the env's state key as text, ``null`` if none),
``step_group`` and ``step_group_size`` (the turns of the same episode group with the same
anchor: the estimator's own step groups when it leaves them in ``credit``, else equal
anchors; ids are unique within one iteration), ``cost_to_go``, ``next_cost_to_go`` and ``progress``
(the env's oracle progress label, ``null`` where it has none) and ``credit``: each credit module's
diagnostics under its registered name (e.g. a judge's verdicts on subgoals, information gains with
the scores before and after, decoded latent factors, an estimator's step groups and advantage
terms). Prompts and token ids are not logged.

**Bounded.** When a file would grow past ``max_bytes`` (``run.log_episodes_max_mb``) it is
renamed ``episodes.1.jsonl`` (replacing an older one) and a fresh file begins: at most twice
the cap on disk, the newest episodes always kept.

**Crash-safe enough.** Each record is one ``write`` of one line, flushed at once; a run killed
mid-write leaves at most a torn last line, which readers (`read_records`, the viewer) skip. A
resumed run first drops the records of the iterations it is about to redo. A failing disk
never stops training: the error is reported once and logging stops.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from creditgym.trajectory import Episode

__all__ = [
    "SCHEMA_VERSION",
    "EPISODES_FILE",
    "EpisodeWriter",
    "EpisodeLog",
    "episode_record",
    "sample_tasks",
    "read_records",
    "jsonable",
]

SCHEMA_VERSION = 1
EPISODES_FILE = "episodes.jsonl"
DEFAULT_MAX_BYTES = 64 * 2**20


def jsonable(value: Any) -> Any:
    """`value` as plain JSON: numpy to Python, tuples to lists, non-finite floats to None,
    anything else unknown to its repr (LLM text and env infos are logged, never trusted)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v) for v in items]
    return repr(value)


def _anchor_text(anchor: Any) -> str | None:
    if anchor is None:
        return None
    return anchor if isinstance(anchor, str) else json.dumps(jsonable(anchor))


def _float(value: Any) -> float | None:
    return None if value is None else jsonable(float(value))


def episode_record(
    episode: Episode,
    *,
    source: str = "train",
    iteration: int | None = None,
    policy: str = "policy",
    shaper_rewards: Mapping[str, np.ndarray] | None = None,
    advantages: Sequence[float] | None = None,
    estimator: str | None = None,
) -> dict[str, Any]:
    """One episode as a schema-version-1 record (see the module docstring).

    Args:
        episode: the episode.
        source: ``"train"`` or ``"eval"``.
        iteration: the training iteration, None in eval.
        policy: who acted.
        shaper_rewards: each shaper's turn rewards for this episode; default the env's only.
        advantages: the per-turn advantages; None where no credit was assigned.
        estimator: the advantage estimator's name.
    """
    if shaper_rewards is None:
        shaper_rewards = {"env": [turn.reward for turn in episode.turns]}
    turns = []
    for t, turn in enumerate(episode.turns):
        shaped = {name: _float(rewards[t]) for name, rewards in shaper_rewards.items()}
        turns.append(
            {
                "t": t,
                "observation": turn.observation,
                "action": turn.action,
                "response": turn.response,
                "valid": bool(turn.valid),
                "reward": _float(turn.reward),
                "shaper_rewards": shaped,
                "turn_reward": _float(
                    sum(float(rewards[t]) for rewards in shaper_rewards.values())
                ),
                "advantage": None if advantages is None else _float(advantages[t]),
                "anchor": _anchor_text(turn.anchor),
                "step_group": None,
                "step_group_size": None,
                "cost_to_go": turn.cost_to_go,
                "next_cost_to_go": turn.next_cost_to_go,
                "progress": turn.progress,
                "credit": jsonable(episode.turn_credit_details(t)),
            }
        )
    metadata = episode.metadata
    return {
        "schema_version": SCHEMA_VERSION,
        "source": source,
        "iteration": iteration,
        "policy": policy,
        "env_id": episode.env_id,
        "task_id": episode.task_id,
        "group_id": jsonable(episode.group_id),
        "agent_id": episode.agent_id,
        "task": str(metadata.get("task", "")),
        "task_type": episode.task_type,
        "split": metadata.get("split", ""),
        "seed": jsonable(metadata.get("seed")),
        "success": bool(episode.success),
        "terminated": bool(episode.terminated),
        "truncated": bool(episode.truncated),
        "failed": bool(episode.failed),
        "error": metadata.get("error"),
        "failure": (metadata.get("failure") or "error") if episode.failed else None,
        "return": _float(episode.episode_return),
        "length": len(episode.turns),
        "score": _float(metadata["score"]) if "score" in metadata else None,
        "final_observation": episode.turns[-1].next_observation if episode.turns else "",
        "estimator": estimator,
        "shapers": list(shaper_rewards),
        "turns": turns,
    }


def assign_step_groups(records: Sequence[dict[str, Any]]) -> None:
    """Fill each turn's ``step_group`` / ``step_group_size`` (in place), from a credit
    module's own groups where one left them in the turn's credit (a ``step_group`` >= 0 with
    its ``step_group_size``), else from equal anchors in a group."""
    keys: dict[tuple[str, str], int] = {}
    sizes: dict[int, int] = {}
    for record in records:
        group = json.dumps(record["group_id"])
        for turn in record["turns"]:
            own = _own_step_group(turn["credit"])
            if own is not None:
                turn["step_group"], turn["step_group_size"] = own
                continue
            if turn["anchor"] is None or record["failed"]:
                continue
            turn["step_group"] = keys.setdefault((group, turn["anchor"]), -1 - len(keys))
            sizes[turn["step_group"]] = sizes.get(turn["step_group"], 0) + 1
    # anchor-based ids are negative so they never clash with a module's in the same iteration
    for record in records:
        for turn in record["turns"]:
            if turn["step_group"] is not None and turn["step_group_size"] is None:
                turn["step_group_size"] = sizes[turn["step_group"]]


def _own_step_group(credit: dict[str, Any]) -> tuple[int, int] | None:
    """The first step group a credit module recorded for this turn, as (id, size)."""
    for details in credit.values():
        if isinstance(details, dict) and details.get("step_group", -1) >= 0:
            return details["step_group"], details["step_group_size"]
    return None


def sample_tasks(episodes: Sequence[Episode], count: int, seed: int | Sequence[int]) -> list[int]:
    """Indices of the episodes of randomly chosen whole tasks, about `count` episodes.

    Tasks (``task_id``: all G episodes of a group, all agents of a multi-agent rollout) are
    taken in a random order until `count` episodes are reached; at least one task when
    `count` > 0. `seed` only feeds this choice, never the run's own random streams.
    """
    if count <= 0 or not episodes:
        return []
    by_task: dict[str, list[int]] = {}
    for index, episode in enumerate(episodes):
        by_task.setdefault(episode.task_id, []).append(index)
    tasks = list(by_task.values())
    chosen: list[int] = []
    for task in np.random.default_rng(seed).permutation(len(tasks)).tolist():
        if chosen and len(chosen) + len(tasks[task]) > count:
            break
        chosen += tasks[task]
    return sorted(chosen)


class EpisodeWriter:
    """Appends records to a JSON Lines file, one flushed line each, rotating at `max_bytes`."""

    def __init__(self, path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = Path(path)
        self.max_bytes = int(max_bytes)
        self.broken: str | None = None  # the error that stopped logging

    @property
    def rotated_path(self) -> Path:
        """Where the previous file goes when this one is full: ``episodes.1.jsonl``."""
        return self.path.with_name(f"{self.path.stem}.1{self.path.suffix or '.jsonl'}")

    def write(self, records: Iterable[dict[str, Any]]) -> int:
        """Append `records`; returns how many were written (0 once the disk has failed)."""
        if self.broken is not None:
            return 0
        written = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for record in records:
                line = (json.dumps(record, allow_nan=False, ensure_ascii=False) + "\n").encode()
                size = self.path.stat().st_size if self.path.exists() else 0
                if size and size + len(line) > self.max_bytes:
                    os.replace(self.path, self.rotated_path)
                with self.path.open("ab") as f:  # one write, flushed on close
                    f.write(line)
                written += 1
        except (OSError, ValueError) as error:
            self.broken = f"{type(error).__name__}: {error}"
            warnings.warn(
                f"episode log {self.path}: {self.broken}; episodes are no longer logged "
                "(training goes on)",
                stacklevel=2,
            )
        return written

    def drop_from_iteration(self, iteration: int) -> None:
        """Remove records of `iteration` and later (a resumed run redoes those iterations)."""
        for path in (self.rotated_path, self.path):
            if not path.exists():
                continue
            kept = [
                r for r in read_records(path) if (r.get("iteration") or 0) < iteration
            ]  # torn or bad lines go too
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
            os.replace(tmp, path)


class EpisodeLog:
    """The trainer's episode log: a sample of every iteration's episodes with their credit.

    Args:
        run_dir: the run directory (``episodes.jsonl`` goes there).
        per_iteration: about how many episodes to log per iteration (whole tasks); 0 = none.
        max_mb: rotate the file at this size (see the module docstring).
        seed: seeds the choice of tasks (with the iteration), apart from the run's streams.
        enabled: False on every process but rank 0.
    """

    def __init__(
        self,
        run_dir: str | Path,
        per_iteration: int,
        *,
        max_mb: float = DEFAULT_MAX_BYTES / 2**20,
        seed: int = 0,
        enabled: bool = True,
    ) -> None:
        self.writer = EpisodeWriter(Path(run_dir) / EPISODES_FILE, int(max_mb * 2**20))
        self.per_iteration = per_iteration
        self.seed = seed
        self.enabled = enabled and per_iteration > 0
        self._checked_resume = False

    def log(self, iteration: int, episodes: Sequence[Episode], credit: Any) -> int:
        """Log a sample of `episodes` with `credit` (an `assign_credit` breakdown, read for its
        ``shaper_rewards``, ``advantages`` and ``estimator``); returns the records written."""
        if not self.enabled:
            return 0
        try:
            return self._log(iteration, episodes, credit)
        except Exception as error:  # a logging bug must never end a run: report it, stop logging
            self.enabled = False
            warnings.warn(
                f"episode log: {type(error).__name__}: {error}; episodes are no longer logged "
                "(training goes on)",
                stacklevel=2,
            )
            return 0

    def _log(self, iteration: int, episodes: Sequence[Episode], credit: Any) -> int:
        if not self._checked_resume:  # a resumed run rewrites what the crashed one logged
            self._checked_resume = True
            try:
                self.writer.drop_from_iteration(iteration)
            except OSError as error:
                warnings.warn(f"episode log: could not trim on resume: {error}", stacklevel=2)
        chosen = sample_tasks(episodes, self.per_iteration, seed=[self.seed, iteration])
        records = [
            episode_record(
                episodes[i],
                source="train",
                iteration=iteration,
                shaper_rewards={name: r[i] for name, r in credit.shaper_rewards.items()},
                advantages=credit.advantages[i],
                estimator=credit.estimator,
            )
            for i in chosen
        ]
        assign_step_groups(records)
        return self.writer.write(records)


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of an episode file, skipping lines that are torn or not JSON objects."""
    with Path(path).open("rb") as f:
        for line in f:
            if not line.endswith(b"\n"):  # a torn last line of a killed run
                return
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record

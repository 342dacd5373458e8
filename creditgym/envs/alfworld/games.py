"""Finding ALFWorld's official games on disk, the way ``alfworld`` itself finds them.

``alfworld-download`` puts the games in ``$ALFWORLD_DATA`` (default ``~/.cache/alfworld``,
`alfworld.info`): ``json_2.1.1/{train,valid_seen,valid_unseen}/<task>/<trial>/`` holds a
``traj_data.json`` and a ``game.tw-pddl`` per game. Like ``AlfredTWEnv.collect_game_files`` this
keeps the games of the six TextWorld task types whose ``game.tw-pddl`` says ``solvable``, and
skips the movable-receptacle and sliced ones ALFWorld does not support. Unlike it, the list is
sorted, so game ``n`` of a split is the same game on every machine.

Everything read from disk is treated as untrusted: a folder that is missing, a file that is not
JSON or lacks the keys, is left out or reported in one line naming the path.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

from creditgym.envs.alfworld.offline import TASK_TYPES
from creditgym.envs.optional import MissingGameData

__all__ = ["OFFICIAL_SPLITS", "MissingGameData", "alfworld_data_dir", "official_games"]

#: ALFWorld's splits: the held-out ones are those the papers report on.
OFFICIAL_SPLITS = ("train", "valid_seen", "valid_unseen")
#: The folder of ALFWorld's games inside its data folder.
GAMES_FOLDER = "json_2.1.1"
#: Largest ``game.tw-pddl`` read (official ones are well under 1 MB).
MAX_GAME_BYTES = 16 * 2**20


def alfworld_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """`data_dir`, else ``$ALFWORLD_DATA``, else ``~/.cache/alfworld`` (as `alfworld.info`)."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    return Path(os.environ.get("ALFWORLD_DATA") or Path.home() / ".cache" / "alfworld")


def official_games(
    split: str, data_dir: str | os.PathLike | None = None, task_types: tuple[str, ...] = TASK_TYPES
) -> list[Path]:
    """The sorted ``game.tw-pddl`` paths of `split` that ALFWorld would play.

    Raises:
        ValueError: `split` is not one of `OFFICIAL_SPLITS`.
        MissingGameData: the split's folder is missing or holds no playable game.
    """
    if split not in OFFICIAL_SPLITS:
        raise ValueError(f"unknown ALFWorld split {split!r}; expected one of {OFFICIAL_SPLITS}")
    root = alfworld_data_dir(data_dir) / GAMES_FOLDER / split
    games = [g for g in _solvable_games(root.resolve()) if _task_type(g) in task_types]
    if not games:
        found = "holds no solvable game.tw-pddl" if root.is_dir() else "is missing"
        raise MissingGameData(
            f"ALFWorld's {split!r} games were not found: {root} {found}. Download them with "
            "`alfworld-download` (writes to $ALFWORLD_DATA, default ~/.cache/alfworld), or set "
            "ALFWORLD_DATA / data_dir= to the folder holding json_2.1.1; "
            "creditgym/ALFWorldOffline-v0 plays generated games without any download"
        )
    return games


_found: dict[Path, tuple[Path, ...]] = {}


def _solvable_games(root: Path) -> tuple[Path, ...]:
    """Every solvable, supported game under `root`, remembered once found (the train split has
    thousands; a split found empty is looked for again, say after a download)."""
    if root in _found:
        return _found[root]
    games = []
    for traj_file in sorted(root.glob("*/*/traj_data.json")) if root.is_dir() else ():
        folder = traj_file.parent
        if "movable" in str(folder) or "Sliced" in str(folder):
            continue  # ALFWorld skips these too
        game_file = folder / "game.tw-pddl"
        if game_file.is_file() and _is_solvable(game_file):
            games.append(game_file)
    if games:
        _found[root] = tuple(games)
    return tuple(games)


def _is_solvable(game_file: Path) -> bool:
    try:
        if game_file.stat().st_size > MAX_GAME_BYTES:
            return False
        data = json.loads(game_file.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("solvable") is True


@functools.cache
def _task_type(game_file: Path) -> str | None:
    try:
        traj = json.loads((game_file.parent / "traj_data.json").read_text())
    except (OSError, ValueError):
        return None
    task_type = traj.get("task_type") if isinstance(traj, dict) else None
    return task_type if isinstance(task_type, str) else None

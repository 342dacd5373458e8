"""`creditgym envs` (the registered environments) and `creditgym play` (one, in the terminal)."""

from __future__ import annotations

import argparse

from creditgym.cli.common import make_console

__all__ = ["cmd_envs", "cmd_play"]


def cmd_envs(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from creditgym.envs.registry import describe, list_envs

    table = Table(title="registered creditgym environments")
    table.add_column("id")
    table.add_column("description")
    for env_id in list_envs():
        table.add_row(escape(env_id), escape(describe(env_id)))  # descriptions hold [extras]
    make_console().print(table)
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    from creditgym.play import play

    return play(args.env, seed=args.seed, split=args.split)

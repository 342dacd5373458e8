"""The `creditgym` command line: `main` parses the arguments (`parser.build_parser`) and runs
the subcommand's handler, which lives with its group: `envs` (envs, play), `evaluate` (eval),
`train` (train, config show, export), `serve` (serve, serve-env), `reports` (credit-report,
judge-eval, view); `common` is what they share. A configuration mistake or a back-end that is
not installed is one `error: ...` line on stderr (exit status 2), not a traceback; a bug in
creditgym (a failing import of its own, a bare dict or list look-up) keeps its traceback."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from creditgym.cli.parser import build_parser

__all__ = ["main", "build_parser"]


def main(argv: Sequence[str] | None = None) -> int:
    from gymnasium.error import Error as GymnasiumError

    from creditgym.train.disk import DiskFullError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except DiskFullError as error:  # one line: which path, and that a rerun resumes
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (ValueError, LookupError, FileNotFoundError, GymnasiumError) as error:
        if type(error) in (KeyError, IndexError):
            # a bare look-up failing inside a command ("error: 'use desklamp 1'") is a bug, not
            # the user's input: show where it happened (input errors carry their own messages
            # as ValueError, or as a library's own LookupError like omegaconf's ConfigKeyError)
            raise
        # Configuration mistakes (unknown env id, config key, agent name): one clear line on
        # stderr, no trace, never wrapped (plain print: messages may hold [brackets]).
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    except ImportError as error:
        if (error.name or "").startswith("creditgym"):
            raise  # our own module failing to import is a bug: show its traceback
        # an optional back-end that is not installed; the message says what to install
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2

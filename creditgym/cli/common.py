"""What the command handlers share: the console they print to and `--env-kwarg` parsing."""

from __future__ import annotations

import sys

__all__ = ["make_console", "parse_kv"]


def make_console():
    from rich.console import Console

    # Piped output (CI logs, files) gets a wide console so result tables are not squeezed.
    return Console(width=None if sys.stdout.isatty() else 140)


def parse_kv(item: str) -> tuple[str, object]:
    import yaml  # installed with omegaconf

    if "=" not in item:
        raise SystemExit(f"--env-kwarg {item!r} must look like key=value")
    key, value = item.split("=", 1)
    return key, yaml.safe_load(value)

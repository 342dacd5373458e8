"""The config schema as text: every field's type, default, allowed values and help, and a
resolved config as YAML with that help beside each value.

Printed by `creditgym train --help-config` and `creditgym config show FILE [key=value ...]`.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator
from typing import Any

import yaml

from creditgym.config import Config, allowed_values

__all__ = ["describe_fields", "annotated_yaml"]


def _type_name(hint: Any) -> str:
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return (
        str(hint)
        .replace("typing.", "")
        .replace("creditgym.config_schema.", "")
        .replace("creditgym.config.", "")
    )


def _flow(value: Any) -> str:
    """`value` as one line of YAML (flow style)."""
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    elif isinstance(value, list):
        value = [dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for v in value]
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False)
    return text.removesuffix("\n...\n").strip()


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[misc]


def _leaves(schema: type, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field, Any, int]]:
    """(dotted key, field, type, depth) of every field, sections before their fields."""
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        yield f"{prefix}{f.name}", f, hints[f.name], prefix.count(".")
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _leaves(hints[f.name], f"{prefix}{f.name}.")


def describe_fields() -> str:
    """Every config field: ``key: type = default  (allowed)`` and its help on the next line."""
    lines = ["Config fields (set them in a YAML file or as key=value on the command line)."]
    for key, f, hint, _ in _leaves(Config):
        if dataclasses.is_dataclass(hint):
            lines += ["", f"{key}:  {f.metadata.get('help', '')}"]
            continue
        allowed = allowed_values(f.metadata)
        bounds = f"  ({allowed})" if allowed else ""
        lines.append(f"  {key}: {_type_name(hint)} = {_flow(_default(f))}{bounds}")
        lines.append(f"      {f.metadata.get('help', '')}")
    lines += [
        "",
        "A section merges key by key across the file and the overrides; a field's value, a dict",
        "or a list included, replaces the earlier one whole (credit.estimator='{name: grpo}').",
        "Address one entry of a dict field to change only it: env.kwargs.max_steps=6.",
    ]
    return "\n".join(lines)


def annotated_yaml(config: Any, indent: int = 0) -> str:
    """`config` as YAML, each field followed by a comment with its type, allowed values and help.

    The text loads back (`load_config`) to the same config.
    """
    lines = []
    hints = typing.get_type_hints(type(config))
    pad = "  " * indent
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        help_text = f.metadata.get("help", "")
        if dataclasses.is_dataclass(value):
            lines.append(f"{pad}{f.name}:  # {help_text}")
            lines.append(annotated_yaml(value, indent + 1))
            continue
        allowed = allowed_values(f.metadata)
        note = f"{_type_name(hints[f.name])}{f', {allowed}' if allowed else ''}"
        default = _default(f)
        if value != default:
            note += f", default {_flow(default)}"
        lines.append(f"{pad}{f.name}: {_flow(value)}  # {note}: {help_text}")
    return "\n".join(lines)

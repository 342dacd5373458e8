"""Structured run configs: the schema (`creditgym.config_schema`, re-exported here), YAML files
in `configs/`, and `key=value` command-line overrides, all validated before a run starts.

    cfg = load_config("configs/quickstart.yaml", ["train.iterations=5", "run.seed=1"])

An unknown key, a wrong type or a value outside a field's choices raises `ConfigError`
naming the key, where it came from (the file or the command line) and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from creditgym.config_schema import (
    MAX_EPISODES_PER_ITERATION,
    BranchConfig,
    Config,
    ConfigError,
    CreditConfig,
    CurriculumStage,
    EnvConfig,
    EvalConfig,
    LoraConfig,
    PolicyConfig,
    RolloutConfig,
    RunConfig,
    SFTConfig,
    TinyModelConfig,
    TrainConfig,
)

__all__ = [
    "Config",
    "CurriculumStage",
    "EnvConfig",
    "PolicyConfig",
    "TinyModelConfig",
    "LoraConfig",
    "RolloutConfig",
    "BranchConfig",
    "CreditConfig",
    "TrainConfig",
    "SFTConfig",
    "EvalConfig",
    "RunConfig",
    "ConfigError",
    "load_config",
    "validate",
    "check_runnable",
    "allowed_values",
    "to_yaml",
]


def _hints(schema: type) -> dict[str, Any]:
    """The resolved type of each field of a schema (its annotations are strings)."""
    return typing.get_type_hints(schema)


def _check_keys(values: Any, schema: type, where: str, prefix: str = "") -> None:
    """Reject keys the schema does not have, naming the closest valid ones."""
    if not isinstance(values, dict):
        return
    fields = {f.name: f for f in dataclasses.fields(schema)}
    hints = _hints(schema)
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" Did you mean '{prefix}{close[0]}'?" if close else ""
            raise ConfigError(
                f"unknown config key '{dotted}' in {where}.{hint} "
                f"Valid keys{' under ' + prefix.rstrip('.') if prefix else ''}: "
                f"{', '.join(fields)}."
            )
        sub_schema = hints[key]
        if dataclasses.is_dataclass(sub_schema):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"config key '{dotted}' in {where} is a section; give its keys "
                    f"({', '.join(f.name for f in dataclasses.fields(sub_schema))}), not {value!r}."
                )
            _check_keys(value, sub_schema, where, f"{dotted}.")


def _given_fields(values: dict, schema: type, prefix: str = "") -> Iterator[tuple[str, Any, Any]]:
    """The (dotted key, type, value) of every field (not section) that `values` sets."""
    hints = _hints(schema)
    for key, value in values.items():
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, dict):
            yield from _given_fields(value, hints[key], f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", hints[key], value


def _merge(
    base: DictConfig,
    values: dict,
    where: str,
    sources: dict[str, str],
    addressed: str | None = None,
) -> DictConfig:
    """`values` over `base`: sections merge key by key, a field's value replaces the old one.

    A dict-valued field (``env.kwargs``, ``credit.estimator``) given whole replaces the earlier
    dict instead of merging into it, as lists do; only an override that addresses a key inside
    it (`addressed` = ``env.kwargs.max_steps``) changes that one entry.
    """
    _check_keys(values, Config, where)
    for key, hint, value in _given_fields(values, Config):
        sources[key] = where
        inside = addressed is not None and addressed.startswith(key + ".")
        if isinstance(value, dict) and typing.get_origin(hint) is dict and not inside:
            OmegaConf.update(base, key, {}, merge=False)
    try:
        return OmegaConf.merge(base, OmegaConf.create(values))
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "?"
        reason = str(error.msg).splitlines()[0]
        raise ConfigError(f"invalid value for config key '{key}' in {where}: {reason}") from None


def allowed_values(metadata: Mapping[str, Any]) -> str | None:
    """What a field's metadata allows, in words ("an integer >= 1"), or None if anything goes."""
    if "choices" in metadata:
        return "one of " + ", ".join(str(choice) for choice in field_choices(metadata))
    bounds = []
    if "min" in metadata:
        bounds.append(f">= {metadata['min']}")
    if "above" in metadata:
        bounds.append(f"> {metadata['above']}")
    if "max" in metadata:
        bounds.append(f"<= {metadata['max']}")
    return " and ".join(bounds) or None


def field_choices(metadata: Mapping[str, Any]) -> tuple[Any, ...]:
    """A field's choices; a callable is asked each time (registries may grow after import)."""
    choices = metadata["choices"]
    return tuple(choices() if callable(choices) else choices)


def _in_range(value: Any, metadata: Mapping[str, Any]) -> bool:
    if "choices" in metadata and value not in field_choices(metadata):
        return False
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return True
    if not math.isfinite(value):  # NaN compares False with every bound; inf runs forever
        return not {"min", "max", "above"} & set(metadata)
    return not (
        ("min" in metadata and value < metadata["min"])
        or ("above" in metadata and value <= metadata["above"])
        or ("max" in metadata and value > metadata["max"])
    )


def validate(config: Any, sources: Mapping[str, str] | None = None, prefix: str = "") -> None:
    """Check every field against the choices and ranges its schema declares.

    Raises `ConfigError` naming the first offending key, where it was set (from `sources`,
    dotted key -> "the file x.yaml" / "the command-line override ..."), and what is allowed.
    """
    sources = sources or {}
    for f in dataclasses.fields(config):
        key, value = f"{prefix}{f.name}", getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            validate(value, sources, f"{key}.")
        elif isinstance(value, list) and any(dataclasses.is_dataclass(v) for v in value):
            for i, item in enumerate(value):
                validate(item, sources, f"{key}[{i}].")
        elif not _in_range(value, f.metadata):
            where = _source(key, sources)
            raise ConfigError(
                f"config key '{key}' is {value!r}{f' in {where}' if where else ''}; "
                f"allowed: {allowed_values(f.metadata)} (default {f.default!r})."
            )


def _source(key: str, sources: Mapping[str, str]) -> str | None:
    """Where `key` (or the list or dict holding it, e.g. `env.curriculum`) was last set."""
    parts = key.replace("[", ".[").split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in sources:
            return sources[candidate]
    return None


def _read_yaml(path: Path) -> dict:
    """A config file as a dict; malformed YAML is one line naming the file, line and column."""
    import yaml  # installed with omegaconf

    try:
        loaded = OmegaConf.to_container(OmegaConf.load(path)) or {}
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        place = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = error.problem or error.context or "malformed"
        if "cannot start any token" in problem and mark and _char_at(path, mark) == "\t":
            problem = "a tab character (YAML indents with spaces)"
        elif "did not find expected" in problem and error.context_mark:
            opened = error.context_mark
            problem += (
                f" (an unclosed bracket? one opens at line {opened.line + 1}, "
                f"column {opened.column + 1})"
            )
        raise ConfigError(f"{path}{place}: invalid YAML: {problem}") from None
    except (yaml.YAMLError, UnicodeDecodeError, OSError, OmegaConfBaseException) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(f"{path}: cannot read it as a YAML config: {reason}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"{path} must hold a mapping of config sections, got {type(loaded).__name__}"
        )
    return loaded


def _char_at(path: Path, mark: Any) -> str:
    lines = path.read_text(errors="replace").splitlines()
    line = lines[mark.line] if mark.line < len(lines) else ""
    return line[mark.column] if mark.column < len(line) else ""


def _read_override(override: str) -> dict:
    """One ``key=value`` override as a nested dict; a malformed value is one clear line."""
    if "=" not in override:
        raise ConfigError(
            f"command-line override {override!r} must look like key=value (e.g. train.iterations=5)"
        )
    try:
        return OmegaConf.to_container(OmegaConf.from_dotlist([override]))
    except Exception as error:  # yaml's and OmegaConf's grammar errors: several exception types
        reason = getattr(error, "problem", None) or " ".join(str(error).split())
        raise ConfigError(
            f"command-line override {override!r}: cannot parse its value ({reason}); write "
            "lists as [a, b], dicts as {name: grpo}, and quote the whole override in the shell"
        ) from None


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """Defaults, then the YAML file, then `key=value` overrides; validated at each layer.

    A section (``train:``) merges key by key; a field's value, dicts and lists included,
    replaces the earlier one (see `_merge`). Returns a plain `Config` dataclass (not an
    OmegaConf node) so the rest of the code gets ordinary attribute access and type checkers
    understand it.
    """
    cfg = OmegaConf.structured(Config)
    sources: dict[str, str] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(
                f"config file {str(path)!r} not found; the shipped ones are in configs/"
            )
        cfg = _merge(cfg, _read_yaml(path), str(path), sources)
    for override in overrides:
        values = _read_override(override)
        where = f"the command-line override {override!r}"
        cfg = _merge(cfg, values, where, sources, addressed=override.split("=", 1)[0].strip())
    config: Config = OmegaConf.to_object(cfg)
    validate(config, sources)
    _check_credit(config)
    _check_combinations(config)
    return config


def _check_combinations(config: Config) -> None:
    """Settings that are each valid but do not work together."""
    if config.rollout.engine == "vllm" and config.policy.lora.enabled:
        raise ConfigError(
            "rollout.engine=vllm with policy.lora.enabled=true: the vLLM engine loads full "
            "weights and would silently sample from the base model, not the adapters; set "
            "rollout.engine=hf, or policy.lora.enabled=false"
        )
    episodes = config.rollout.groups * config.rollout.group_size
    if episodes > MAX_EPISODES_PER_ITERATION:
        raise ConfigError(
            f"config keys 'rollout.groups' x 'rollout.group_size' = {config.rollout.groups} x "
            f"{config.rollout.group_size} = {episodes} episodes per iteration; the limit is "
            f"{MAX_EPISODES_PER_ITERATION} (every episode of an iteration is held in memory)"
        )
    if config.rollout.isolation != "none" and config.rollout.workers > 0:
        raise ConfigError(
            f"rollout.isolation={config.rollout.isolation} with rollout.workers="
            f"{config.rollout.workers}: both say where the envs run; set rollout.workers=0 "
            "(isolated worker processes) or rollout.isolation=none (Ray actors)"
        )
    if any(t < 0 for t in config.rollout.branch.turns):
        raise ConfigError(
            f"config key 'rollout.branch.turns' is {config.rollout.branch.turns}; turn indices "
            "are 0-based and >= 0 (0 = the start state)"
        )
    unknown = sorted(set(config.run.report_to) - {"tensorboard", "wandb", "trackio"})
    if unknown:
        raise ConfigError(
            f"config key 'run.report_to' names {', '.join(unknown)}; choose from "
            "tensorboard, wandb, trackio"
        )


def check_runnable(config: Config) -> None:
    """What a run needs beyond a valid schema, checked before anything runs.

    The env id is registered (or names a remote env, ``openenv:<url>``) and its constructor
    takes every configured keyword argument (``env.kwargs`` and each curriculum stage's) and
    ``run.output_dir`` can be a directory (the trainer checks ``run.resume_from`` itself, with
    `creditgym.train.checkpoint`).
    Raises `ConfigError` naming the key and what is allowed.
    """
    from creditgym.envs.registry import check_make_kwargs, is_address_id, list_envs

    if config.env.id not in list_envs() and not is_address_id(config.env.id):
        close = difflib.get_close_matches(config.env.id, list_envs(), n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"config key 'env.id' is {config.env.id!r}, which is not a registered env.{hint} "
            "`creditgym envs` lists them."
        )
    stages = [("env.kwargs", config.env.kwargs)] + [
        (f"env.curriculum[{i}].kwargs", {**config.env.kwargs, **stage.kwargs})
        for i, stage in enumerate(config.env.curriculum)
    ]
    for key, kwargs in stages:
        try:
            check_make_kwargs(config.env.id, kwargs)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"config key '{key}': {error}") from None
    _check_output_dir(Path(config.run.output_dir))
    _check_installed(config)
    check_model_path(config.policy.model)


#: The optional packages settings need: (key, the setting's value as shown, is it asked for,
#: the package's module, how to install it).
def _optional_needs(config: Config) -> list[tuple[str, str, bool, str, str]]:
    trackers = set(config.run.report_to)
    return [
        ("rollout.engine", "vllm", config.rollout.engine == "vllm", "vllm", "'creditgym[vllm]'"),
        (
            "rollout.workers",
            str(config.rollout.workers),
            config.rollout.workers > 0,
            "ray",
            "'creditgym[ray]'",
        ),
        ("policy.lora.enabled", "true", config.policy.lora.enabled, "peft", "peft"),
        ("run.report_to", "wandb", "wandb" in trackers, "wandb", "wandb"),
        ("run.report_to", "trackio", "trackio" in trackers, "trackio", "trackio"),
    ]


def _check_installed(config: Config) -> None:
    """Optional back-ends a setting asks for are installed (looked up, not imported: a
    missing one is one line before anything loads, not a traceback after the model did)."""
    import importlib.util

    for key, value, wanted, module, package in _optional_needs(config):
        if wanted and importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"config key '{key}' is {value}, which needs {module}, and it is not installed: "
                f"pip install {package} (or change {key})"
            )


#: Seconds the Hugging Face Hub gets to say whether a model name exists, when it is not cached.
HUB_PROBE_TIMEOUT = 5.0


def check_model_path(model: str) -> None:
    """A ``policy.model`` written as a path (``./...``, ``/...``, ``~/...``) must exist, and a
    Hugging Face model name must be in the local cache or known to the Hub.

    The name check asks the Hub once, with a short timeout: left to transformers, a name that
    is neither cached nor reachable fails after about a minute of retries, with a traceback.
    """
    if model.startswith((".", "/", "~")) and not Path(model).expanduser().is_dir():
        raise ConfigError(
            f"config key 'policy.model' is {model!r}, which is not a directory; put a Hugging "
            f"Face model there (e.g. huggingface-cli download Qwen/Qwen2.5-1.5B-Instruct "
            f"--local-dir {model}) or set policy.model=PATH"
        )
    if Path(model).expanduser().is_dir():
        return
    from creditgym.agents.factory import resolve_backend

    try:
        backend = resolve_backend(model)
    except ValueError as error:
        raise ConfigError(f"config key 'policy.model': {error}") from None
    if backend.name == "hf":
        _check_hub_model(model)


def _check_hub_model(model: str) -> None:
    """`model` is in the Hugging Face cache, or the Hub says it exists (within seconds)."""
    import huggingface_hub

    if isinstance(huggingface_hub.try_to_load_from_cache(model, "config.json"), str):
        return
    fix = (
        "download it first (huggingface-cli download NAME --local-dir DIR) and set "
        "policy.model=DIR, or fix the name"
    )
    try:
        huggingface_hub.HfApi().model_info(model, timeout=HUB_PROBE_TIMEOUT)
    except huggingface_hub.errors.RepositoryNotFoundError:
        raise ConfigError(
            f"config key 'policy.model' is {model!r}: no such model on the Hugging Face Hub "
            f"and none in the local cache; {fix}"
        ) from None
    except Exception as error:  # offline, DNS, refused, timed out: all mean "not reachable"
        raise ConfigError(
            f"config key 'policy.model' is {model!r}: not a local directory, not in the Hugging "
            f"Face cache, and the Hub could not be asked ({type(error).__name__}); {fix}"
        ) from None


# What a run writes under run.output_dir: these must be files (or absent), those folders.
_RUN_FILES = ("config.yaml", "metrics.jsonl", "episodes.jsonl", "learning_curve.png")
_RUN_FOLDERS = ("checkpoints", "tensorboard", "reference_model")


def _check_output_dir(out: Path) -> None:
    """A file where a folder goes (or the reverse), or a folder the run cannot write, fails
    now, before the first iteration, not at the first log line or checkpoint."""
    for folder in (out, *out.parents):
        if folder.exists() and not folder.is_dir():
            raise ConfigError(
                f"config key 'run.output_dir' is {str(out)!r}, but {str(folder)!r} is a file; "
                "choose a directory path (run.output_dir=runs/NAME)"
            )
    for name in _RUN_FILES:
        if (out / name).is_dir():
            raise ConfigError(
                f"config key 'run.output_dir' is {str(out)!r}, but {str(out / name)!r} is a "
                "folder where the run writes a file; remove it or choose another run.output_dir"
            )
    for name in _RUN_FOLDERS:
        if (out / name).exists() and not (out / name).is_dir():
            raise ConfigError(
                f"config key 'run.output_dir' is {str(out)!r}, but {str(out / name)!r} is a "
                "file where the run keeps a folder; remove it or choose another run.output_dir"
            )
    existing = next(folder for folder in (out, *out.parents) if folder.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"config key 'run.output_dir' is {str(out)!r}, but {str(existing)!r} is not "
            "writable; choose a directory you can write to"
        )


def _check_credit(config: Config) -> None:
    """Unknown shaper/estimator names or options fail now, not after the first rollout."""
    from creditgym.credit import CreditConfigError, check_credit_config

    try:
        check_credit_config(config.credit.shapers, config.credit.estimator)
    except CreditConfigError as error:
        raise ConfigError(f"config section 'credit': {error}") from None


def to_yaml(config: Config) -> str:
    """The resolved config as YAML (saved beside every run)."""
    return OmegaConf.to_yaml(OmegaConf.structured(config))

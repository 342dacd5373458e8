"""Structured run configs: dataclass schemas with defaults and one-line help, YAML files in
`configs/`, and `key=value` command-line overrides, all validated before a run starts.

    cfg = load_config("configs/quickstart.yaml", ["train.iterations=5", "run.seed=1"])

An unknown key, a wrong type or a value outside a field's choices raises `ConfigError`
naming the key, where it came from (the file or the command line) and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

__all__ = [
    "Config",
    "CurriculumStage",
    "EnvConfig",
    "PolicyConfig",
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


class ConfigError(ValueError):
    """A config file or override is invalid; the message says which key and how to fix it."""


def _field(
    default: Any,
    help: str,
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None,
    *,
    min: float | None = None,
    max: float | None = None,
    above: float | None = None,
) -> Any:
    """A schema field: its default, one line of help, and what values are allowed.

    `choices` lists the allowed values (or returns them, when a registry decides them); `min`
    and `max` bound a number inclusively and `above` exclusively. `validate` checks every
    field against these after loading.
    """
    metadata: dict[str, Any] = {"help": help}
    for key, bound in (("choices", choices), ("min", min), ("max", max), ("above", above)):
        if bound is not None:
            metadata[key] = bound
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class CurriculumStage:
    iterations: int = _field(10, "how many training iterations this stage lasts", min=1)
    kwargs: dict[str, Any] = _field({}, "env keyword arguments for this stage (over env.kwargs)")


@dataclass
class EnvConfig:
    id: str = _field("creditgym/HouseholdEasy-v0", "registered env id (see `creditgym envs`)")
    kwargs: dict[str, Any] = _field({}, "keyword arguments for creditgym.make")
    train_split: str = _field("train", "split the training tasks are drawn from")
    eval_splits: list[str] = _field(
        [],
        "held-out splits to evaluate on (empty: the env's own, e.g. valid_seen and valid_unseen)",
    )
    curriculum: list[CurriculumStage] = field(
        default_factory=list,
        metadata={
            "help": "easier training stages first; after the last one, env.kwargs "
            "(evaluation always uses env.kwargs)"
        },
    )


@dataclass
class TinyModelConfig:
    hidden_size: int = _field(128, "width of the tiny transformer", min=1)
    num_layers: int = _field(2, "decoder layers of the tiny transformer", min=1)
    num_heads: int = _field(4, "attention heads of the tiny transformer", min=1)
    vocab_size: int = _field(2048, "size of the BPE vocabulary fitted to the env text", min=64)


@dataclass
class LoraConfig:
    enabled: bool = _field(False, "train LoRA adapters (peft) instead of all weights")
    r: int = _field(16, "LoRA rank", min=1)
    alpha: int = _field(32, "LoRA scaling alpha", min=1)
    dropout: float = _field(0.0, "LoRA dropout", min=0.0, max=1.0)
    target_modules: list[str] = _field(["q_proj", "k_proj", "v_proj", "o_proj"], "modules to adapt")


@dataclass
class PolicyConfig:
    model: str = _field("tiny", "tiny | smollm2 | a local HF directory | a Hugging Face model name")
    constrained: bool = _field(
        True, "sample only admissible actions (prefix-trie constrained decoding)"
    )
    template: str = _field("compact", "prompt template", choices=("compact", "verl-agent"))
    history_length: int = _field(
        2, "how many previous (observation, action) turns the prompt shows", min=0
    )
    temperature: float = _field(1.0, "sampling temperature for rollouts", min=0.0)
    top_p: float = _field(1.0, "nucleus sampling threshold for rollouts", above=0.0, max=1.0)
    max_new_tokens: int = _field(48, "response length limit per turn", min=1)
    chat_template: bool = _field(
        False, "wrap prompts in the tokenizer's chat template (instruct models)"
    )
    context: str = _field(
        "window",
        "window: a fresh prompt of the task and the last history_length turns per decision; "
        "conversation: the episode as one growing chat (KV cache kept across turns, one "
        "sequence per episode in the update)",
        choices=("window", "conversation"),
    )
    max_context_tokens: int = _field(
        0,
        "conversation mode: token budget of context plus response; the oldest turns are "
        "dropped to fit (0 = no limit)",
        min=0,
    )
    think: bool = _field(
        False,
        "think-then-act responses <think>...</think><action>...</action>; constrained decoding "
        "then limits only the action span",
    )
    think_tokens: int = _field(256, "most tokens a response may think for", min=1)
    invalid_penalty: float = _field(
        0.0, "subtracted from a turn's reward when its response is invalid (format or action)"
    )
    tiny: TinyModelConfig = field(
        default_factory=TinyModelConfig, metadata={"help": "tiny model shape"}
    )
    lora: LoraConfig = field(default_factory=LoraConfig, metadata={"help": "LoRA adapters"})


@dataclass
class BranchConfig:
    """Branch rollouts: K more runs of the policy from cloned env states of the batch's episodes
    (`creditgym.train.branching`); needs an env with clone_state()/restore_state()."""

    mode: str = _field(
        "none",
        "none | tree: K trainable continuations from chosen turns, sharing the parent's prefix "
        "(for the tree estimator) | vine: K continuations from every turn's state, used only "
        "for Monte-Carlo values V(s_t) (for the vine estimator)",
        choices=("none", "tree", "vine"),
    )
    k: int = _field(4, "continuations per branch point (tree) or per state (vine)", min=1)
    at: str = _field(
        "schedule",
        "tree: where to branch: schedule (the turns listed in `turns`) or entropy (the `count` "
        "turns of highest step entropy, the mean token surprisal -mean(logprobs))",
        choices=("schedule", "entropy"),
    )
    turns: list[int] = _field(
        [1, 3],
        "tree, at=schedule: 0-based turn indices t to branch before (the state s_t in which "
        "turn t acts); turns an episode does not reach are skipped",
    )
    count: int = _field(2, "tree, at=entropy: branch points per episode", min=1)
    per_group: int = _field(
        1, "tree: episodes of each group branched from (the first ones of the group)", min=1
    )
    gamma: float = _field(
        1.0, "vine: discount of the continuation returns V(s_t) (VinePPO: 1)", min=0.0, max=1.0
    )
    batch_size: int = _field(256, "continuations stepped in lockstep at most", min=1)


def _rollout_engines() -> tuple[str, ...]:
    """``rollout.engine``'s choices: the policy backends registered as rollout engines."""
    from creditgym.agents.factory import rollout_engines

    return rollout_engines()


@dataclass
class RolloutConfig:
    groups: int = _field(16, "distinct tasks per iteration (GRPO/GiGPO groups)", min=1)
    group_size: int = _field(8, "episodes per task, started from the same state (G)", min=1)
    max_turns: int = _field(0, "turn limit per episode; 0 = the env's own step budget", min=0)
    engine: str = _field(
        "hf",
        "generation engine: hf (the trained model itself) or vllm (CUDA; weights synced each "
        "update), or any policy backend registered with rollout_engine=True",
        choices=_rollout_engines,
    )
    vllm_gpu_memory: float = _field(
        0.4,
        "share of the GPU the vllm engine may take (the trainer needs the rest)",
        above=0.0,
        max=1.0,
    )
    workers: int = _field(0, "Ray actors holding the training envs (0 = in this process)", min=0)
    ray_address: str = _field(
        "", 'Ray cluster to join with workers > 0 ("" = start a local one; "auto")'
    )
    record_cost_to_go: bool = _field(
        True,
        "record the env's oracle cost-to-go on every turn (Turn.progress labels); costs about one "
        "more env step per step (tens of microseconds)",
    )
    branch: BranchConfig = field(
        default_factory=BranchConfig,
        metadata={"help": "branch rollouts from cloned env states (tree / vine)"},
    )


@dataclass
class CreditConfig:
    shapers: list[Any] = _field(["env"], "turn-reward shapers, by name or {name: ..., option: ...}")
    estimator: dict[str, Any] = _field(
        {"name": "grpo"}, "advantage estimator: {name: ..., options...}"
    )
    judge: str = _field(
        "oracle",
        "judge of the calm shaper: oracle (the env's events), openai:<base_url>, smollm2, or an "
        "HF model",
    )
    lare_factors: str = _field(
        "hand",
        "factor function of the lare shaper: hand (the env's hand-written one), llm:<model> "
        "(LaRe's LLM-written code, e.g. llm:smollm2), or a .py file defining "
        "evaluate(state, action)",
    )


@dataclass
class SFTConfig:
    episodes: int = _field(0, "expert demonstrations for a supervised warm start (0 = none)", min=0)
    epochs: int = _field(2, "passes over the demonstrations", min=1)
    lr: float = _field(1e-3, "learning rate of the warm start", min=0.0)
    batch_size: int = _field(32, "turns per warm-start step", min=1)


@dataclass
class TrainConfig:
    iterations: int = _field(40, "rollout + update iterations", min=0)
    lr: float = _field(1e-3, "AdamW learning rate", min=0.0)
    weight_decay: float = _field(0.0, "AdamW weight decay", min=0.0)
    ppo_epochs: int = _field(1, "passes over each rollout batch", min=1)
    clip_eps: float = _field(0.2, "PPO clip range epsilon", min=0.0)
    kl_coef: float = _field(
        0.0, "KL penalty to the frozen initial policy (0 = no reference model)", min=0.0
    )
    entropy_coef: float = _field(0.0, "entropy bonus coefficient", min=0.0)
    max_grad_norm: float = _field(1.0, "gradient clipping norm", above=0.0)
    micro_batch_turns: int = _field(64, "turns per forward/backward micro-batch", min=1)
    mini_batches: int = _field(1, "optimizer steps per PPO epoch", min=1)
    skip_zero_advantage: bool = _field(True, "leave turns whose advantage is 0 out of the update")
    precision: str = _field(
        "auto",
        "fp32 | bf16-mixed (fp32 master weights, bf16 autocast) | bf16 (bf16 weights: small "
        "updates round away) | auto (bf16-mixed on CUDA, fp32 on CPU)",
        choices=("auto", "fp32", "bf16-mixed", "bf16"),
    )
    lr_schedule: str = _field(
        "constant",
        "learning rate over the iterations after warm-up: constant, or linear / cosine decay "
        "towards 0",
        choices=("constant", "linear", "cosine"),
    )
    warmup_iterations: int = _field(
        0, "iterations whose learning rate rises linearly to train.lr (0 = none)", min=0
    )
    gradient_checkpointing: bool = _field(
        False, "recompute each layer's activations in the backward pass: less memory, more compute"
    )
    max_env_steps: int = _field(
        0,
        "stop after the iteration whose env steps reach this budget (0 = no limit); "
        "branch continuations count, turns copied from a parent episode do not",
        min=0,
    )
    max_policy_tokens: int = _field(
        0,
        "stop after the iteration whose policy tokens (prompt + response of every turn the "
        "policy generated) reach this budget (0 = no limit)",
        min=0,
    )
    sft_warmup: SFTConfig = field(
        default_factory=SFTConfig, metadata={"help": "supervised warm start"}
    )


@dataclass
class EvalConfig:
    every: int = _field(
        10, "evaluate on held-out splits every N iterations (0 = only at start/end)", min=0
    )
    episodes: int = _field(64, "episodes per held-out split", min=1)
    temperature: float = _field(
        1.0,
        "sampling temperature at evaluation (0 = greedy; greedy tiny policies tend to loop, "
        "see README)",
        min=0.0,
    )


@dataclass
class RunConfig:
    seed: int = _field(0, "seed for model init, task sampling and generation", min=0)
    output_dir: str = _field("runs/quickstart", "where metrics, checkpoints and plots go")
    device: str = _field("auto", "auto | cpu | cuda")
    save_every: int = _field(
        10, "checkpoint every N iterations (the last one is always saved)", min=1
    )
    resume: bool = _field(True, "resume from the latest checkpoint in output_dir if there is one")
    resume_from: str = _field(
        "",
        "a checkpoint directory to resume from (e.g. runs/x/checkpoints/iter_000010); "
        '"" = the newest complete one in output_dir',
    )
    tensorboard: bool = _field(True, "write TensorBoard event files beside metrics.jsonl")
    report_to: list[str] = _field(
        [],
        "more metric trackers: tensorboard, wandb, trackio (each an optional install; wandb "
        "honours WANDB_MODE=offline)",
    )
    progress: bool = _field(True, "show a progress bar")
    threads: int = _field(0, "torch CPU threads (0 = torch's default)", min=0)
    log_episodes: int = _field(
        16,
        "episodes (whole tasks) per iteration written with their credit to episodes.jsonl for "
        "`creditgym view` (0 = none)",
        min=0,
    )
    log_episodes_max_mb: float = _field(
        64.0, "episodes.jsonl rotates to episodes.1.jsonl at this size", above=0.0
    )


@dataclass
class Config:
    env: EnvConfig = field(default_factory=EnvConfig, metadata={"help": "environment"})
    policy: PolicyConfig = field(
        default_factory=PolicyConfig, metadata={"help": "the model and how it acts"}
    )
    rollout: RolloutConfig = field(
        default_factory=RolloutConfig, metadata={"help": "rollout collection"}
    )
    credit: CreditConfig = field(
        default_factory=CreditConfig, metadata={"help": "credit assignment"}
    )
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"help": "optimisation"})
    eval: EvalConfig = field(default_factory=EvalConfig, metadata={"help": "held-out evaluation"})
    run: RunConfig = field(default_factory=RunConfig, metadata={"help": "bookkeeping"})


def _hints(schema: type) -> dict[str, Any]:
    """The resolved type of each field of a schema (annotations are strings in this module)."""
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
    if math.isnan(value):  # NaN compares False with every bound
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

    The env id is registered and its constructor takes every configured keyword argument
    (``env.kwargs`` and each curriculum stage's), ``run.output_dir`` can be a directory, and
    ``run.resume_from``, if set, is a complete checkpoint.
    Raises `ConfigError` naming the key and what is allowed.
    """
    from creditgym.envs.registry import check_make_kwargs, list_envs

    if config.env.id not in list_envs():
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
    check_model_path(config.policy.model)
    if config.run.resume_from:
        from creditgym.train.checkpoint import CheckpointError, find_resume_checkpoint

        try:
            find_resume_checkpoint(
                Path(config.run.output_dir) / "checkpoints", resume_from=config.run.resume_from
            )
        except CheckpointError as error:
            raise ConfigError(str(error)) from None


def check_model_path(model: str) -> None:
    """A ``policy.model`` written as a path (``./...``, ``/...``, ``~/...``) must exist."""
    if model.startswith((".", "/", "~")) and not Path(model).expanduser().is_dir():
        raise ConfigError(
            f"config key 'policy.model' is {model!r}, which is not a directory; put a Hugging "
            f"Face model there (e.g. huggingface-cli download Qwen/Qwen2.5-1.5B-Instruct "
            f"--local-dir {model}) or set policy.model=PATH"
        )


def _check_output_dir(out: Path) -> None:
    for folder in (out, *out.parents):
        if folder.exists() and not folder.is_dir():
            raise ConfigError(
                f"config key 'run.output_dir' is {str(out)!r}, but {str(folder)!r} is a file; "
                "choose a directory path (run.output_dir=runs/NAME)"
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

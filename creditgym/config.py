"""Structured run configs: dataclass schemas with defaults and one-line help, YAML files in
`configs/`, and `key=value` command-line overrides, all validated before a run starts.

    cfg = load_config("configs/quickstart.yaml", ["train.iterations=5", "run.seed=1"])

An unknown key, a wrong type or a value outside a field's choices raises `ConfigError`
naming the key, where it came from (the file or the command line) and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
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
    "CreditConfig",
    "TrainConfig",
    "SFTConfig",
    "EvalConfig",
    "RunConfig",
    "ConfigError",
    "load_config",
    "to_yaml",
]


class ConfigError(ValueError):
    """A config file or override is invalid; the message says which key and how to fix it."""


def _field(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    metadata = {"help": help}
    if choices is not None:
        metadata["choices"] = choices
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class CurriculumStage:
    iterations: int = _field(10, "how many training iterations this stage lasts")
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
            "help": "easier training stages first; after the last one, env.kwargs (evaluation always uses env.kwargs)"
        },
    )


@dataclass
class TinyModelConfig:
    hidden_size: int = _field(128, "width of the tiny transformer")
    num_layers: int = _field(2, "decoder layers of the tiny transformer")
    num_heads: int = _field(4, "attention heads of the tiny transformer")
    vocab_size: int = _field(2048, "size of the BPE vocabulary fitted to the env text")


@dataclass
class LoraConfig:
    enabled: bool = _field(False, "train LoRA adapters (peft) instead of all weights")
    r: int = _field(16, "LoRA rank")
    alpha: int = _field(32, "LoRA scaling alpha")
    dropout: float = _field(0.0, "LoRA dropout")
    target_modules: list[str] = _field(["q_proj", "k_proj", "v_proj", "o_proj"], "modules to adapt")


@dataclass
class PolicyConfig:
    model: str = _field("tiny", "tiny | smollm2 | a local HF directory | a Hugging Face model name")
    constrained: bool = _field(
        True, "sample only admissible actions (prefix-trie constrained decoding)"
    )
    template: str = _field("compact", "prompt template", choices=("compact", "verl-agent"))
    history_length: int = _field(
        2, "how many previous (observation, action) turns the prompt shows"
    )
    temperature: float = _field(1.0, "sampling temperature for rollouts")
    top_p: float = _field(1.0, "nucleus sampling threshold for rollouts")
    max_new_tokens: int = _field(48, "response length limit per turn")
    chat_template: bool = _field(
        False, "wrap prompts in the tokenizer's chat template (instruct models)"
    )
    tiny: TinyModelConfig = field(
        default_factory=TinyModelConfig, metadata={"help": "tiny model shape"}
    )
    lora: LoraConfig = field(default_factory=LoraConfig, metadata={"help": "LoRA adapters"})


@dataclass
class RolloutConfig:
    groups: int = _field(16, "distinct tasks per iteration (GRPO/GiGPO groups)")
    group_size: int = _field(8, "episodes per task, started from the same state (G)")
    max_turns: int = _field(0, "turn limit per episode; 0 = the env's own step budget")
    engine: str = _field(
        "hf",
        "generation engine: hf (the trained model itself) or vllm (CUDA; weights synced each update)",
        choices=("hf", "vllm"),
    )
    vllm_gpu_memory: float = _field(
        0.4, "share of the GPU the vllm engine may take (the trainer needs the rest)"
    )
    workers: int = _field(0, "Ray actors holding the training envs (0 = in this process)")
    ray_address: str = _field(
        "", 'Ray cluster to join with workers > 0 ("" = start a local one; "auto")'
    )


@dataclass
class CreditConfig:
    shapers: list[Any] = _field(["env"], "turn-reward shapers, by name or {name: ..., option: ...}")
    estimator: dict[str, Any] = _field(
        {"name": "grpo"}, "advantage estimator: {name: ..., options...}"
    )
    judge: str = _field(
        "oracle",
        "judge of the calm shaper: oracle (the env's events), openai:<base_url>, smollm2, or an HF model",
    )
    lare_factors: str = _field(
        "hand",
        "factor function of the lare shaper: hand (the env's hand-written one), llm:<model> (LaRe's "
        "LLM-written code, e.g. llm:smollm2), or a .py file defining evaluate(state, action)",
    )


@dataclass
class SFTConfig:
    episodes: int = _field(0, "expert demonstrations for a supervised warm start (0 = none)")
    epochs: int = _field(2, "passes over the demonstrations")
    lr: float = _field(1e-3, "learning rate of the warm start")
    batch_size: int = _field(32, "turns per warm-start step")


@dataclass
class TrainConfig:
    iterations: int = _field(40, "rollout + update iterations")
    lr: float = _field(1e-3, "AdamW learning rate")
    weight_decay: float = _field(0.0, "AdamW weight decay")
    ppo_epochs: int = _field(1, "passes over each rollout batch")
    clip_eps: float = _field(0.2, "PPO clip range epsilon")
    kl_coef: float = _field(0.0, "KL penalty to the frozen initial policy (0 = no reference model)")
    entropy_coef: float = _field(0.0, "entropy bonus coefficient")
    max_grad_norm: float = _field(1.0, "gradient clipping norm")
    micro_batch_turns: int = _field(64, "turns per forward/backward micro-batch")
    mini_batches: int = _field(1, "optimizer steps per PPO epoch")
    skip_zero_advantage: bool = _field(True, "leave turns whose advantage is 0 out of the update")
    precision: str = _field(
        "auto",
        "fp32 | bf16-mixed (fp32 master weights, bf16 autocast) | bf16 (bf16 weights: small "
        "updates round away) | auto (bf16-mixed on CUDA, fp32 on CPU)",
        choices=("auto", "fp32", "bf16-mixed", "bf16"),
    )
    sft_warmup: SFTConfig = field(
        default_factory=SFTConfig, metadata={"help": "supervised warm start"}
    )


@dataclass
class EvalConfig:
    every: int = _field(
        10, "evaluate on held-out splits every N iterations (0 = only at start/end)"
    )
    episodes: int = _field(64, "episodes per held-out split")
    temperature: float = _field(
        1.0,
        "sampling temperature at evaluation (0 = greedy; greedy tiny policies tend to loop, see README)",
    )


@dataclass
class RunConfig:
    seed: int = _field(0, "seed for model init, task sampling and generation")
    output_dir: str = _field("runs/quickstart", "where metrics, checkpoints and plots go")
    device: str = _field("auto", "auto | cpu | cuda")
    save_every: int = _field(10, "checkpoint every N iterations (the last one is always saved)")
    resume: bool = _field(True, "resume from the latest checkpoint in output_dir if there is one")
    tensorboard: bool = _field(True, "write TensorBoard event files beside metrics.jsonl")
    progress: bool = _field(True, "show a progress bar")
    threads: int = _field(0, "torch CPU threads (0 = torch's default)")


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


def _check_keys(values: Any, schema: type, where: str, prefix: str = "") -> None:
    """Reject keys the schema does not have, naming the closest valid ones."""
    if not isinstance(values, dict):
        return
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" Did you mean '{prefix}{close[0]}'?" if close else ""
            raise ConfigError(
                f"unknown config key '{dotted}' in {where}.{hint} "
                f"Valid keys{' under ' + prefix.rstrip('.') if prefix else ''}: {', '.join(fields)}."
            )
        sub_schema = fields[key].type
        if isinstance(sub_schema, str):
            sub_schema = globals().get(sub_schema)
        if dataclasses.is_dataclass(sub_schema):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"config key '{dotted}' in {where} is a section; give its keys "
                    f"({', '.join(f.name for f in dataclasses.fields(sub_schema))}), not {value!r}."
                )
            _check_keys(value, sub_schema, where, f"{dotted}.")


def _check_choices(cfg: Any, prefix: str = "") -> None:
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            _check_choices(value, f"{prefix}{f.name}.")
        elif "choices" in f.metadata and value not in f.metadata["choices"]:
            raise ConfigError(
                f"config key '{prefix}{f.name}' is {value!r}; choose one of {', '.join(f.metadata['choices'])}."
            )


def _merge(base: DictConfig, values: dict, where: str) -> DictConfig:
    _check_keys(values, Config, where)
    try:
        return OmegaConf.merge(base, OmegaConf.create(values))
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "?"
        reason = str(error.msg).splitlines()[0]
        raise ConfigError(f"invalid value for config key '{key}' in {where}: {reason}") from None


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """Defaults, then the YAML file, then `key=value` overrides; validated at each layer.

    Returns a plain `Config` dataclass (not an OmegaConf node) so the rest of the code gets
    ordinary attribute access and type checkers understand it.
    """
    cfg = OmegaConf.structured(Config)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(
                f"config file {str(path)!r} not found; the shipped ones are in configs/"
            )
        loaded = OmegaConf.to_container(OmegaConf.load(path)) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"{path} must hold a mapping of config sections, got {type(loaded).__name__}"
            )
        cfg = _merge(cfg, loaded, str(path))
    for override in overrides:
        if "=" not in override:
            raise ConfigError(
                f"command-line override {override!r} must look like key=value (e.g. train.iterations=5)"
            )
        dotlist = OmegaConf.to_container(OmegaConf.from_dotlist([override]))
        cfg = _merge(cfg, dotlist, f"the command-line override {override!r}")
    config: Config = OmegaConf.to_object(cfg)
    _check_choices(config)
    _check_credit(config)
    return config


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

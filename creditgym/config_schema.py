"""The config schema: one dataclass per section, each field with its default, one line of help
and what values it allows (`creditgym.config` loads and validates YAML files against it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
    "TinyModelConfig",
    "LoraConfig",
]


#: Largest rollout.groups and rollout.group_size: one iteration holds every episode in memory,
#: so sizes past these cannot finish on any machine this library targets.
MAX_GROUPS = 4096
MAX_GROUP_SIZE = 1024
#: Most episodes one iteration may collect (rollout.groups x rollout.group_size).
MAX_EPISODES_PER_ITERATION = 65_536


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
    hidden_size: int = _field(128, "width of the tiny transformer", min=1, max=8192)
    num_layers: int = _field(2, "decoder layers of the tiny transformer", min=1, max=128)
    num_heads: int = _field(4, "attention heads of the tiny transformer", min=1, max=256)
    vocab_size: int = _field(
        2048, "size of the BPE vocabulary fitted to the env text", min=64, max=262_144
    )


@dataclass
class LoraConfig:
    enabled: bool = _field(False, "train LoRA adapters (peft) instead of all weights")
    r: int = _field(16, "LoRA rank", min=1, max=4096)
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
        2, "how many previous (observation, action) turns the prompt shows", min=0, max=1000
    )
    temperature: float = _field(1.0, "sampling temperature for rollouts", min=0.0, max=100.0)
    top_p: float = _field(1.0, "nucleus sampling threshold for rollouts", above=0.0, max=1.0)
    max_new_tokens: int = _field(48, "response length limit per turn", min=1, max=131_072)
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
        max=10_000_000,
    )
    think: bool = _field(
        False,
        "think-then-act responses <think>...</think><action>...</action>; constrained decoding "
        "then limits only the action span",
    )
    think_tokens: int = _field(256, "most tokens a response may think for", min=1, max=131_072)
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
    (`creditgym.rollout.branching`); needs an env with clone_state()/restore_state()."""

    mode: str = _field(
        "none",
        "none | tree: K trainable continuations from chosen turns, sharing the parent's prefix "
        "(for the tree estimator) | vine: K continuations from every turn's state, used only "
        "for Monte-Carlo values V(s_t) (for the vine estimator)",
        choices=("none", "tree", "vine"),
    )
    k: int = _field(4, "continuations per branch point (tree) or per state (vine)", min=1, max=1024)
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
    count: int = _field(2, "tree, at=entropy: branch points per episode", min=1, max=1024)
    per_group: int = _field(
        1,
        "tree: episodes of each group branched from (the first ones of the group)",
        min=1,
        max=MAX_GROUP_SIZE,
    )
    gamma: float = _field(
        1.0, "vine: discount of the continuation returns V(s_t) (VinePPO: 1)", min=0.0, max=1.0
    )
    batch_size: int = _field(256, "continuations stepped in lockstep at most", min=1, max=65_536)


def _rollout_engines() -> tuple[str, ...]:
    """``rollout.engine``'s choices: the policy backends registered as rollout engines."""
    from creditgym.agents.factory import rollout_engines

    return rollout_engines()


@dataclass
class RolloutConfig:
    groups: int = _field(
        16, "distinct tasks per iteration (GRPO/GiGPO groups)", min=1, max=MAX_GROUPS
    )
    group_size: int = _field(
        8, "episodes per task, started from the same state (G)", min=1, max=MAX_GROUP_SIZE
    )
    max_turns: int = _field(
        0, "turn limit per episode; 0 = the env's own step budget", min=0, max=100_000
    )
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
    workers: int = _field(
        0, "Ray actors holding the training envs (0 = in this process)", min=0, max=1024
    )
    ray_address: str = _field(
        "", 'Ray cluster to join with workers > 0 ("" = start a local one; "auto")'
    )
    isolation: str = _field(
        "none",
        "where the training envs run: none (in this process) or process (each in a worker "
        "process of its own: a crash, hang, garbage answer or leak fails that episode, with its "
        "reason, and the worker is restarted)",
        choices=("none", "process"),
    )
    env_step_timeout_s: float = _field(
        60.0,
        "isolation=process: seconds a worker has to answer a reset or step before it is killed "
        "and its episode fails (timeout)",
        above=0.0,
        max=86_400.0,
    )
    env_start_timeout_s: float = _field(
        120.0,
        "isolation=process: seconds a new worker has to build its env before it is killed "
        "(timeout)",
        above=0.0,
        max=86_400.0,
    )
    env_max_rss_mb: float = _field(
        0.0,
        "isolation=process: a worker whose resident memory is over this many MiB after a reset "
        "or step is killed and its episode fails (memory); 0 = no limit",
        min=0.0,
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
    mc_every: int = _field(
        0,
        "every N iterations, the training policy's own Monte-Carlo advantages on `mc_turns` "
        "turns of the batch (continued from cloned states before the update) and the "
        "estimator's and GRPO's agreement with them, logged as credit/mc_* (0 = never; the "
        "continuations' env steps are logged, not counted in the budget; needs an env that "
        "clones its state)",
        min=0,
        max=10_000_000,
    )
    mc_turns: int = _field(32, "turns sampled per Monte-Carlo check", min=2, max=65_536)
    mc_continuations: int = _field(
        8, "continuations per Q and per V in a Monte-Carlo check", min=2, max=1024
    )


@dataclass
class SFTConfig:
    episodes: int = _field(
        0, "expert demonstrations for a supervised warm start (0 = none)", min=0, max=1_000_000
    )
    epochs: int = _field(2, "passes over the demonstrations", min=1, max=10_000)
    lr: float = _field(1e-3, "learning rate of the warm start", min=0.0)
    batch_size: int = _field(
        32,
        "turns per warm-start step (a longer demonstrated conversation is one step)",
        min=1,
        max=65_536,
    )
    noise: float = _field(
        0.0,
        "probability that a demonstration step plays a random admissible action; every turn "
        "is still labelled with the expert's action there (DART), so the warm start learns to "
        "recover from states off the expert's path",
        min=0.0,
        max=1.0,
    )


@dataclass
class TrainConfig:
    iterations: int = _field(40, "rollout + update iterations", min=0, max=10_000_000)
    lr: float = _field(1e-3, "AdamW learning rate", min=0.0)
    weight_decay: float = _field(0.0, "AdamW weight decay", min=0.0)
    ppo_epochs: int = _field(1, "passes over each rollout batch", min=1, max=1000)
    clip_eps: float = _field(0.2, "PPO clip range epsilon", min=0.0)
    kl_coef: float = _field(
        0.0, "KL penalty to the frozen initial policy (0 = no reference model)", min=0.0
    )
    entropy_coef: float = _field(0.0, "entropy bonus coefficient", min=0.0)
    max_grad_norm: float = _field(1.0, "gradient clipping norm", above=0.0)
    micro_batch_turns: int = _field(
        64,
        "turns per forward/backward micro-batch (in the update and the warm start)",
        min=1,
        max=65_536,
    )
    mini_batches: int = _field(1, "optimizer steps per PPO epoch", min=1, max=65_536)
    target_kl: float = _field(
        0.0,
        "stop the PPO epochs before the step of the first mini-batch whose approx KL to the "
        "rollout policy (k3, over its trained tokens not forced) exceeds this (0 = never; "
        "Spinning Up's PPO early stop)",
        min=0.0,
    )
    loss_agg: str = _field(
        "token_mean",
        "how token terms sum into the loss: token_mean (DAPO: every token alike), "
        "seq_mean_token_mean (GRPO: mean per response, then over responses), "
        "seq_mean_token_sum_norm (Dr. GRPO: response sums over a constant, see "
        "loss_norm_tokens), episode_mean (every episode alike, spread over its tokens)",
        choices=("token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm", "episode_mean"),
    )
    count_forced_tokens: bool = _field(
        True,
        "count tokens the action constraint forced (one allowed token: no gradient) in the "
        "loss denominators; false leaves them out",
    )
    loss_norm_tokens: int = _field(
        0,
        "Dr. GRPO's constant for loss_agg=seq_mean_token_sum_norm (0 = policy.max_new_tokens)",
        min=0,
        max=10_000_000,
    )
    carry_sft_optimizer: bool = _field(
        False,
        "start RL's AdamW with the supervised warm start's moments instead of a fresh state "
        "(a fresh one's first steps are mostly noise; warmup_iterations is the other remedy)",
    )
    update_diagnostics: bool = _field(
        True,
        "after each update, score the turns it trained on once more and log how the policy "
        "moved: KL, ratio spread, each turn's log-prob change against its advantage (one "
        "forward pass over the turns with a nonzero advantage)",
    )
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
        0,
        "iterations whose learning rate rises linearly to train.lr (0 = none)",
        min=0,
        max=10_000_000,
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
    episodes: int = _field(64, "episodes per held-out split", min=1, max=100_000)
    temperature: float = _field(
        1.0,
        "sampling temperature at evaluation (0 = greedy; greedy tiny policies tend to loop, "
        "see README)",
        min=0.0,
        max=100.0,
    )


@dataclass
class RunConfig:
    seed: int = _field(0, "seed for model init, task sampling and generation", min=0, max=2**32 - 1)
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
    threads: int = _field(0, "torch CPU threads (0 = torch's default)", min=0, max=1024)
    log_episodes: int = _field(
        16,
        "episodes (whole tasks) per iteration written with their credit to episodes.jsonl for "
        "`creditgym view` (0 = none)",
        min=0,
        max=100_000,
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

"""`creditgym export RUN_DIR OUT`: a trained run as a self-contained Hugging Face model directory.

OUT gets the model and tokenizer of the run's latest checkpoint (LoRA adapters merged into the
base weights, so plain `AutoModelForCausalLM.from_pretrained(OUT)` loads the trained policy) and
a model card, ``README.md``, stating how the model was prompted (prompt template, history,
chat template, constrained decoding), the training config, and the held-out results.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from creditgym.config import load_config, to_yaml
from creditgym.train.checkpoint import latest_checkpoint

__all__ = ["export_run", "model_card"]


def export_run(
    run_dir: str | Path, out: str | Path, *, checkpoint: str | Path | None = None
) -> Path:
    """Write the run's latest (or the given) checkpoint to `out` with a model card; returns `out`.

    Raises:
        FileNotFoundError: `run_dir` has no config.yaml or no complete checkpoint.
        ValueError: `out` exists and is not empty.
    """
    run_dir, out = Path(run_dir), Path(out)
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(
            f"{run_dir} has no config.yaml; give the run directory `creditgym train` wrote "
            "(run.output_dir)"
        )
    source = Path(checkpoint) if checkpoint else latest_checkpoint(run_dir / "checkpoints")
    if source is None or not (source / "model").is_dir():
        raise FileNotFoundError(
            f"no complete checkpoint under {run_dir / 'checkpoints'}; train first or pass "
            "--checkpoint PATH"
        )
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty; choose a new directory")
    config = load_config(run_dir / "config.yaml")
    out.mkdir(parents=True, exist_ok=True)
    if (source / "model" / "adapter_config.json").is_file():
        tokenizer = _save_merged(config, source / "model", out)
    else:
        shutil.copytree(source / "model", out, dirs_exist_ok=True)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(out)
    state = json.loads((source / "trainer_state.json").read_text())
    (out / "README.md").write_text(model_card(config, state, tokenizer, source))
    return out


def _save_merged(config: Any, adapters: Path, out: Path) -> Any:
    """The base model with the adapters merged in, saved as plain weights."""
    from creditgym.train.models import build_policy

    policy = build_policy(config, init_from=adapters)
    merged = policy.model.merge_and_unload()
    merged.save_pretrained(out)
    policy.tokenizer.save_pretrained(out)
    return policy.tokenizer


def model_card(config: Any, state: dict[str, Any], tokenizer: Any, checkpoint: Path) -> str:
    """README.md of an exported model: prompt format, chat template, config, held-out results."""
    policy = config.policy
    chat_template = getattr(tokenizer, "chat_template", None)
    lines = [
        f"# creditgym policy for {config.env.id}",
        "",
        f"Trained with creditgym for {state.get('iteration', 0)} iterations "
        f"({state.get('env_steps', 0)} env steps) on `{config.env.id}`; exported from "
        f"`{checkpoint.name}`{' with its LoRA adapters merged' if policy.lora.enabled else ''}.",
        "Load it with `AutoModelForCausalLM.from_pretrained` and `AutoTokenizer.from_pretrained`.",
        "",
        "## Prompt format",
        "",
        f"- prompt template: `{policy.template}` (creditgym's agents/prompts.py), showing the "
        f"task and the last {policy.history_length} (observation, action) turns",
        f"- context mode: `{getattr(policy, 'context', 'window')}`",
        f"- chat template: {'applied' if policy.chat_template else 'not applied (plain text)'}",
        "- constrained decoding: "
        + (
            "on (only admissible actions were sampled)"
            if policy.constrained
            else "off (free text, parsed for an action)"
        ),
        f"- sampling: temperature {policy.temperature}, top_p {policy.top_p}, "
        f"max_new_tokens {policy.max_new_tokens}",
        "",
        "## Chat template",
        "",
        f"```jinja\n{chat_template}\n```" if chat_template else "The tokenizer has none.",
        "",
        "## Held-out evaluation",
        "",
        *_eval_table(state.get("evals", [])),
        "",
        "## Training config",
        "",
        f"```yaml\n{to_yaml(config).rstrip()}\n```",
        "",
    ]
    return "\n".join(lines)


def _eval_table(evals: list[dict[str, Any]]) -> list[str]:
    """Success per held-out split, before training and at the last evaluation."""
    if not evals:
        return ["No held-out evaluation was recorded."]
    first, last = evals[0], evals[-1]
    splits = sorted({key.split("/")[1] for key in last if key.startswith("eval/")})
    rows = [
        f"| split | before training | after {last.get('iteration', 0)} iterations |",
        "|---|---|---|",
    ]
    for split in splits:
        before = first.get(f"eval/{split}/success", 0.0)
        after = last.get(f"eval/{split}/success", 0.0)
        rows.append(f"| {split} | {before:.1%} | {after:.1%} |")
    return rows

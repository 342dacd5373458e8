"""Build a subgoal judge (requirement kind ``judge``) from the config's `credit.judge` string.

``oracle`` reads the environment's own events; anything else names a text model for
`load_policy` (``openai:<base_url>``, ``smollm2``, a local Hugging Face directory or model
name), sampled greedily and wrapped in an `LLMJudge` whose answers are cached on disk under
the creditgym cache (``judge/``), so a rerun or a resumed run asks nothing twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from creditgym.agents.factory import load_policy
from creditgym.cache import cache_root
from creditgym.credit import LLMJudge, OracleJudge, RunContext
from creditgym.credit_setup.builders import register_builder

__all__ = ["build_judge"]


@register_builder("judge")
def _judge_for_run(spec: Any, run: RunContext, where: str) -> Any:
    """The judge `spec` names; the env class documents how to read its observations."""
    return build_judge(str(spec), legend=str(run.env_metadata.get("judge_legend", "")))


def build_judge(
    spec: str,
    *,
    legend: str = "",
    max_new_tokens: int = 128,
    cache_dir: str | Path | None = None,
    timeout: float = 60.0,
) -> Any:
    """An `OracleJudge` for ``"oracle"``, else an `LLMJudge` over the model `spec` names.

    Answers are cached in `cache_dir` (default: ``judge/`` under the creditgym cache); a served
    judge (``openai:<url>``) has `timeout` seconds per answer before the attempt counts as failed.
    """
    if spec == "oracle":
        return OracleJudge()
    options: dict[str, Any] = {"temperature": 0.0}
    if spec.startswith("openai:"):
        options.update(max_tokens=max_new_tokens, timeout=timeout)
    else:  # a local model: free text, not admissible actions
        options.update(constrained=False, max_new_tokens=max_new_tokens)
    client = load_policy(spec, **options)
    return LLMJudge(client, legend=legend, cache_dir=cache_dir or cache_root() / "judge")

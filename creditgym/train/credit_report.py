"""`creditgym credit-report`: score credit methods against the envs' oracles on one batch.

One batch of grouped rollouts of an agent; every requested credit method (see
`creditgym.train.credit_methods`) computes its advantages on those *same* episodes with the
trainer's credit code (`compute_advantages`, the judge and latent-reward builders); each is
scored against the progress labels the env's cost-to-go gives every turn and, with ``--mc K``,
against Monte-Carlo advantages of the behaviour policy (`creditgym.train.monte_carlo`).
Definitions of the scores: `creditgym.credit.fidelity`.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from creditgym.agents.factory import load_policy
from creditgym.credit import CreditContext, compute_advantages
from creditgym.credit.fidelity import (
    DEAD_END,
    FidelityScores,
    score_fidelity,
    score_turn_sample,
    turn_label,
)
from creditgym.credit.igpo import ANSWER_PREFIX
from creditgym.envs.registry import env_metadata
from creditgym.train.credit_methods import CreditMethod
from creditgym.train.monte_carlo import (
    MonteCarloAdvantages,
    monte_carlo_advantages,
    sample_turns,
)
from creditgym.train.rollout import PromptFormat, collect_episodes, group_tasks, make_envs
from creditgym.trajectory import Episode

__all__ = ["MethodResult", "CreditReport", "run_credit_report", "label_name"]


@dataclass
class MethodResult:
    """One method's advantages on the report's episodes and its scores."""

    method: CreditMethod
    advantages: list[np.ndarray]
    scores: FidelityScores


@dataclass
class CreditReport:
    """Everything `creditgym credit-report` prints, writes and plots."""

    env_id: str
    agent: str
    seed: int
    groups: int
    group_size: int
    split: str
    episodes: list[Episode]
    results: list[MethodResult]
    mc: MonteCarloAdvantages | None
    rollout_seconds: float

    def label_counts(self) -> dict[str, int]:
        """How many turns got each progress label (`label_name`)."""
        counts = Counter(
            label_name(turn_label(turn))
            for episode in self.episodes
            if not episode.failed
            for turn in episode.turns
        )
        order = {"dead end": -1e9, "none": 1e9}
        return dict(
            sorted(
                counts.items(),
                key=lambda item: order[item[0]] if item[0] in order else int(item[0]),
            )
        )


def label_name(label: float) -> str:
    """``"+1"``, ``"0"``, ``"-1"``, ``"dead end"`` (`DEAD_END`) or ``"none"`` (unlabelled)."""
    if np.isnan(label):
        return "none"
    if label == DEAD_END:
        return "dead end"
    return f"{int(label):+d}" if label else "0"


_NO_COST_TO_GO = (
    "{env_id} gives no cost-to-go (env.unwrapped.steps_to_go()), so its turns have no progress "
    "labels to score credit against; credit-report needs an env with that oracle hook"
)


def _can_score(policy: Any) -> bool:
    """Whether the policy gives token log-probs (IGPO's scorer); scripted agents do not."""
    try:
        policy.logprobs(["a"], ["b"])
    except NotImplementedError:
        return False
    return True


def _check_env(env_id: str, split: str, env_kwargs: dict[str, Any], seed: int) -> None:
    env = make_envs(env_id, 1, split=split, **env_kwargs)[0]
    try:
        # Some envs know their cost-to-go only part of the way (MiniHack: once the map shows a
        # way), so the hook's presence is checked here and the labels after the rollout.
        if not callable(getattr(getattr(env, "unwrapped", env), "steps_to_go", None)):
            raise ValueError(_NO_COST_TO_GO.format(env_id=env_id))
    finally:
        env.close()


def _contexts(
    methods: list[CreditMethod],
    policy: Any,
    env_id: str,
    judge: str,
    lare_factors: str,
    seed: int,
    work_dir: Path,
) -> list[CreditContext]:
    """Each method's credit context: the policy as IGPO's scorer, CALM's judge, and a fresh
    LaRe latent reward per method (its decoder trains on the batch, so methods do not share
    one). Raises ValueError for a method that needs what the agent cannot give."""
    from creditgym.train.judges import build_judge
    from creditgym.train.latent import build_latent_reward

    # probed only when asked for: a served policy's probe is a request
    needs_scorer = any("info_gain" in method.shaper_names for method in methods)
    scorer = policy if needs_scorer and _can_score(policy) else None
    judges: dict[str, Any] = {}
    contexts = []
    for method in methods:
        names = method.shaper_names
        if "info_gain" in names and scorer is None:
            raise ValueError(
                f"method {method.label!r} needs the policy's token log-probs (IGPO's information "
                f"gain), which the scripted agent {policy!r} does not have; use a model agent "
                "(tiny, a checkpoint, a Hugging Face model)"
            )
        if "calm" in names and judge not in judges:
            legend = str(env_metadata(env_id).get("judge_legend", ""))
            judges[judge] = build_judge(judge, legend=legend)
        extras = {}
        if "lare" in names:
            try:
                extras["lare"] = build_latent_reward(lare_factors, env_id, work_dir, seed)
            except ValueError as error:  # its message names the trainer's setting
                raise ValueError(f"method {method.label!r}, --lare-factors: {error}") from None
        contexts.append(
            CreditContext(
                scorer=scorer, judge=judges.get(judge) if "calm" in names else None, extras=extras
            )
        )
    return contexts


def run_credit_report(
    env_id: str,
    agent: str,
    methods: list[CreditMethod],
    *,
    groups: int = 8,
    group_size: int = 8,
    mc: int = 0,
    mc_turns: int = 64,
    mc_gamma: float = 1.0,
    seed: int = 0,
    split: str = "train",
    env_kwargs: dict[str, Any] | None = None,
    policy_kwargs: dict[str, Any] | None = None,
    prompt_format: PromptFormat | None = None,
    judge: str = "oracle",
    lare_factors: str = "hand",
    batch_size: int = 64,
    mc_batch_size: int = 256,
    work_dir: Path | None = None,
) -> CreditReport:
    """Roll out `agent` on `groups` x `group_size` episodes of `env_id` and score every method.

    Args:
        env_id: a registered env whose ``steps_to_go()`` gives the progress labels.
        agent: any policy spec `load_policy` takes (``random``, ``expert:eps=0.5``, a checkpoint).
        methods: parsed credit methods (`parse_methods`).
        groups, group_size: tasks, and episodes per task (GRPO's group).
        mc: K continuations per Q and per V for Monte-Carlo advantages (0: none).
        mc_turns: how many turns (drawn uniformly) get Monte-Carlo advantages.
        mc_gamma: discount of the continuation returns (1: success only; < 1 also values
            speed, as GiGPO's step returns do).
        seed: picks the tasks, the random agent's stream and the MC sample.
        split: the env split the tasks come from.
        env_kwargs: passed to `creditgym.make`.
        policy_kwargs: passed to `load_policy` (sampling options of model agents).
        prompt_format: how model agents see the env (as in training).
        judge: CALM's judge (``oracle`` reads the env's events).
        lare_factors: LaRe's factor function (``hand``, a .py file, ``llm:<model>``).
        batch_size, mc_batch_size: envs stepped in lockstep for the rollout / the continuations.
        work_dir: where LaRe's code writer logs (a temporary folder by default).

    Raises:
        ValueError: the env has no cost-to-go, a method needs a scorer the agent cannot give,
            or (with `mc`) the env cannot clone its state.
    """
    env_kwargs = dict(env_kwargs or {})
    prompt_format = prompt_format or PromptFormat()
    _check_env(env_id, split, env_kwargs, seed)
    policy = load_policy(agent, **(policy_kwargs or {}))
    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="credit-report-"))
    contexts = _contexts(methods, policy, env_id, judge, lare_factors, seed, work_dir)

    t0 = time.perf_counter()
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=groups).tolist()
    tasks = group_tasks(seeds, group_size, split=split)
    envs = make_envs(env_id, min(len(tasks), batch_size), split=split, **env_kwargs)
    uses_info_gain = any("info_gain" in m.shaper_names for m in methods)
    episodes = collect_episodes(
        envs,
        policy,
        tasks,
        env_id=env_id,
        prompt_format=prompt_format,
        answer_prefix=ANSWER_PREFIX if uses_info_gain else None,
    )
    for env in envs:
        env.close()
    rollout_seconds = time.perf_counter() - t0
    if all(turn.cost_to_go is None for episode in episodes for turn in episode.turns):
        raise ValueError(_NO_COST_TO_GO.format(env_id=env_id) + " (it answered None every turn)")

    mc_result = None
    if mc > 0:
        mc_result = monte_carlo_advantages(
            env_id,
            episodes,
            sample_turns(episodes, mc_turns, seed),
            policy,
            continuations=mc,
            prompt_format=prompt_format,
            split=split,
            env_kwargs=env_kwargs,
            batch_size=mc_batch_size,
            gamma=mc_gamma,
        )
    results = []
    for method, context in zip(methods, contexts):
        t0 = time.perf_counter()
        advantages = compute_advantages(episodes, method.shapers, method.estimator, context)
        seconds = time.perf_counter() - t0
        scores = score_fidelity(
            episodes,
            advantages,
            mc_result.turns if mc_result else (),
            mc_result.advantage if mc_result else (),
        )
        scores.seconds = seconds
        results.append(MethodResult(method, advantages, scores))
    return CreditReport(
        env_id,
        agent,
        seed,
        groups,
        group_size,
        split,
        episodes,
        results,
        mc_result,
        rollout_seconds,
    )


def mc_reference_scores(report: CreditReport) -> tuple[float, int, float] | None:
    """The Monte-Carlo advantages' own within-episode Spearman, episodes ranked and batch AUC
    against the progress labels (over the sampled turns): how far the behaviour policy's own
    advantage agrees with the expert's notion of progress, a reference row for the methods."""
    if report.mc is None:
        return None
    return score_turn_sample(report.episodes, report.mc.turns, report.mc.advantage)

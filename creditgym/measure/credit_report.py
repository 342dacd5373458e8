"""`creditgym credit-report`: score credit methods against the envs' oracles on one batch.

One batch of grouped rollouts of an agent; every requested credit method (see
`creditgym.credit.specs`) computes its advantages on those *same* episodes with the
trainer's credit code (`compute_advantages`, and `build_credit` for what its modules need); each is
scored against the progress labels the env's cost-to-go gives every turn, against
information-state labels where the env has an informed cost-to-go (`informed_labels`) and,
with ``--mc K``, against Monte-Carlo advantages of the behaviour policy
(`creditgym.measure.monte_carlo`).
Definitions of the scores: `creditgym.credit.fidelity`.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from creditgym.agents.factory import load_policy
from creditgym.config import CreditConfig
from creditgym.credit import RunContext, compute_advantages
from creditgym.credit.fidelity import (
    DEAD_END,
    FidelityScores,
    score_fidelity,
    score_turn_sample,
    turn_label,
)
from creditgym.credit.registry import resolve
from creditgym.credit.specs import CreditMethod
from creditgym.credit_setup.build import SCORER, CreditRuntime, build_credit
from creditgym.envs.oracle import informed_cost_to_go
from creditgym.envs.registry import env_metadata
from creditgym.measure.monte_carlo import (
    MonteCarloAdvantages,
    monte_carlo_advantages,
    sample_turns,
)
from creditgym.rollout.collect import PromptFormat, collect_episodes, group_tasks, make_envs
from creditgym.rollout.continuations import check_replay
from creditgym.trajectory import Episode

__all__ = ["MethodResult", "CreditReport", "run_credit_report", "label_name", "informed_labels"]


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
    informed_labels: list[np.ndarray] | None = None  # the env's information-state labels

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
    """Whether the policy gives token log-probs (a scorer); scripted agents do not."""
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


def _runtimes(
    methods: list[CreditMethod],
    env_id: str,
    settings: Mapping[str, Any],
    seed: int,
    work_dir: Path,
) -> list[CreditRuntime]:
    """Each method's credit runtime: whatever its shapers and estimator ask for, built as the
    trainer builds it. Things without learned state (a judge) are built once and shared; those
    with learned state (a decoder that trains on the batch) are built afresh per method, so
    methods do not share them. Raises ValueError for what a method cannot be given."""
    run = RunContext(
        env_id=env_id,
        env_metadata=dict(env_metadata(env_id)),
        output_dir=work_dir,
        seed=seed,
        settings=dict(settings),
    )
    shared: dict[tuple[str, str], Any] = {}
    runtimes = []
    for method in methods:
        modules = [resolve("shaper", shaper) for shaper in method.shapers]
        modules.append(resolve("estimator", method.estimator))
        try:
            runtimes.append(build_credit(modules, run, shared))
        except ValueError as error:  # its message names the setting or option
            raise ValueError(f"method {method.label!r}: {error}") from None
    return runtimes


def _scorer_for(methods: list[CreditMethod], runtimes: list[CreditRuntime], policy: Any) -> Any:
    """The policy as log-prob scorer if a method requires one (probed only then: a served
    policy's probe is a request), else None. Raises ValueError if a method requires one and
    the agent gives no token log-probs."""
    needing = [m for m, r in zip(methods, runtimes) if SCORER in r.required_kinds]
    if not needing:
        return None
    if not _can_score(policy):
        raise ValueError(
            f"method {needing[0].label!r} needs the policy's token log-probs (one of its modules "
            f"requires a {SCORER!r}), which the agent {policy!r} does not have; use a model "
            "agent (tiny, a checkpoint, a Hugging Face model)"
        )
    return policy


def _answer_prefix(methods: list[CreditMethod], runtimes: list[CreditRuntime]) -> str | None:
    """What the rollout scores answers after, if a method asks; one rollout serves all
    methods, so they must agree on it."""
    prefixes = {r.answer_prefix for r in runtimes if r.answer_prefix is not None}
    if len(prefixes) > 1:
        labels = [m.label for m, r in zip(methods, runtimes) if r.answer_prefix is not None]
        raise ValueError(
            f"methods {', '.join(labels)} ask the rollout to score answers after different "
            f"prefixes ({', '.join(sorted(map(repr, prefixes)))}); one batch serves them all, "
            "so give them the same one"
        )
    return prefixes.pop() if prefixes else None


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
    settings: Mapping[str, Any] | None = None,
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
        settings: the trainer's ``credit`` settings the methods' requirements read (e.g.
            ``{"judge": "oracle"}``); unset ones take the config's defaults.
        batch_size, mc_batch_size: envs stepped in lockstep for the rollout / the continuations.
        work_dir: where builders write their logs (a temporary folder by default).

    Raises:
        ValueError: the env has no cost-to-go, a method needs a scorer the agent cannot give
            or something its builder rejects, or (with `mc`) the env cannot clone its state.
    """
    env_kwargs = dict(env_kwargs or {})
    prompt_format = prompt_format or PromptFormat()
    _check_env(env_id, split, env_kwargs, seed)
    policy = load_policy(agent, **(policy_kwargs or {}))
    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="credit-report-"))
    settings = {**dataclasses.asdict(CreditConfig()), **(settings or {})}
    runtimes = _runtimes(methods, env_id, settings, seed, work_dir)
    scorer = _scorer_for(methods, runtimes, policy)
    contexts = [runtime.context(scorer=scorer, iteration=0) for runtime in runtimes]

    t0 = time.perf_counter()
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=groups).tolist()
    tasks = group_tasks(seeds, group_size, split=split)
    envs = make_envs(env_id, min(len(tasks), batch_size), split=split, **env_kwargs)
    episodes = collect_episodes(
        envs,
        policy,
        tasks,
        env_id=env_id,
        prompt_format=prompt_format,
        answer_prefix=_answer_prefix(methods, runtimes),
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
    informed = informed_labels(env_id, episodes, split=split, env_kwargs=env_kwargs)
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
            informed,
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
        informed,
    )


def informed_labels(
    env_id: str, episodes: list[Episode], *, split: str, env_kwargs: dict[str, Any]
) -> list[np.ndarray] | None:
    """Each turn's information-state progress label, ``D(s) - D(s')`` with D the env's
    ``informed_steps_to_go()`` (an expert's expected cost-to-go from what the agent has seen),
    by replaying every episode from its reset seed; None where the env has no such oracle.
    Failed episodes get NaN labels (left out of every score).

    Raises:
        ValueError: a replay's observations differ from the recorded ones.
    """
    env = make_envs(env_id, 1, split=split, **env_kwargs)[0]
    try:
        env.reset(seed=0)
        if informed_cost_to_go(env) is None:
            return None
        labels = []
        for episode in episodes:
            if episode.failed:
                labels.append(np.full(len(episode.turns), np.nan))
                continue
            observation, _ = env.reset(seed=episode.metadata["seed"])
            before = informed_cost_to_go(env)
            row = []
            for t, turn in enumerate(episode.turns):
                check_replay(observation, episode, t, "information-state labels")
                observation, *_ = env.step(turn.action)
                after = informed_cost_to_go(env)
                row.append(np.nan if before is None or after is None else before - after)
                before = after
            labels.append(np.array(row, dtype=np.float64))
        return labels
    finally:
        env.close()


def mc_reference_scores(report: CreditReport) -> tuple[float, int, float] | None:
    """The Monte-Carlo advantages' own within-episode Spearman, episodes ranked and batch AUC
    against the progress labels (over the sampled turns): how far the behaviour policy's own
    advantage agrees with the expert's notion of progress, a reference row for the methods."""
    if report.mc is None:
        return None
    return score_turn_sample(report.episodes, report.mc.turns, report.mc.advantage)


def mc_informed_scores(report: CreditReport) -> tuple[float, int, float] | None:
    """`mc_reference_scores` against the information-state labels (None without them)."""
    if report.mc is None or report.informed_labels is None:
        return None
    return score_turn_sample(
        report.episodes, report.mc.turns, report.mc.advantage, report.informed_labels
    )

"""Every `creditgym credit-report` behind the README's "Credit fidelity" table, stamped.

    python benchmarks/credit_reports.py household   # or webshop, search, keyroom, coop, twx,
                                                    # checkpoint, learned, all

Each report runs the library's CLI in a child process (one thread) and writes
``results/credit_report_<env>_<agent>.{json,md}`` (and a ``.png`` for the household presets);
this runner then stamps both files with `provenance` (the JSON gains a ``provenance`` key, the
markdown the stamp's header above the report's own command line). Scripted agents take seconds
to a few minutes per report on one core, the tiny model a few minutes.

- ``checkpoint``: the quickstart policy after 10 iterations, trained first into
  ``results/runs/q10`` (``creditgym train configs/quickstart_rl.yaml train.iterations=10``) when
  that run is not there yet.
- ``learned``: the learning benchmark's "tight" policies, seed 0 (its warm start and GRPO after
  20 iterations), which ``python benchmarks/learning.py --setting tight`` trains first.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from provenance import RESULTS, ROOT, stamp_existing, stamp_or_exit  # noqa: E402

HOUSEHOLD = (
    "grpo,grpo:normalization=mean,gigpo,gigpo:normalization=mean_std,gigpo:step_weight=0.5,"
    "env+calm/grpo,env+calm/gigpo"
)
IGPO_VARIANTS = (
    "grpo,gigpo,igpo,env+info_gain:gain=log_prob_diff/discounted_group,"
    "env+info_gain/discounted_group:normalization=separate,"
    "env+info_gain:gain=log_prob_diff/discounted_group:normalization=separate,"
    "env+info_gain/gigpo"
)
COOP = "grpo,gigpo,lare/discounted_group,lare:variant=rrd/discounted_group,lare/gigpo"
SCRIPTED = ("random", "expert:eps=0.5")
MC = ("--mc-gamma", "0.95")
Q10_RUN = RESULTS / "runs" / "q10"
TIGHT_RUNS = RESULTS / "runs" / "learning" / "tight"


@dataclass(frozen=True)
class Report:
    """One `creditgym credit-report`, written to ``results/credit_report_<name>.{json,md}``."""

    name: str
    agent: str
    env: str
    methods: str
    options: tuple[str, ...] = ()
    plot: bool = False
    seed: int = 0

    def argv(self) -> list[str]:
        out = RESULTS / f"credit_report_{self.name}"
        argv = ["credit-report", "--env", self.env, "--agent", self.agent]
        argv += ["--methods", self.methods, "--seed", str(self.seed), *self.options]
        argv += ["--json", f"{out}.json", "--markdown", f"{out}.md"]
        return argv + (["--plot", f"{out}.png"] if self.plot else [])


def _tag(agent: str) -> str:
    return agent.replace(":eps=0.5", "_eps05")


def household() -> list[Report]:
    presets = {"easy": "HouseholdEasy", "medium": "HouseholdMedium", "full": "Household"}
    options = ("--groups", "32", "--group-size", "8", "--mc", "32", "--mc-turns", "256", *MC)
    return [
        Report(f"{preset}_{_tag(agent)}", agent, f"creditgym/{env}-v0", HOUSEHOLD, options, True)
        for agent in SCRIPTED
        for preset, env in presets.items()
    ]


def checkpoint() -> list[Report]:
    model = (Q10_RUN / "checkpoints" / "iter_000010" / "model").relative_to(ROOT)
    if not (ROOT / model).is_dir():
        run_creditgym(
            "train", "configs/quickstart_rl.yaml", "train.iterations=10", "run.threads=1",
            f"run.output_dir={Q10_RUN.relative_to(ROOT)}",
        )  # fmt: skip
    env = "creditgym/HouseholdEasy-v0"
    return [
        Report(
            "easy_q10", str(model), env, HOUSEHOLD,
            ("--groups", "16", "--group-size", "8", "--mc", "8", "--mc-turns", "64", *MC), True,
        ),
        Report(
            "easy_q10_seed1", str(model), env, "grpo,gigpo,gigpo:normalization=mean_std",
            ("--groups", "32", "--group-size", "8"), seed=1,
        ),
    ]  # fmt: skip


def learned() -> list[Report]:
    """The Monte-Carlo yardstick on real runs' checkpoints, with the planner's and the searcher's
    labels beside it (HouseholdEasy with the 8-step budget of the "tight" setting)."""
    checkpoints = {
        "tight_warm": sorted(TIGHT_RUNS.glob("warm-seed0-*/checkpoints/iter_000000/model")),
        "tight_grpo20": sorted(TIGHT_RUNS.glob("grpo-seed0-*/checkpoints/iter_000020/model")),
    }
    if not all(checkpoints.values()):
        raise SystemExit(
            f"error: no seed-0 checkpoints of the 'tight' setting under {TIGHT_RUNS}; train them "
            "first with: python benchmarks/learning.py --setting tight"
        )
    options = ("--env-kwarg", "max_steps=8", "--groups", "16", "--group-size", "8")
    options += ("--mc", "8", "--mc-turns", "128", "--mc-gamma", "1")
    methods = "grpo,gigpo,gigpo:normalization=mean_std,turn_level"
    env = "creditgym/HouseholdEasy-v0"
    return [
        Report(f"easy_{tag}", str(paths[0].relative_to(ROOT)), env, methods, options)
        for tag, paths in checkpoints.items()
    ]


def webshop() -> list[Report]:
    methods = "grpo,gigpo,gigpo:normalization=mean_std,gigpo:step_weight=0.5"
    options = ("--groups", "16", "--group-size", "8", "--mc", "16", "--mc-turns", "128", *MC)
    return [
        Report(f"webshop_{_tag(agent)}", agent, "creditgym/WebShopEasy-v0", methods, options)
        for agent in SCRIPTED
    ]


def search() -> list[Report]:
    env = "creditgym/SearchQAEasy-v0"
    options = ("--groups", "16", "--group-size", "8", "--mc", "16", "--mc-turns", "128", *MC)
    methods = "grpo,gigpo,gigpo:normalization=mean_std"
    reports = [Report(f"search_{_tag(agent)}", agent, env, methods, options) for agent in SCRIPTED]
    # IGPO needs the policy's log-probs: the untrained tiny model `creditgym train` starts from
    tiny = ("--groups", "16", "--group-size", "8", "--mc", "8", "--mc-turns", "32", *MC)
    return [*reports, Report("search_tiny", "tiny", env, IGPO_VARIANTS, tiny)]


def keyroom() -> list[Report]:  # NLE cannot clone a game: no Monte-Carlo
    methods = "grpo,gigpo,env+calm/grpo,env+calm/gigpo"
    options = ("--groups", "8", "--group-size", "8", "--judge", "oracle")
    return [
        Report(f"keyroom_{_tag(agent)}", agent, "creditgym/MiniHackKeyRoom-v0", methods, options)
        for agent in SCRIPTED
    ]


def coop() -> list[Report]:  # multi-agent: the team's labels and Monte-Carlo advantages
    options = ("--groups", "16", "--group-size", "8", "--lare-factors", "hand")
    options += ("--mc", "16", "--mc-turns", "128", *MC, "--env-kwarg", "receptacles=3")
    options += ("--env-kwarg", "distractors=0", "--env-kwarg", "max_steps=12")
    return [
        Report(f"coop_{_tag(agent)}", agent, "creditgym/CoopHousehold-v0", COOP, options)
        for agent in SCRIPTED
    ]


def twx() -> list[Report]:
    """A real engine: TextWorldExpress's coin game. Its JVM engines run 8 at a time
    (``--batch-size``); the label is coin's omniscient shortest path. Monte-Carlo works there too
    (clones replay) but ran over half an hour on 2 cores, so it is left out."""
    return [
        Report(
            "twx_coin_expert_eps05", "expert:eps=0.5", "creditgym/TWX-Coin-v0",
            "grpo,gigpo,gigpo:normalization=mean_std",
            ("--groups", "16", "--group-size", "8", "--batch-size", "8"),
        )
    ]  # fmt: skip


GROUPS = {
    "household": household,
    "checkpoint": checkpoint,
    "learned": learned,
    "webshop": webshop,
    "search": search,
    "keyroom": keyroom,
    "coop": coop,
    "twx": twx,
}


def run_creditgym(*argv: str) -> None:
    """Run the library's CLI in a child process on one thread; a failure ends the runner."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "creditgym", *argv], cwd=ROOT, env=env)
    if done.returncode != 0:
        raise SystemExit(f"error: `creditgym {argv[0]}` failed (exit {done.returncode})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("group", choices=[*GROUPS, "all"])
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    args = parser.parse_args()
    stamp = stamp_or_exit(args.allow_dirty)
    for name in GROUPS if args.group == "all" else [args.group]:
        for report in GROUPS[name]():
            start = time.perf_counter()
            run_creditgym(*report.argv())
            stem = RESULTS / f"credit_report_{report.name}"
            stamp_existing(stamp, stem.with_suffix(".json"), stem.with_suffix(".md"))
            print(f"{report.name}: {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()

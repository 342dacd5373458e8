"""Every advantage estimator side by side: the same envs, seeds, model and compute budget.

    python benchmarks/estimators.py --jobs 2                   # train every cell, then the tables
    python benchmarks/estimators.py --envs easy --methods grpo,gigpo --seeds 0 --steps 3000
    python benchmarks/estimators.py --table --fidelity         # + each method's credit-report
    python benchmarks/estimators.py --table                    # tables from the saved runs only

(With a checkout that is not pip-installed, run it with PYTHONPATH=. from the repository.)

Each cell is `creditgym train configs/quickstart_rl.yaml` on one env with `credit.estimator` set
to the method (tree and vine also set `rollout.branch.mode`), 8 groups x 8 episodes per
iteration (vine: 1 x 4, see `METHODS`), one torch thread per process, stopped by a budget
(`train.max_env_steps` or `train.max_policy_tokens`) rather than an iteration count.
HouseholdMedium and Household start from an expert warm start (`train.sft_warmup`, as
`credit_curves.py --preset medium` does), trained once per env and seed and shared by every
method, so all methods of a seed start from the same weights.

Two budgets, two tables: equal env steps, and equal policy tokens (prompt + response tokens of
every turn the policy generated; turns a branch copies from its parent count for neither).
A method that does not branch spends tokens at nearly the same rate per env step, so its token
cell is often the same run: training is deterministic at one thread, so when the step run's own
token counter crosses the token budget in the iteration it stopped, the token run would be that
run, and it is reused (counted as "= n/3" in the table); otherwise it is trained. The token
budget defaults to what grpo (seed 0) spent per env step times the step budget. Held-out
success is measured once, after the budget, on `--eval-episodes` tasks per held-out split.

Fidelity (`--fidelity`): `creditgym credit-report` of every method on one batch of the env,
played by the seed-0 grpo policy at the end of its step budget (a fixed policy that has learned
something), scored against Monte-Carlo advantages of that policy; a method the report cannot
score (vine needs the Monte-Carlo values of branch rollouts, which the report does not make)
shows the report's own error; ppo (an untrained critic) and tree (a plain batch, no branches)
are scored on what the report can give them, and say so.

Methods not registered when this runs (`creditgym.credit.list_estimators`) are listed as
missing, never left out. Results: one JSON per cell in `--out`/estimators_runs/, the tables in
`--out`/estimators_<env>.md, run directories in `--out`/runs/estimators/.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import DirtyTree, commit  # noqa: E402
from train_runs import METHODS, summarise_run, train_process  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class EnvPreset:
    """An env of the table: its id, overrides, warm start and default budgets."""

    env_id: str
    overrides: tuple[str, ...] = ()
    warm_start: tuple[str, ...] = ()  # train.sft_warmup.* overrides; () = from scratch
    steps: int = 2500  # env-step budget: 3 iterations of 8 x 8 HouseholdEasy episodes
    tokens: int = 0  # policy-token budget (0: what grpo spent per env step x the step budget)


ENVS: dict[str, EnvPreset] = {
    "easy": EnvPreset("creditgym/HouseholdEasy-v0"),
    "medium": EnvPreset(
        "creditgym/HouseholdMedium-v0",
        ("train.lr=0.0003",),
        ("train.sft_warmup.episodes=300", "train.sft_warmup.epochs=3"),
    ),
    "full": EnvPreset(
        "creditgym/Household-v0",
        ("train.lr=0.0003",),
        ("train.sft_warmup.episodes=300", "train.sft_warmup.epochs=3"),
    ),
}

COMMON = (
    "rollout.groups=8",
    "rollout.group_size=8",
    "train.iterations=100000",  # the budget stops the run
    "eval.every=0",
    "run.threads=1",
    "run.progress=false",
    "run.tensorboard=false",
    "run.resume=false",
    "run.log_episodes=0",
)


def _registered() -> set[str]:
    from creditgym.credit import list_estimators

    return set(list_estimators())


class Bench:
    """The cells of the table, trained (or reused) and summarised, each saved as it finishes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        try:  # cells are keyed by the clean commit that trained them
            self.commit = commit(allow_dirty=args.allow_dirty)
        except DirtyTree as error:
            raise SystemExit(f"error: {error}") from None
        self.out = Path(args.out)
        self.cells = self.out / "estimators_runs"
        self.runs = self.out / "runs" / "estimators"
        self.cells.mkdir(parents=True, exist_ok=True)

    # ---- budgets and warm starts ----

    def budget(self, env: str, kind: str) -> int:
        preset = ENVS[env]
        steps = self.args.steps or preset.steps
        if kind == "steps":
            return steps
        if self.args.tokens or preset.tokens:
            return self.args.tokens or preset.tokens
        # equal to what grpo (seed 0) spent per env step at the step budget, so both tables
        # give grpo the same compute
        reference = self.cell_path(env, "grpo", 0, "steps")
        if reference.is_file() and "error" not in (run := json.loads(reference.read_text())):
            return round(steps * run["policy_tokens"] / run["env_steps"], -3)
        return int(steps * self.args.tokens_per_step)

    def warm_model(self, env: str, seed: int) -> Path | None:
        """The seed's warm-started model of `env` (trained once, shared by every method)."""
        preset = ENVS[env]
        if not preset.warm_start:
            return None
        run_dir = self.runs / f"{env}-warm-seed{seed}"
        model = run_dir / "checkpoints" / "iter_000000" / "model"
        if (model / "config.json").is_file():
            return model
        overrides = [
            f"env.id={preset.env_id}",
            *preset.overrides,
            *preset.warm_start,
            *COMMON,
            "train.iterations=0",
            f"eval.episodes={self.args.eval_episodes}",
            f"run.seed={seed}",
            f"run.output_dir={run_dir}",
        ]
        log = self.runs / f"{env}-warm-seed{seed}.log"
        code, seconds, cpu, tail = train_process(overrides, run_dir, log)
        if code != 0:
            raise RuntimeError(f"warm start of {env} seed {seed} failed: {tail}")
        print(f"warm start {env} seed {seed}: {seconds / 60:.1f} min, {cpu / 60:.1f} CPU min")
        return model

    # ---- one cell ----

    def cell_path(self, env: str, method: str, seed: int, kind: str) -> Path:
        return self.cells / f"{env}-{method}-{kind}-seed{seed}.json"

    def cell(self, env: str, method: str, seed: int, kind: str) -> dict:
        """Train (or reuse) one cell; its summary, saved as JSON."""
        path = self.cell_path(env, method, seed, kind)
        if path.is_file() and not self.args.force:
            saved = json.loads(path.read_text())
            if saved.get("commit") == self.commit:  # another commit's cell is retrained
                return saved
        budget = self.budget(env, kind)
        if kind == "tokens":
            reused = self._reuse_step_run(env, method, seed, budget)
            if reused is not None:
                path.write_text(json.dumps(reused, indent=1))
                return reused
        preset, spec = ENVS[env], METHODS[method]
        run_dir = self.runs / f"{env}-{method}-{kind}-seed{seed}"
        overrides = [
            f"env.id={preset.env_id}",
            *preset.overrides,
            *COMMON,
            f"credit.estimator={{name: {spec.estimator}}}",
            *spec.overrides,
            f"train.max_{'env_steps' if kind == 'steps' else 'policy_tokens'}={budget}",
            f"eval.episodes={self.args.eval_episodes}",
            f"run.seed={seed}",
            f"run.output_dir={run_dir}",
            *self.args.set,
        ]
        warm = self.warm_model(env, seed)
        if warm is not None:
            overrides.append(f"policy.model={warm}")
        code, seconds, cpu, tail = train_process(overrides, run_dir, run_dir.with_suffix(".log"))
        summary = {
            "env": env,
            "env_id": preset.env_id,
            "method": method,
            "seed": seed,
            "budget": kind,
            "budget_value": budget,
            "seconds": seconds,
            "cpu_seconds": cpu,
            "commit": self.commit,
            "command": "creditgym train configs/quickstart_rl.yaml " + shlex.join(overrides),
        }
        if code != 0:
            summary["error"] = tail
            print(f"FAILED {env} {method} {kind} seed {seed}: {tail}", flush=True)
        else:
            summary.update(summarise_run(run_dir))
            print(
                f"{env} {method} {kind} seed {seed}: {summary['iterations']} it, "
                f"{summary['env_steps']} steps, {summary['policy_tokens']} tokens, "
                f"{summary['final']} in {seconds / 60:.1f} min",
                flush=True,
            )
        path.write_text(json.dumps(summary, indent=1))
        return summary

    def _reuse_step_run(self, env: str, method: str, seed: int, budget: int) -> dict | None:
        """The step-budget run of the same cell, if a token budget would have stopped it in
        the same iteration (the same run, since training is deterministic at one thread)."""
        steps_path = self.cell_path(env, method, seed, "steps")
        if not steps_path.is_file():
            return None
        run = json.loads(steps_path.read_text())
        if "error" in run:
            return None
        tokens = run["curve"]["policy_tokens"]
        stop = next((i for i, t in enumerate(tokens) if t >= budget), None)
        if stop is None or stop + 1 != run["iterations"]:
            return None
        return {**run, "budget": "tokens", "budget_value": budget, "reused_from": "steps"}


# ---- fidelity ------------------------------------------------------------------------------


def fidelity(bench: Bench, env: str, methods: list[str], registered: set[str]) -> dict:
    """credit-report of every registered method on `env`, played by the seed-0 grpo policy
    after its step budget; a method the report rejects gets the report's message."""
    args = bench.args
    path = bench.out / f"estimators_fidelity_{env}.json"
    agent_dir = bench.runs / f"{env}-grpo-steps-seed0" / "checkpoints"
    checkpoints = sorted(agent_dir.glob("iter_*/model"))
    if not checkpoints:
        return {"error": f"no grpo seed-0 step run of {env} to play the batch (run it first)"}
    agent = str(checkpoints[-1])
    preset = ENVS[env]
    base = ["--env", preset.env_id, "--agent", agent, "--seed", "0"]
    base += ["--history-length", "2"]
    env_ = {**os.environ, "OMP_NUM_THREADS": "1"}
    specs = [METHODS[m].estimator for m in methods if METHODS[m].estimator in registered]
    errors: dict[str, str] = {}
    # a cheap pass (one group of two episodes each, in this process) finds what the report
    # cannot score, with its reason, before the Monte-Carlo batch is paid for
    import torch

    from creditgym.credit.specs import parse_methods
    from creditgym.measure.credit_report import run_credit_report

    torch.set_num_threads(1)
    for spec in specs:
        try:
            run_credit_report(preset.env_id, agent, parse_methods(spec), groups=1, group_size=2)
        except ValueError as error:
            errors[spec] = str(error).splitlines()[0]
    scorable = [s for s in specs if s not in errors]
    result: dict = {"agent": agent, "errors": errors, "methods": {}}
    if scorable:
        report_json = bench.out / f"estimators_fidelity_{env}_report.json"
        report_md = report_json.with_suffix(".md")
        command = [sys.executable, "-m", "creditgym", "credit-report", *base]
        command += ["--methods", ",".join(scorable), "--groups", str(args.fidelity_groups)]
        command += ["--group-size", "8", "--mc", str(args.fidelity_mc)]
        command += ["--mc-turns", str(args.fidelity_mc_turns), "--mc-gamma", "0.95"]
        command += ["--json", str(report_json), "--markdown", str(report_md)]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env_, capture_output=True, text=True)
        result["seconds"] = time.perf_counter() - started
        result["command"] = shlex.join(["creditgym", *command[3:]])
        if done.returncode != 0:
            result["error"] = (done.stderr or done.stdout).strip().splitlines()[-1:]
        else:
            report = json.loads(report_json.read_text())
            result["methods"] = {
                name: {
                    "mc_spearman": m.get("mc_spearman"),
                    "mc_sign_agreement": m.get("mc_sign_agreement"),
                    "batch_auc": m.get("batch_auc"),
                    "within_episode_spearman": m.get("within_episode_spearman"),
                }
                for name, m in report["methods"].items()
            }
            result["batch"] = {k: report[k] for k in ("episodes", "success", "turns")}
    path.write_text(json.dumps(result, indent=1))
    return result


# ---- tables --------------------------------------------------------------------------------


def _mean_std(values: list[float], fmt: str = "{:.1%}") -> str:
    if not values:
        return "-"
    return f"{fmt.format(float(np.mean(values)))} +- {fmt.format(float(np.std(values)))}"


def table(bench: Bench, env: str, kind: str, methods: list[str], seeds: list[int]) -> str:
    registered = _registered()
    fid_path = bench.out / f"estimators_fidelity_{env}.json"
    fid = json.loads(fid_path.read_text()) if fid_path.is_file() else None
    saved = {
        m: [
            json.loads(bench.cell_path(env, m, s, kind).read_text())
            for s in seeds
            if bench.cell_path(env, m, s, kind).is_file()
        ]
        for m in methods
    }
    # only this commit's cells: a table mixes no code versions
    cells = {m: [r for r in runs if r.get("commit") == bench.commit] for m, runs in saved.items()}
    splits = sorted({s for runs in cells.values() for r in runs for s in r.get("final", {})})
    header = ["method", *splits, "start", "iterations", "env steps", "policy tokens"]
    header += ["tokens/step", "minutes/run (wall / CPU)", "MC rho (fidelity)"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    blank = " |" * (len(header) - 2)  # the empty cells after a row's one-line reason
    for method in methods:
        runs = cells[method]
        ok = [r for r in runs if "error" not in r]
        if METHODS[method].estimator not in registered and not ok:
            lines.append(f"| {method} | missing: not registered when this ran |" + blank)
            continue
        if not ok:
            why = "failed: " + runs[0]["error"][:120].replace("|", "/") if runs else "not run"
            lines.append(f"| {method} | {why} |" + blank)
            continue
        row = [
            method
            + (" (" + ",".join(str(r["seed"]) for r in ok) + ")" if len(ok) < len(seeds) else "")
        ]
        row += [_mean_std([r["final"][s] for r in ok]) for s in splits]
        row.append(
            " / ".join(
                f"{float(np.mean([r['initial'].get(s, 0) for r in ok])):.0%}" for s in splits
            )
        )
        row.append(f"{np.mean([r['iterations'] for r in ok]):.1f}")
        row.append(f"{np.mean([r['env_steps'] for r in ok]):.0f}")
        row.append(f"{np.mean([r['policy_tokens'] for r in ok]):.0f}")
        row.append(f"{np.mean([r['policy_tokens'] / r['env_steps'] for r in ok]):.1f}")
        reused = sum(1 for r in ok if r.get("reused_from"))
        cpu = np.mean([r.get("cpu_seconds", np.nan) for r in ok]) / 60
        minutes = f"{np.mean([r['seconds'] for r in ok]) / 60:.1f} / {cpu:.1f}"
        row.append(minutes + (f" (= {reused}/{len(ok)})" if reused else ""))
        row.append(_fidelity_cell(fid, METHODS[method].estimator))
        failed = len(runs) - len(ok)
        if failed:
            row[0] += f" [{failed} failed]"
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


# What a one-batch credit-report computes for methods that need more than one plain batch
FIDELITY_NOTES = {
    "ppo": " (critic untrained: a one-batch report has no training)",
    "tree": " (plain batch: no branch trees, only first divergences get credit)",
}


def _fidelity_cell(fid: dict | None, estimator: str) -> str:
    if fid is None:
        return "-"
    if estimator in fid.get("methods", {}):
        m = fid["methods"][estimator]
        if m.get("mc_spearman") is None:
            return "n/a"
        return f"{m['mc_spearman']:+.3f}" + FIDELITY_NOTES.get(estimator, "")
    if estimator in fid.get("errors", {}):
        return "n/a (" + fid["errors"][estimator].replace("|", "/")[:160] + ")"
    return "-"


# ---- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", default="easy,medium", help=f"of {', '.join(ENVS)}")
    parser.add_argument("--methods", default=",".join(METHODS), help="default: all ten")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--budgets", default="steps,tokens", help="steps, tokens or both")
    parser.add_argument("--steps", type=int, default=0, help="env-step budget (default: env's)")
    parser.add_argument("--tokens", type=int, default=0, help="policy-token budget")
    parser.add_argument(
        "--tokens-per-step",
        type=float,
        default=100.0,
        help="token budget = this x the step budget, unless --tokens or the env sets one",
    )
    parser.add_argument("--eval-episodes", type=int, default=32)
    parser.add_argument("--jobs", type=int, default=2, help="training processes at once")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--force", action="store_true", help="retrain cells already saved")
    parser.add_argument("--table", action="store_true", help="only write tables from saved cells")
    parser.add_argument("--fidelity", action="store_true", help="also run each env's report")
    parser.add_argument("--fidelity-groups", type=int, default=16)
    parser.add_argument("--fidelity-mc", type=int, default=8)
    parser.add_argument("--fidelity-mc-turns", type=int, default=48)
    parser.add_argument("--set", nargs="*", default=[], help="extra config overrides")
    parser.add_argument("--allow-dirty", action="store_true", help="run on uncommitted changes")
    args = parser.parse_args()
    os.chdir(ROOT)
    bench = Bench(args)
    envs = args.envs.split(",")
    methods = args.methods.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    kinds = args.budgets.split(",")
    unknown = [m for m in methods if m not in METHODS] + [e for e in envs if e not in ENVS]
    if unknown:
        raise SystemExit(
            f"unknown method/env {unknown}; methods: {list(METHODS)}, envs: {list(ENVS)}"
        )
    registered = _registered()
    missing = [m for m in methods if METHODS[m].estimator not in registered]
    if missing:
        print(f"missing (not registered, reported as such): {', '.join(missing)}", flush=True)
    runnable = [m for m in methods if m not in missing]

    if not args.table:
        for env in envs:  # one env at a time: its warm starts, then its cells
            with ThreadPoolExecutor(args.jobs) as pool:
                list(pool.map(lambda s, e=env: bench.warm_model(e, s), seeds))
            for kind in kinds:  # the step budget first: a token cell may reuse its step run
                # seed-major: a run cut short leaves whole seeds of every method
                jobs = [(env, m, s, kind) for s in seeds for m in runnable]
                with ThreadPoolExecutor(args.jobs) as pool:
                    list(pool.map(lambda job: bench.cell(*job), jobs))
    if args.fidelity:
        for env in envs:
            result = fidelity(bench, env, runnable, registered)
            print(f"fidelity {env}: {result.get('methods')} errors {result.get('errors')}")

    sections = []
    for env in envs:
        parts = [f"## {ENVS[env].env_id}"]
        for kind in kinds:
            budget = bench.budget(env, kind)
            title = "env steps" if kind == "steps" else "policy tokens"
            parts.append(f"\nBudget: {budget} {title} per run; seeds {args.seeds}\n")
            parts.append(table(bench, env, kind, methods, seeds))
        text = "\n".join(parts)
        (bench.out / f"estimators_{env}.md").write_text(text + "\n")
        sections.append(text)
    print("\n\n".join(sections))


if __name__ == "__main__":
    main()

"""The learning benchmark: does a credit method make the policy learn more than GRPO?

    python benchmarks/learning.py --gate --methods gigpo,turn_level,ppo        # 1. the gate
    python benchmarks/learning.py --methods grpo,gigpo --seeds 0-15 --jobs 2   # 2. the runs
    python benchmarks/learning.py --methods grpo,gigpo --seeds 0-15 --table    # 3. the table

(With a checkout that is not pip-installed, run it with PYTHONPATH=. from the repository.)

A run is `creditgym train CONFIG` of the setting (`SETTINGS`, or `--config`) with
`credit.estimator` set to the method (tree and vine also branch, as in `estimators.py`), one
torch thread, pinned to one core (`--jobs` runs at once, each on its own core). Methods are
paired by seed: seed s draws the same training tasks and starts from the same weights for
every method (a setting's supervised warm start is trained once per seed, as a run of 0
iterations, and every method's run resumes from its checkpoint, optimizer included, so that
`train.carry_sft_optimizer` still hands its optimizer over; a warning names a seed whose
methods started from different held-out success), and every run is evaluated once at the end on the
same held-out tasks (task i of a split is ``reset(seed=i)``): `--eval-episodes` per split,
256 by default (the standard error of a success rate near 50% is then 3 points; at 64 it is 6).

Two metrics per run: held-out success after training, and the training-success area under
the curve (the mean of ``rollout/success`` over the iterations: how fast it learned, read on
the training batches, so it costs no evaluation). The tables (`learning_report.py`) give each
method's mean with its 95% t interval over seeds, its paired difference to GRPO with 95% t and
bootstrap intervals (`paired_stats.py`), and what RL added to the warm start per split (each
run against its own start); the plot shows training success per iteration, mean and 95% band
over seeds.

The gate (`--gate`) comes first: one iteration per method from the setting's warm start on the
same batch, reading the batch's ``credit/grpo_corr`` (and sign agreement, share of turns beyond
a multiple of GRPO's advantages). Where a method's advantages correlate with GRPO's at 0.8 or
more, the setting cannot show a difference between them: choose another setting first.

Resumable: each finished run is stored as JSON in `--out`/learning_runs/SETTING/, its name keyed
by the code (`run_store.code_key`: a hash of the committed training code, so that committing a
README or a test keeps the runs; the run records its commit too; with `--allow-dirty`, plus a
hash of the uncommitted diff, recorded as such) and a hash of the run's resolved config; a rerun
skips every run already stored under the same keys. Several benchmark processes may share one
store (e.g. one per core, started at different times): a run being trained holds a lock, and the
others skip it (or wait, for a warm start they need). A run interrupted midway resumes from its
own last checkpoint (`--save-every`), and a longer run (`--iterations`) of a stored run's config
continues that run from its last checkpoint (a resumed run equals one trained straight through:
`tests/test_trainer.py`), its start still the warm start's. Other training code or another
config trains anew; the table reads only the current code's runs (`--table --code KEY` reads
those of an earlier code: the tables of a results file, rebuilt from its stored runs after the
code moved on).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import queue
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning_report import (  # noqa: E402
    BASELINE,
    diagnostics_table,
    gain_table,
    gate_table,
    plot_curves,
    results_table,
)
from provenance import DirtyTree, commit, provenance, write_results  # noqa: E402
from run_store import code_key, config_hash, copy_run, read_metrics, take_lock  # noqa: E402
from train_runs import METHODS as ESTIMATOR_METHODS  # noqa: E402
from train_runs import Method, summarise_run, train_process  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WARM = "warm"  # the method name of a seed's shared warm start (`Benchmark.warm_start`)
MIN_EVAL_EPISODES = 256
CONTINUED_FROM = "continued_from.json"  # in a run's directory: the stored run it continues
GATE_EVAL_EPISODES = 32  # the gate's look at the warm start's held-out success (+- ~9 points)


#: A trust-region update, as the learning issue asks to test it: 4 mini-batches x 4 epochs with
#: PPO's KL early stop, the warm start's AdamW moments carried over, every episode weighing the
#: same and forced tokens out of the denominators. Compared with GRPO's default one-step update.
TRUST_REGION = (
    "train.mini_batches=4",
    "train.ppo_epochs=4",
    "train.target_kl=0.01",
    "train.carry_sft_optimizer=true",
    "train.loss_agg=episode_mean",
    "train.count_forced_tokens=false",
)

#: The methods compared: every estimator of `estimators.py`, GiGPO with the paper's other
#: normalisation (std-scaled groups: small step differences count as much as outcomes), and
#: update variants of GRPO.
METHODS: dict[str, Method] = {
    **ESTIMATOR_METHODS,
    "gigpo_mean_std": Method("gigpo", ("credit.estimator.normalization=mean_std",)),
    "grpo_trust_region": Method("grpo", TRUST_REGION),
}


@dataclass(frozen=True)
class Setting:
    """A training setting the methods are compared in: a config and what it overrides."""

    config: str
    overrides: tuple[str, ...] = ()
    about: str = ""


SETTINGS: dict[str, Setting] = {
    "main": Setting(
        "configs/quickstart.yaml", (), "the main job: warm start on the searching expert, 20 it"
    ),
    "scratch": Setting(
        "configs/quickstart_rl.yaml", (), "pure RL from scratch on HouseholdEasy, 40 iterations"
    ),
    # candidates where step credit should matter (part 4 of the setting's choice; the gate
    # decides, the README says why each was kept or dropped)
    "weak": Setting(
        "configs/quickstart.yaml",
        ("train.sft_warmup.episodes=60",),
        "the main job from a weaker warm start (60 demonstrations instead of 600)",
    ),
    "few": Setting(
        "configs/quickstart.yaml",
        ("train.sft_warmup.episodes=8",),
        "the main job from 8 demonstrations: a warm start near 20% that leaves RL room",
    ),
    "tight": Setting(
        "configs/quickstart.yaml",
        ("env.kwargs.max_steps=8",),
        "the main job with an 8-step budget: path length decides success",
    ),
    "medium": Setting(
        "configs/quickstart.yaml",
        ("env.id=creditgym/HouseholdMedium-v0",),
        "HouseholdMedium (two-object and clean/heat/cool tasks, closed receptacles, 30 steps)",
    ),
    "long": Setting(
        "configs/quickstart.yaml",
        ("env.id=creditgym/Household-v0",),
        "the ALFWorld-sized Household (15-25 receptacles, 50 steps): long, recurring states",
    ),
}

RUN_OPTIONS = (  # every run: quiet, one thread, no episode log, evaluated only at the end
    "run.threads=1",
    "run.progress=false",
    "run.tensorboard=false",
    "run.log_episodes=0",
    "run.resume=true",
)


def _parse_seeds(text: str) -> list[int]:
    """``0,1,2`` or ``0-15`` (or a mix)."""
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds += list(range(int(low), int(high or low) + 1))
    return seeds


@dataclass(frozen=True)
class RunSpec:
    """One training run: the setting's config with a method's overrides, at one seed."""

    setting: str
    method: str
    seed: int
    config: str
    overrides: tuple[str, ...]
    config_hash: str  # `config_hash` of the resolved config
    demonstrations: int  # the config's `train.sft_warmup.episodes` (0: no warm start)
    iterations: int  # the config's `train.iterations`


class Benchmark:
    """The runs of one setting: specs, the store of finished runs, and the cores they run on."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        try:
            self.code = args.code or code_key(args.allow_dirty)
        except DirtyTree as error:
            raise SystemExit(f"error: {error}") from None
        self.out = Path(args.out)
        self.store = self.out / "learning_runs" / args.setting
        self.runs = self.out / "runs" / "learning" / args.setting
        self.store.mkdir(parents=True, exist_ok=True)
        cores = sorted(os.sched_getaffinity(0))
        if args.jobs > len(cores):
            raise SystemExit(f"error: --jobs {args.jobs} but only {len(cores)} cores are usable")
        self.cores: queue.Queue[int] = queue.Queue()
        for core in cores[: args.jobs]:
            self.cores.put(core)

    def spec(self, method: str, seed: int, *, gate: bool = False) -> RunSpec:
        """The run of `method` at `seed`; method `WARM` is the seed's shared warm start (the
        setting's config trained for 0 iterations: its supervised warm start and the
        evaluations around it)."""
        setting = SETTINGS.get(self.args.setting, Setting(self.args.config or ""))
        config = self.args.config or setting.config
        budget = []
        if self.args.iterations:
            budget.append(f"train.iterations={self.args.iterations}")
        if method == WARM:
            budget = ["train.iterations=0"]
        elif gate:  # one batch from the warm start: its credit metrics
            budget = ["train.iterations=1"]
        episodes = min(self.args.eval_episodes, GATE_EVAL_EPISODES) if gate else None
        budget.append(f"eval.episodes={episodes or self.args.eval_episodes}")
        if method == WARM:
            estimator: tuple[str, ...] = ()
        else:
            estimator = (
                f"credit.estimator={{name: {METHODS[method].estimator}}}",
                *METHODS[method].overrides,
            )
        overrides = (
            *setting.overrides,
            *RUN_OPTIONS,
            "eval.every=0",
            f"run.save_every={self.args.save_every}",
            *estimator,
            *budget,
            *self.args.set,
            f"run.seed={seed}",
        )
        from creditgym.config import load_config

        resolved = load_config(config, list(overrides))
        return RunSpec(
            self.args.setting,
            method,
            seed,
            config,
            overrides,
            config_hash(resolved),
            resolved.train.sft_warmup.episodes,
            resolved.train.iterations,
        )

    def with_iterations(self, spec: RunSpec, iterations: int) -> RunSpec:
        """`spec` trained for `iterations` instead (the last override wins)."""
        from creditgym.config import load_config

        overrides = (*spec.overrides, f"train.iterations={iterations}")
        resolved = load_config(spec.config, list(overrides))
        return dataclasses.replace(
            spec, overrides=overrides, config_hash=config_hash(resolved), iterations=iterations
        )

    def shorter_run(self, spec: RunSpec) -> tuple[RunSpec, dict] | None:
        """The longest stored run that is `spec` with fewer iterations (same method, seed, code
        and config otherwise), with its checkpoints on disk; None if there is none."""
        found = []
        for path in self.store.glob(f"{spec.method}-seed{spec.seed}-{self.code}-*.json"):
            result = json.loads(path.read_text())
            trained = result.get("iterations")
            if "error" in result or not trained or trained >= spec.iterations:
                continue
            shorter = self.with_iterations(spec, trained)
            if shorter.config_hash == result["config_hash"] and any(
                (self.runs / self.key(shorter) / "checkpoints").glob("iter_*")
            ):
                found.append((trained, shorter, result))
        if not found:
            return None
        _, shorter, result = max(found, key=lambda item: item[0])
        return shorter, result

    def warm_start(self, spec: RunSpec) -> RunSpec | None:
        """The shared warm start `spec` continues from (None: the setting has none)."""
        if spec.method == WARM or spec.demonstrations == 0:
            return None
        return self.spec(WARM, spec.seed, gate=self.args.gate)

    def key(self, spec: RunSpec) -> str:
        return f"{spec.method}-seed{spec.seed}-{self.code}-{spec.config_hash}"

    def saved(self, spec: RunSpec) -> dict | None:
        """The stored result of `spec` under the current code and config, if it finished."""
        path = self.store / f"{self.key(spec)}.json"
        if not path.is_file():
            return None
        result = json.loads(path.read_text())
        return None if "error" in result else result

    def run(self, spec: RunSpec) -> dict:
        """Train `spec` (or return its stored result); store the result as JSON."""
        result = self.saved(spec)
        if result is not None:
            print(f"saved   {spec.method} seed {spec.seed}: skipped", flush=True)
            return result
        key = self.key(spec)
        lock = self.store / f"{key}.lock"
        if not take_lock(lock):  # another benchmark process on this store is training it
            print(f"busy    {spec.method} seed {spec.seed}: another process trains it", flush=True)
            return {"error": "trained by another process (rerun for the table)"}
        try:
            return self._train(spec, key)
        finally:
            lock.unlink(missing_ok=True)

    def _train(self, spec: RunSpec, key: str) -> dict:
        path, run_dir = self.store / f"{key}.json", self.runs / key
        # resume a run cut short from its own checkpoint; anything else (no checkpoint yet, or
        # an attempt that failed) starts over, so no stale metrics rows are appended to
        fresh = path.is_file() or not any((run_dir / "checkpoints").glob("iter_*"))
        resumed, warm = not fresh, self.warm_start(spec)
        shorter = self.shorter_run(spec) if fresh else None
        origin = run_dir / CONTINUED_FROM
        if shorter is not None:  # a longer run continues the shorter one from its last checkpoint
            copy_run(self.runs / self.key(shorter[0]), run_dir)
            origin.write_text(json.dumps({"run": self.key(shorter[0]), **shorter[1]}))
            fresh = False
        elif fresh and warm is not None:  # over from the seed's warm start, trained once
            if not self._start_from(warm, run_dir):
                print(f"FAILED  {spec.method} seed {spec.seed}: no warm start", flush=True)
                return {"error": f"the warm start {self.key(warm)} failed"}
            fresh = False
        overrides = [*spec.overrides, f"run.output_dir={run_dir}"]
        core = self.cores.get()
        try:
            code, seconds, cpu, tail = train_process(
                overrides,
                run_dir,
                run_dir.with_suffix(".log"),
                config=spec.config,
                fresh=fresh,
                core=core,
            )
        finally:
            self.cores.put(core)
        result: dict[str, Any] = {
            "setting": spec.setting,
            "method": spec.method,
            "seed": spec.seed,
            "code": self.code,
            "commit": commit(self.args.allow_dirty),
            "config_hash": spec.config_hash,
            "command": shlex.join(["creditgym", "train", spec.config, *overrides]),
            "seconds": seconds,
            "cpu_seconds": cpu,
            "core": core,
            "resumed": resumed,
            "warm_start": self.key(warm) if warm is not None else None,
        }
        # what a continued run started from, kept in its directory so a resume still knows it
        continued = json.loads(origin.read_text()) if origin.is_file() else None
        result["continued_from"] = continued["run"] if continued else None
        if code != 0:
            result["error"] = tail
            print(f"FAILED  {spec.method} seed {spec.seed}: {tail}", flush=True)
        elif spec.method == WARM:
            result["initial"] = _held_out_success(run_dir)
            print(f"warm    seed {spec.seed}: held-out {result['initial']}", flush=True)
        else:
            result.update(summarise_run(run_dir))
            result.update(_extras(run_dir))
            if continued:  # its held-out start is the shorter run's (the warm start's)
                result["initial"] = continued["initial"]
            print(
                f"trained {spec.method} seed {spec.seed}: held-out {result['final']}, "
                f"train AUC {result['train_auc']:.3f}, {seconds / 60:.1f} min",
                flush=True,
            )
        path.write_text(json.dumps(result, indent=1) + "\n")
        return result

    def _start_from(self, warm: RunSpec, run_dir: Path) -> bool:
        """Make `run_dir` a copy of the warm start's (its iteration-0 checkpoint, optimizer
        included, and its metrics), so the trainer resumes the run from there; False if the
        warm start failed."""
        lock = self.store / f"{self.key(warm)}.lock"
        if self.saved(warm) is None and not lock.exists():
            self.run(warm)  # where no thread or process trains it yet (e.g. a single spec)
        while self.saved(warm) is None:  # another thread or process is training it: wait
            if not lock.exists():
                return False
            time.sleep(5)
        copy_run(self.runs / self.key(warm), run_dir)
        return True

    def run_all(self, specs: list[RunSpec]) -> list[dict]:
        """The seeds' warm starts first (each trained once), then the runs, in one queue: a core
        that a warm start leaves idle takes the next run whose warm start is done (a run whose
        warm start is still training waits for it before it takes a core)."""
        warm = list(dict.fromkeys(w for w in map(self.warm_start, specs) if w is not None))
        with ThreadPoolExecutor(self.args.jobs) as pool:
            return list(pool.map(self.run, [*warm, *specs]))[len(warm) :]


def _held_out_success(run_dir: Path) -> dict[str, float]:
    """The last evaluation's success per held-out split."""
    rows = read_metrics(run_dir)
    last = [r for r in rows if any(k.startswith("eval/") for k in r)][-1]
    return {k.split("/")[1]: v for k, v in last.items() if k.endswith("/success")}


def _extras(run_dir: Path) -> dict:
    """What `summarise_run` leaves out: the training-success AUC and the first batch's credit
    agreement with GRPO (the gate's numbers)."""
    rows = read_metrics(run_dir)
    train_rows = [r for r in rows if "rollout/success" in r]
    first = train_rows[0]
    gate = (
        "credit/grpo_corr",
        "credit/grpo_sign_agreement",
        "credit/grpo_beyond_scale_share",
        "credit/mc_spearman",  # with `--set credit.mc_every=1`: the policy's own advantages
        "credit/mc_grpo_spearman",
    )
    return {
        "train_auc": float(np.mean([r["rollout/success"] for r in train_rows])),
        "first_batch": {name.split("/")[1]: first.get(name) for name in gate},
        "update_steps": [r.get("update/steps") for r in train_rows],
    }


# ---- main ------------------------------------------------------------------------------------


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--setting", default="main", help=f"one of {', '.join(SETTINGS)}")
    parser.add_argument("--config", default="", help="a config file instead of the setting's")
    parser.add_argument("--methods", default="grpo,gigpo", help=f"of {', '.join(METHODS)}")
    parser.add_argument("--seeds", default="0-15", help="e.g. 0-15 or 0,1,2")
    parser.add_argument("--eval-episodes", type=int, default=MIN_EVAL_EPISODES)
    parser.add_argument("--iterations", type=int, default=0, help="override train.iterations")
    parser.add_argument("--save-every", type=int, default=5, help="checkpoint interval (resume)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, one core each")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--gate", action="store_true", help="only the gate: one batch each")
    parser.add_argument("--table", action="store_true", help="only the table from saved runs")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides for every run")
    parser.add_argument(
        "--code",
        default="",
        help="with --table: read the runs stored under this training code (a results file's "
        "`code`) instead of the current one's",
    )
    parser.add_argument("--allow-dirty", action="store_true", help="run on uncommitted changes")
    args = parser.parse_args()
    methods = args.methods.split(",")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if args.setting not in SETTINGS and not args.config:
        parser.error(f"unknown setting {args.setting!r}; choose from {', '.join(SETTINGS)}")
    if args.code and not args.table:
        parser.error("--code reads stored runs only: add --table (training uses the current code)")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    try:
        args.seed_list = _parse_seeds(args.seeds)
    except ValueError:
        parser.error(f"--seeds {args.seeds!r}: give numbers, e.g. 0-15 or 0,1,2")
    args.method_list = list(dict.fromkeys([BASELINE, *methods]))  # the baseline always runs
    return args


def main() -> None:
    args = _arguments()
    os.chdir(ROOT)
    bench = Benchmark(args)
    specs = [
        bench.spec(method, seed, gate=args.gate)
        for seed in args.seed_list  # seed-major: a run cut short leaves whole seeds
        for method in args.method_list
    ]
    if args.gate:
        print("gate: one batch per method and seed from the setting's start", flush=True)
    elif args.eval_episodes < MIN_EVAL_EPISODES:
        print(
            f"note: {args.eval_episodes} held-out episodes per split (< {MIN_EVAL_EPISODES}): "
            "a smoke test, not a measurement",
            flush=True,
        )
    if args.table:
        finished = [(spec, bench.saved(spec)) for spec in specs]
    else:
        finished = list(zip(specs, bench.run_all(specs)))
    results: dict[str, dict[int, dict]] = {}
    for spec, result in finished:
        if result is not None and "error" not in result:
            results.setdefault(spec.method, {})[spec.seed] = result

    for seed in args.seed_list:  # every method of a seed must start from the same weights
        starts = {m: runs[seed].get("initial") for m, runs in results.items() if seed in runs}
        if len({json.dumps(start, sort_keys=True) for start in starts.values()}) > 1:
            print(f"warning: seed {seed}'s methods start from different held-out success {starts}")
    name = f"learning_{args.setting}"  # e.g. learning_few_40it.md for --iterations 40
    name += (f"_{args.iterations}it" if args.iterations else "") + ("_gate" if args.gate else "")
    if args.gate:
        table = gate_table(results, args.method_list)
    else:
        table = results_table(results, args.method_list)
        table += "\n\nOver the warm start (each run's final held-out success minus its start):\n\n"
        table += gain_table(results, args.method_list)
        table += "\n\nWhile training (each run's mean over its iterations, then over seeds):\n\n"
        table += diagnostics_table(results, args.method_list, bench.runs)
        plot_curves(results, args.method_list, bench.out / f"{name}.png")
    stamp = provenance(allow_dirty=args.allow_dirty) | {"code": bench.code}
    data = {m: {str(s): r for s, r in runs.items()} for m, runs in results.items()}
    write_results(name, stamp, data, table, directory=bench.out)
    print(f"\n{table}\n\n(written to {bench.out / name}.md)")


if __name__ == "__main__":
    main()

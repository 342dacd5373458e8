"""Mutation testing of the modules whose numbers users trust: how many mutants the tests kill.

mutmut (configured in pyproject.toml's ``[tool.mutmut]``: the modules and the tests) copies
creditgym/ into mutants/, changes one operator, constant or call at a time and runs the tests
that reach the changed function. A mutant the tests do not notice ("survived") is a change to
the code that no test can see: either a missing test, or an *equivalent* mutant that cannot
change any result (``benchmarks/mutation_equivalent.json`` lists those, each with its reason).

    python benchmarks/mutation.py                       # every configured module
    python benchmarks/mutation.py --modules creditgym/credit/estimators/gigpo.py [--name NAME]
    python benchmarks/mutation.py --report-only         # tabulate what mutants/ holds
    python benchmarks/mutation.py --not-caught-only     # rerun only the survivors (new tests)
    python benchmarks/mutation.py --recheck benchmarks/results/mutation.json --max-children 2

Runs resume: mutmut keeps each mutant's result in mutants/ and tests only mutants of changed
functions again (or those named, with --modules). It maps tests to the functions they reach
once, and later only for new tests: after a function first becomes mutable, pass
--fresh-stats, or the tests written before it will not be run against its mutants. mutmut
does not mutate decorated functions (properties here; the built-in estimators and shapers
register with a call for that reason). One mutant at a time by default (`--max-children`).
The table (per module: mutants killed, timed out, explained as equivalent, surviving and not
yet checked, and the share caught among those checked) goes to
benchmarks/results/mutation.{md,json}, and the surviving mutants' names to the terminal
(`mutmut show NAME` shows one).

``--recheck FILE`` reruns exactly the mutants a stamped results file (an earlier pass's
``mutation.json``) lists as not caught, in a fresh or kept mutants/, and tabulates what became of
each into benchmarks/results/mutation_recheck.{md,json} (or ``--name``): the check that the
tests written for those survivors kill them inside mutmut, not only when the mutant is applied
by hand. The names are mutmut's (module, function, number), so they mean the same mutants only
while those modules are unchanged since that pass; a module changed since is refused.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import tomllib

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import ROOT, git, stamp_or_exit, write_results  # noqa: E402

EQUIVALENT = ROOT / "benchmarks" / "mutation_equivalent.json"
STATUS = {1: "killed", 3: "killed", 0: "survived", 36: "timeout", 24: "timeout", 255: "timeout"}
STATUS |= {-24: "timeout", 152: "timeout", 5: "no tests", 33: "no tests", 34: "skipped"}
CAUGHT = ("killed", "timeout", "equivalent")


def configured_modules() -> list[str]:
    """The modules ``[tool.mutmut] only_mutate`` names, globs expanded."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return sorted(str(p.relative_to(ROOT)) for g in patterns["only_mutate"] for p in ROOT.glob(g))


def mutant_glob(module: str) -> str:
    """mutmut's name pattern for every mutant of `module` (a path under creditgym/)."""
    return module.removesuffix(".py").replace("/", ".") + ".*"


def statuses(modules: list[str]) -> dict[str, dict[str, str]]:
    """``{module: {mutant name: status}}`` from mutants/'s result files."""
    equivalent = json.loads(EQUIVALENT.read_text()) if EQUIVALENT.exists() else {}
    found: dict[str, dict[str, str]] = {}
    for module in modules:
        meta = ROOT / "mutants" / f"{module}.meta"
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
        found[module] = {
            name: "equivalent"
            if name in equivalent
            else STATUS.get(code, "not checked" if code is None else "suspicious")
            for name, code in codes.items()
        }
    return found


def not_caught(found: dict[str, dict[str, str]]) -> list[str]:
    """Names of the mutants that survived or found no test (not those never run: a plain run
    of their modules checks those)."""
    wanted = ("survived", "no tests")
    return sorted(n for by_name in found.values() for n, s in by_name.items() if s in wanted)


def table(found: dict[str, dict[str, str]]) -> tuple[str, list[dict]]:
    """The per-module table: counts by status and the share caught among the mutants checked
    (killed, timed out or explained as equivalent; a mutant not yet run counts nowhere)."""
    columns = ("killed", "timeout", "equivalent", "survived", "not checked")
    lines = [
        "| module | mutants | " + " | ".join(columns) + " | caught of checked |",
        "|---|---:|" + "---:|" * len(columns) + "---:|",
    ]
    rows = []
    totals: Counter = Counter()
    for module, by_name in found.items():
        counts = Counter(by_name.values())
        row = {"module": module, "mutants": len(by_name), **{c: counts[c] for c in columns}}
        row["not checked"] += sum(v for k, v in counts.items() if k not in columns)
        rows.append(_caught(row))
        totals.update({k: v for k, v in row.items() if isinstance(v, int)})
        lines.append(_line(row, columns))
    total = _caught({"module": "all", **totals})
    lines.append(_line(total, columns, bold=True))
    return "\n".join(lines), rows + [total]


def _caught(row: dict) -> dict:
    checked = row.get("mutants", 0) - row.get("not checked", 0)
    row["caught"] = sum(row.get(c, 0) for c in CAUGHT) / checked if checked else None
    return row


def _line(row: dict, columns: tuple[str, ...], bold: bool = False) -> str:
    caught = "n/a" if row["caught"] is None else f"{row['caught']:.1%}"
    cells = [row["module"], str(row.get("mutants", 0)), *(str(row.get(c, 0)) for c in columns)]
    cells.append(f"**{caught}**" if bold else caught)
    return "| " + " | ".join(cells) + " |"


def recheck_table(previous: dict, found: dict[str, dict[str, str]]) -> tuple[str, dict]:
    """What became of an earlier pass's survivors: counts by status now, and each name's status.

    `previous` is that pass's results file (its provenance and ``not_caught`` names); a name
    mutmut no longer generates counts as "gone"."""
    now = {name: found_status(found, name) for name in previous["data"]["not_caught"]}
    counts = Counter(now.values())
    caught = sum(counts[s] for s in CAUGHT)
    origin = previous["provenance"]
    lines = [
        f"{len(now)} mutants not caught by the pass at commit {origin['commit']} "
        f"(`{origin['command']}`, {origin['date']}), rerun: **{caught} caught** "
        f"({', '.join(f'{counts[s]} {s}' for s in sorted(counts))})",
        "",
        "| mutant | now |",
        "|---|---|",
        *(f"| `{name}` | {status} |" for name, status in sorted(now.items())),
    ]
    return "\n".join(lines), {"previous": origin, "counts": dict(counts), "mutants": now}


def changed_since(commit: str, modules: list[str]) -> list[str]:
    """The modules among `modules` whose source differs from `commit`'s."""
    try:
        return git("diff", "--name-only", commit, "--", *modules).split()
    except subprocess.CalledProcessError as error:
        raise SystemExit(
            f"error: git cannot compare with commit {commit}: {error.stderr.strip()}"
        ) from None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", nargs="*", help="paths under creditgym/ (default: all)")
    parser.add_argument(
        "--name",
        help="results file name (default: mutation for every module, mutation_recheck for "
        "--recheck; a --modules run writes one only when named)",
    )
    parser.add_argument("--max-children", type=int, default=1, help="mutants tested at once")
    parser.add_argument("--report-only", action="store_true", help="do not run mutmut")
    parser.add_argument(
        "--fresh-stats",
        action="store_true",
        help="re-map tests to functions first (after a function became mutable: mutmut maps "
        "only new tests, so a test written before keeps not reaching it)",
    )
    parser.add_argument(
        "--not-caught-only",
        action="store_true",
        help="rerun only the mutants that survived (after new tests)",
    )
    parser.add_argument(
        "--recheck",
        type=Path,
        metavar="FILE",
        help="rerun the mutants an earlier pass's results file lists as not caught",
    )
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    args = parser.parse_args()
    stamp = stamp_or_exit(args.allow_dirty)
    modules = args.modules or configured_modules()
    unknown = sorted(set(modules) - set(configured_modules()))
    if unknown:
        print(f"error: {', '.join(unknown)} not in [tool.mutmut] only_mutate", file=sys.stderr)
        return 2
    if args.recheck:
        return recheck(args.recheck, args.max_children, stamp, args.name or "mutation_recheck")
    if args.fresh_stats:
        (ROOT / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    if not args.report_only:
        command = ["mutmut", "run", "--max-children", str(args.max_children)]
        names = [mutant_glob(m) for m in modules]
        if args.not_caught_only:
            names = not_caught(statuses(modules))
            if not names:
                print("every mutant of these modules is caught already")
        done = subprocess.run(command + names, cwd=ROOT, check=False) if names else None
        if done is not None and done.returncode != 0:
            print(f"error: mutmut run exited {done.returncode} (see above)", file=sys.stderr)
            return 1
    found = statuses(modules)
    text, rows = table(found)
    print(text)
    survivors = sorted(
        n for by_name in found.values() for n, s in by_name.items() if s in ("survived", "no tests")
    )
    if survivors:
        print(f"\n{len(survivors)} not caught (mutmut show NAME):")
        print("\n".join(f"  {name}  [{found_status(found, name)}]" for name in survivors))
    name = args.name or (None if args.modules else "mutation")  # README's table: every module
    if name:
        write_results(name, stamp, {"modules": rows, "not_caught": survivors}, text)
    return 0


def recheck(path: Path, max_children: int, stamp: dict, name: str = "mutation_recheck") -> int:
    """Rerun the mutants `path` lists as not caught; write results/NAME."""
    try:
        previous = json.loads(path.read_text())
        names, commit = previous["data"]["not_caught"], previous["provenance"]["commit"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"error: {path} is not a mutation results file ({error})", file=sys.stderr)
        return 2
    modules = configured_modules()
    changed = changed_since(commit, modules)
    if changed:
        print(
            f"error: {', '.join(changed)} changed since commit {commit}, so mutmut's names there "
            "no longer mean the same mutants; run a full pass instead",
            file=sys.stderr,
        )
        return 2
    if names:
        command = ["mutmut", "run", "--max-children", str(max_children), *names]
        if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
            print("error: mutmut run failed (see above)", file=sys.stderr)
            return 1
    text, data = recheck_table(previous, statuses(modules))
    print(text)
    write_results(name, stamp, data, text)
    return 0


def found_status(found: dict[str, dict[str, str]], name: str) -> str:
    """`name`'s status in `found`, or "gone" where mutmut no longer generates it."""
    return next((by_name[name] for by_name in found.values() if name in by_name), "gone")


if __name__ == "__main__":
    raise SystemExit(main())

"""The README's figures stay tied to the files and commands that produced them.

Every ``benchmarks/results/...`` file the README cites exists, and every results file stamped
by ``benchmarks/provenance.py`` recorded a command that the README prints, so a reader can
rerun exactly what produced the figure.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
CITED = re.compile(r"benchmarks/results/[\w{},.\-]+\.(?:md|json|png|\{[\w,]+\})")


def expand(pattern: str) -> list[str]:
    """``a_{x,y}.{md,json}`` -> the four names it stands for."""
    parts = re.split(r"\{([^}]*)\}", pattern)
    choices = [[part] if i % 2 == 0 else part.split(",") for i, part in enumerate(parts)]
    return ["".join(combo) for combo in itertools.product(*choices)]


def cited_files(text: str) -> list[str]:
    return sorted({name for match in CITED.findall(text) for name in expand(match)})


def _is_stamped(path: Path) -> bool:
    data = json.loads(path.read_text())
    return isinstance(data, dict) and "provenance" in data


def stamped_results() -> list[Path]:
    return [
        path
        for path in sorted((ROOT / "benchmarks" / "results").glob("*.json"))
        if _is_stamped(path)
    ]


def test_the_pattern_finds_single_and_braced_citations():
    text = "see benchmarks/results/a_{x,y}.{md,json} and (benchmarks/results/b.png)."
    assert cited_files(text) == [
        "benchmarks/results/a_x.json",
        "benchmarks/results/a_x.md",
        "benchmarks/results/a_y.json",
        "benchmarks/results/a_y.md",
        "benchmarks/results/b.png",
    ]


def test_the_readme_cites_results_files():
    assert len(cited_files(README)) >= 10  # the scan found the README's citations


@pytest.mark.parametrize("name", cited_files(README))
def test_every_results_file_the_readme_cites_exists(name):
    assert (ROOT / name).is_file(), f"README cites {name}, which is not in the repository"


def test_each_stamped_results_files_command_is_printed_in_the_readme():
    stamped = stamped_results()
    assert stamped  # the runners that stamp their results have written some
    for path in stamped:
        stamp = json.loads(path.read_text())["provenance"]
        assert stamp["command"] in README, (
            f"{path.name} was produced by `{stamp['command']}`, which the README does not print"
        )
        assert f"benchmarks/results/{path.stem}" in README, f"the README does not cite {path.name}"
        assert re.fullmatch(r"[0-9a-f]{7,40}(\+dirty)?", stamp["commit"]), stamp["commit"]


def test_every_results_file_the_readme_cites_is_stamped():
    """Every cited results file carries the commit, command, date and load that produced it
    (the last files from before stamping, the SmolLM2 table's, were rerun on 2026-12-07)."""
    cited = {Path(name).with_suffix(".json") for name in cited_files(README)}
    unstamped = {
        path.name for path in cited if (ROOT / path).is_file() and not _is_stamped(ROOT / path)
    }
    assert not unstamped, (
        f"{sorted(unstamped)} carry no provenance: write them with benchmarks/provenance.py's "
        "write_results"
    )


# A row of the README's credit-fidelity table: its report, success, then the grpo, gigpo and
# gigpo `mean_std` cells (rho / AUC / zero A), a cell of other methods, and the MC AUC.
FIDELITY_ROW = re.compile(
    r"^\| \[[^]]+\]\(benchmarks/results/(credit_report_\w+)\.md\) \((\d+)%\) \| (.*)$", re.M
)


def _fidelity_cell(method: dict | None) -> str | None:
    if method is None:
        return None
    rho = (
        "0*" if method["constant_within_episodes"] else f"{method['within_episode_spearman']:+.2f}"
    )
    return f"{rho} / {method['batch_auc']:.2f} / {method['zero_share']:.0%}"


def test_the_credit_fidelity_table_shows_what_its_reports_hold():
    rows = FIDELITY_ROW.findall(README)
    assert len(rows) >= 15  # the table was found
    for name, success, rest in rows:
        report = json.loads((ROOT / "benchmarks" / "results" / f"{name}.json").read_text())
        cells = [cell.strip().replace("**", "") for cell in rest.split("|")]
        assert f"{report['success']:.0%}" == f"{success}%", name
        methods = report["methods"]
        for method, cell in zip(("grpo", "gigpo", "gigpo:normalization=mean_std"), cells):
            expected = _fidelity_cell(methods.get(method))
            assert expected is None or cell == expected, f"{name}, {method}: {cell} != {expected}"
        monte_carlo = report.get("monte_carlo") or {}
        if "batch_auc" in monte_carlo:
            assert cells[4].startswith(f"{monte_carlo['batch_auc']:.2f}"), name

"""Every ``python`` block of docs/ARCHITECTURE.md runs as written, so the document cannot rot.

Each block runs in a fresh interpreter: the examples register envs, credit modules and policy
backends, which must not leak into this test session's registries.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ARCHITECTURE.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.DOTALL | re.MULTILINE)


def test_the_document_has_the_three_add_your_own_examples():
    text = DOC.read_text()
    for heading in ("own environment", "own credit method", "own policy backend"):
        assert f"## Add your {heading}" in text
    assert len(BLOCKS) == 4  # an env, a pure estimator, a stateful shaper, a policy backend


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index, tmp_path):
    script = tmp_path / f"example_{index}.py"
    script.write_text(BLOCKS[index])
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"block {index} failed:\n{done.stdout}\n{done.stderr}"

"""The info-key names live once, in a module every layer may import; envs re-export them and
credit modules read infos through them, never through string literals."""

import ast
from pathlib import Path

import creditgym
import creditgym.envs.info as env_info
import creditgym.info_keys as info_keys

PACKAGE = Path(creditgym.__file__).parent
KEY_NAMES = [name for name in info_keys.__all__ if name != "REQUIRED_KEYS"]


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append(node.module or "")
    return found


def test_info_keys_imports_nothing_but_future_annotations():
    assert _imports(PACKAGE / "info_keys.py") == ["__future__"]


def test_envs_info_re_exports_the_same_names():
    for name in info_keys.__all__:
        assert getattr(env_info, name) is getattr(info_keys, name), name
    assert set(env_info.__all__) == set(info_keys.__all__)


def _literal_info_reads(path: Path) -> list[str]:
    """`<x>.info.get("key")`, `<x>.next_info.get("key")` and `info["key"]` with a key literal."""
    values = {getattr(info_keys, name) for name in KEY_NAMES}
    hits = []
    for node in ast.walk(ast.parse(path.read_text())):
        key = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            owner_name = getattr(owner, "attr", getattr(owner, "id", ""))
            if node.func.attr == "get" and owner_name.endswith("info") and node.args:
                key = node.args[0]
        elif isinstance(node, ast.Subscript):
            owner_name = getattr(node.value, "attr", getattr(node.value, "id", ""))
            key = node.slice if owner_name.endswith("info") else None
        if isinstance(key, ast.Constant) and key.value in values:
            hits.append(f"{path.name}:{node.lineno}: {key.value!r}")
    return hits


def test_credit_modules_and_the_data_model_read_infos_through_the_constants():
    files = sorted((PACKAGE / "credit").glob("*.py")) + [PACKAGE / "trajectory.py"]
    hits = [hit for path in files for hit in _literal_info_reads(path)]
    assert hits == []


def test_the_literal_scan_finds_a_literal_read(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('a = turn.info.get("anchor")\nb = info["events"]\nc = info.get(ANCHOR)\n')
    assert _literal_info_reads(sample) == ["sample.py:1: 'anchor'", "sample.py:2: 'events'"]

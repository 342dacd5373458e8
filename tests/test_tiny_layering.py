"""agents/ never imports the env registry: the tiny model is fitted on the text it is given
(a `TinyCorpus`), and the layer above (`creditgym.train.corpus`) plays envs to make it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import creditgym
from creditgym.agents.factory import load_policy, tiny_agent_dir
from creditgym.agents.hf.tiny import TinyCorpus

AGENTS = Path(creditgym.__file__).parent / "agents"
#: What agents/ sits beside or below: the envs, and the trainer/CLI that use agents.
FORBIDDEN = re.compile(r"^creditgym\.(envs|rollout|credit_setup|measure|train|cli|play|view)(\.|$)")
#: The env registry's names re-exported by the top-level package (`from creditgym import make`).
TOP_LEVEL_ENV_NAMES = {"make", "register", "list_envs", "describe"}
SHAPE = {"vocab_size": 300, "hidden_size": 16, "num_layers": 1, "num_heads": 2}
TEXTS = ["go to the kitchen", "take apple", "put apple in fridge", "look", "inventory"] * 4


def _upward_imports(path: Path) -> list[str]:
    """Imports (module level or inside functions) of the env registry or a layer above."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if FORBIDDEN.match(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            module = node.module or ""
            if FORBIDDEN.match(module):
                found.append(module)
            elif module == "creditgym":
                names = {alias.name for alias in node.names}
                found += [f"creditgym.{name}" for name in sorted(names & TOP_LEVEL_ENV_NAMES)]
                found += [
                    f"creditgym.{n}" for n in sorted(names) if FORBIDDEN.match(f"creditgym.{n}")
                ]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if FORBIDDEN.match(node.value) and " " not in node.value:  # import_module("...")
                found.append(node.value)
    return found


def test_no_agents_module_imports_the_envs_or_a_layer_above():
    modules = sorted(AGENTS.rglob("*.py"))
    assert len(modules) > 10  # the scan looked at the package
    offenders = {str(p.relative_to(AGENTS)): _upward_imports(p) for p in modules}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_scan_finds_each_kind_of_upward_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text(
        "import creditgym.envs.registry\n"
        "from creditgym import make\n"
        "from creditgym import envs\n"
        "def lazy():\n"
        "    from creditgym.train.corpus import env_corpus\n"
        "    return __import__('importlib').import_module('creditgym.envs.info')\n"
    )
    assert _upward_imports(module) == [
        "creditgym.envs.registry",
        "creditgym.make",
        "creditgym.envs",
        "creditgym.train.corpus",
        "creditgym.envs.info",
    ]


def test_tiny_is_built_from_the_text_it_is_given_and_cached_by_its_key(tmp_path, monkeypatch):
    monkeypatch.setenv("CREDITGYM_CACHE", str(tmp_path))
    policy = load_policy("tiny", corpus=TinyCorpus.of_texts(TEXTS), device="cpu", **SHAPE)
    again = tiny_agent_dir(TinyCorpus.of_texts(list(TEXTS)), **SHAPE)
    other = tiny_agent_dir(TinyCorpus.of_texts([*TEXTS, "open drawer"]), **SHAPE)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({again.name, other.name})
    assert again != other
    ids = policy.tokenizer("take apple", add_special_tokens=False)["input_ids"]
    assert policy.tokenizer.decode(ids) == "take apple"
    assert len(ids) <= 3  # the BPE learnt the corpus's words, not bytes


def test_a_corpus_is_played_only_when_the_model_is_built(tmp_path, monkeypatch):
    monkeypatch.setenv("CREDITGYM_CACHE", str(tmp_path))
    seeds: list[int] = []

    def play(seed: int) -> list[str]:
        seeds.append(seed)
        return TEXTS

    corpus = TinyCorpus(texts=play, key={"name": "toy"})
    first = tiny_agent_dir(corpus, seed=7, **SHAPE)
    assert tiny_agent_dir(corpus, seed=7, **SHAPE) == first
    assert seeds == [7]  # played once, with the build seed; the cached model reused after


def test_tiny_without_a_corpus_says_how_to_get_one():
    with pytest.raises(ValueError, match=r"env_ids are options of the env corpus.*load_tiny"):
        load_policy("tiny", env_ids=["creditgym/HouseholdEasy-v0"])
    with pytest.raises(ValueError, match=r"pass corpus=TinyCorpus"):
        load_policy("tiny")


def test_a_corpus_key_that_shadows_a_build_argument_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("CREDITGYM_CACHE", str(tmp_path))
    corpus = TinyCorpus(texts=lambda seed: TEXTS, key={"seed": 1})
    with pytest.raises(ValueError, match="names seed"):
        tiny_agent_dir(corpus, seed=2, **SHAPE)
    assert list(tmp_path.iterdir()) == []


def test_the_agents_server_alone_points_to_creditgym_serve_for_tiny(capsys):
    from creditgym.agents.serve.server import main

    with pytest.raises(SystemExit) as exit_info:
        main(["tiny", "--port", "0"])
    assert exit_info.value.code == 2
    assert "creditgym serve tiny" in capsys.readouterr().err

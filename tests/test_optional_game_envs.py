"""Game families on optional libraries (TextWorld, MiniHack/NLE, ScienceWorld,
TextWorldExpress) register without importing them (nor starting Java), and a missing library
is an error that names the extra to install. Runs with or without the libraries installed."""

import subprocess
import sys

import pytest

import creditgym


def test_importing_creditgym_imports_no_game_library():
    code = (
        "import sys, creditgym; ids = creditgym.list_envs(); "
        "print('creditgym/TextWorldCoin-v0' in ids, 'creditgym/MiniHackRiver-v0' in ids, "
        "sorted(m for m in ('textworld', 'minihack', 'nle', 'pettingzoo', 'scienceworld', "
        "'textworld_express', 'py4j') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "True True []"


@pytest.mark.parametrize(
    ("env_id", "kwargs", "missing", "extra"),
    [
        ("creditgym/TextWorld-v0", {"game_file": "game.z8"}, "textworld", "textworld"),
        ("creditgym/TextWorldCoin-v0", {}, "textworld", "textworld"),
        ("creditgym/MiniHackRoom-v0", {}, "minihack", "minihack"),
        ("creditgym/MiniHackRiver-v0", {}, "nle", "minihack"),
    ],
)
def test_a_missing_library_names_the_extra_to_install(monkeypatch, env_id, kwargs, missing, extra):
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import <missing>` fail
    with pytest.raises(ImportError, match=rf"pip install creditgym\[{extra}\]"):
        creditgym.make(env_id, **kwargs)

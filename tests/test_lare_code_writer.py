"""LaRe's factor code from an LLM, end to end as a user runs it: `creditgym train` with
``credit.lare_factors=llm:<model>`` in a child process (the path `benchmarks/lare_code_writer.py`
measures), the model a scripted OpenAI-compatible server."""

from __future__ import annotations

import sys
from pathlib import Path

from _servers import ScriptedServer, chat_reply, json_reply

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import lare_code_writer  # noqa: E402

# what SmolLM2 wrote: a factor function calling a helper it never defined
UNDEFINED_HELPER = "```python\ndef evaluate(state, action):\n    return [helper(state)]\n```"


def _coder(path: str, body: dict):
    if path.endswith("/models"):
        return json_reply({"data": [{"id": "coder"}]})
    return chat_reply(UNDEFINED_HELPER)


def test_a_model_that_writes_no_working_code_stops_training_with_one_line_naming_its_log():
    with ScriptedServer(_coder) as server:
        run = lare_code_writer.write_once(seed=0, model=f"llm:openai:{server.url}")
        asked = [body for body in server.requests if body.get("messages")]

    # 5 candidates, the merge, one repair: the 4 later repairs ask the same (same code, same
    # error) and are answered from the run's fresh answer cache
    assert len(asked) == 5 + 1 + 1
    assert run["exit_code"] == 2
    assert run["message"].startswith("error: ")
    assert "wrote no working factor function" in run["message"]
    assert run["message"].endswith("latent_factors.json")
    assert run["code"] is None and len(run["rounds"]) == 5
    # the sandbox's allow-list rejects the undefined name before anything runs
    undefined = "the name 'helper' (not defined, and not an allowed builtin) is not allowed"
    assert all(undefined in r["error"] and r["kind"] == "syntax" for r in run["rounds"])
    table = lare_code_writer.table([run])
    assert "| 0 | no | 5 |" in table
    assert f"verify 5: line 2: {undefined}" in table

"""The command line: envs, eval, play, and clear one-line errors for bad input."""

import json

from creditgym.cli import main
from creditgym.play import play


def test_envs_lists_every_registered_env_with_its_description(capsys):
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "creditgym/HouseholdEasy-v0" in out and "pick-and-place" in out
    assert "creditgym[textworld]" in out  # rich markup must not swallow the extras' brackets


def test_eval_of_expert_and_random_prints_a_table_and_writes_json(tmp_path, capsys):
    out_file = tmp_path / "results.json"
    code = main(
        [
            "eval",
            "--env",
            "creditgym/HouseholdEasy-v0",
            "--episodes",
            "10",
            "--splits",
            "valid_seen",
            "--json",
            str(out_file),
        ]
    )
    assert code == 0
    results = {row["agent"]: row for row in json.loads(out_file.read_text())}
    assert results["expert"]["success"] == 1.0
    assert results["random"]["success"] < 1.0
    assert results["expert"]["per_task_type"]["pick_and_place"]["episodes"] == 10
    assert "valid_seen" in capsys.readouterr().out


def test_unknown_env_id_is_a_one_line_error_with_a_suggestion(capsys):
    assert main(["eval", "--env", "creditgym/Houshold-v0", "--episodes", "1"]) == 2
    err = capsys.readouterr().err  # errors go to stderr, one line
    assert "unknown env id" in err and "creditgym/Household-v0" in err and err.count("\n") == 1


def test_unknown_config_key_is_a_one_line_error(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("train:\n  iterashuns: 3\n")
    assert main(["train", str(config)]) == 2
    assert "train.iterashuns" in capsys.readouterr().err


def test_unknown_agent_lists_the_choices(capsys):
    assert (
        main(["eval", "--env", "creditgym/HouseholdEasy-v0", "--agent", "exprt", "--episodes", "1"])
        == 2
    )
    assert "did you mean 'expert'" in capsys.readouterr().err


def test_play_takes_action_numbers_names_and_meta_commands(capsys):
    lines = iter([":expert", "0", "look", "nonsense words", ":reset", ":quit"])
    assert play("creditgym/HouseholdEasy-v0", seed=1, input_fn=lambda prompt: next(lines)) == 0
    out = capsys.readouterr().out
    assert "expert: go to" in out
    assert "Nothing happens." in out
    assert "task:" in out

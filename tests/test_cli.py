"""The command line: envs, eval, play, and clear one-line errors for bad input."""

import json
import shutil

import pytest

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


@pytest.mark.parametrize("bug", [KeyError("use desklamp 1"), IndexError("list index out of range")])
def test_a_bare_lookup_failing_inside_a_command_keeps_its_traceback(monkeypatch, bug):
    # a bug in creditgym is not the user's input: no "error: 'use desklamp 1'" line, exit 2
    import creditgym.cli.parser as cli_parser

    def broken(args):
        raise bug

    monkeypatch.setattr(cli_parser, "cmd_envs", broken)
    with pytest.raises(type(bug)):
        main(["envs"])


def test_a_lookup_error_with_a_message_is_still_one_line(monkeypatch, capsys):
    from omegaconf.errors import ConfigKeyError

    import creditgym.cli.parser as cli_parser

    def misconfigured(args):
        raise ConfigKeyError("Key 'iterashuns' not in 'TrainConfig'")

    monkeypatch.setattr(cli_parser, "cmd_envs", misconfigured)
    assert main(["envs"]) == 2
    assert capsys.readouterr().err == "error: Key 'iterashuns' not in 'TrainConfig'\n"


def test_play_takes_action_numbers_names_and_meta_commands(capsys):
    lines = iter([":expert", "0", "look", "nonsense words", ":reset", ":quit"])
    assert play("creditgym/HouseholdEasy-v0", seed=1, input_fn=lambda prompt: next(lines)) == 0
    out = capsys.readouterr().out
    assert "expert: go to" in out
    assert "Nothing happens." in out
    assert "task:" in out


def _train_tiny_run(run_dir, *overrides):
    """A one-iteration tiny run through `creditgym train`, as a person would start it."""
    from conftest import TINY

    base = [
        "env.kwargs={max_steps: 4}",
        "rollout.groups=2",
        "rollout.group_size=2",
        "train.iterations=1",
        "eval.every=0",
        "eval.episodes=2",
        f"run.output_dir={run_dir}",
    ]
    assert main(["train", "configs/quickstart_rl.yaml", *TINY, *base, *overrides]) == 0


def _eval_run(agent, *flags, episodes_file):
    """`creditgym eval` of a trained run on two valid_seen tasks, episodes saved."""
    argv = ["eval", "--env", "creditgym/HouseholdEasy-v0", "--agent", str(agent)]
    argv += ["--episodes", "2", "--splits", "valid_seen", "--env-kwarg", "max_steps=4"]
    argv += ["--save-episodes", str(episodes_file), *flags]
    assert main(argv) == 0
    return [json.loads(line) for line in episodes_file.read_text().splitlines()]


@pytest.fixture(scope="module")
def conversation_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli_eval") / "conversation"
    _train_tiny_run(run_dir, "policy.context=conversation", "policy.think_tokens=3")
    return run_dir


@pytest.fixture
def chat_calls(monkeypatch):
    """Counts the model's decisions made as chat turns (conversation mode) and as fresh prompts."""
    from creditgym.agents.hf.policy import HFPolicy

    calls = {"chat": 0, "prompt": 0}
    generate, generate_chat = HFPolicy.generate, HFPolicy.generate_chat

    def counted(kind, method):
        def call(self, *args, **kwargs):
            calls[kind] += 1
            return method(self, *args, **kwargs)

        return call

    monkeypatch.setattr(HFPolicy, "generate", counted("prompt", generate))
    monkeypatch.setattr(HFPolicy, "generate_chat", counted("chat", generate_chat))
    return calls


def test_eval_of_a_conversation_run_plays_it_as_a_conversation_by_default(
    conversation_run, chat_calls, tmp_path, capsys
):
    episodes = _eval_run(conversation_run, episodes_file=tmp_path / "episodes.jsonl")
    assert len(episodes) == 2 and all(ep["turns"] for ep in episodes)
    assert chat_calls["chat"] > 0 and chat_calls["prompt"] == 0
    out = capsys.readouterr().out
    assert "context=conversation" in out and str(conversation_run / "config.yaml") in out
    assert "iter_000001" in out  # the run directory stands for its latest checkpoint


def test_eval_context_flag_overrides_the_runs_context(
    conversation_run, chat_calls, tmp_path, capsys
):
    checkpoint_model = conversation_run / "checkpoints" / "iter_000001" / "model"
    _eval_run(checkpoint_model, "--context", "window", episodes_file=tmp_path / "e.jsonl")
    assert chat_calls["chat"] == 0 and chat_calls["prompt"] > 0
    assert "context=window" in capsys.readouterr().out


def test_eval_think_flag_scores_think_then_act_responses(conversation_run, tmp_path):
    episodes = _eval_run(conversation_run, "--think", episodes_file=tmp_path / "e.jsonl")
    responses = [turn["response"] for ep in episodes for turn in ep["turns"]]
    assert responses and all(r.startswith("<think>") and "<action>" in r for r in responses)
    # constrained decoding (the run's) keeps every tagged action admissible
    assert all(turn["valid"] for ep in episodes for turn in ep["turns"])


def test_eval_of_a_plain_model_directory_keeps_the_window_defaults(
    conversation_run, chat_calls, tmp_path, capsys
):
    copied = tmp_path / "exported"
    shutil.copytree(conversation_run / "checkpoints" / "iter_000001" / "model", copied)
    _eval_run(copied, "--constrained", episodes_file=tmp_path / "e.jsonl")
    assert chat_calls["chat"] == 0 and chat_calls["prompt"] > 0
    assert "in the format it was trained in" not in capsys.readouterr().out


def test_eval_of_a_run_without_a_checkpoint_is_a_one_line_error(tmp_path, capsys):
    run_dir = tmp_path / "empty_run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.yaml").write_text("train:\n  iterations: 1\n")
    argv = ["eval", "--env", "creditgym/HouseholdEasy-v0", "--agent", str(run_dir)]
    assert main([*argv, "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert "without a complete checkpoint" in err and err.count("\n") == 1


def test_train_reports_held_out_success_after_the_warm_start_too(tmp_path, capsys):
    _train_tiny_run(tmp_path / "warm", "train.sft_warmup.episodes=2", "train.sft_warmup.epochs=1")
    table = capsys.readouterr().out
    for column in ("random agent", "before training", "after warm start", "after 1 iterations"):
        assert " ".join(column.split()) in " ".join(table.split()), column

"""Configs: defaults, YAML, overrides, and errors that name the key, the source and the choices."""

from pathlib import Path

import pytest

from creditgym.config import Config, ConfigError, load_config

CONFIGS = sorted(Path(__file__).resolve().parents[1].joinpath("configs").glob("*.yaml"))


def test_defaults_then_file_then_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  iterations: 7\n  lr: 0.01\nrun:\n  seed: 3\n")
    config = load_config(path, ["train.iterations=9", "credit.estimator={name: gigpo, gamma: 0.9}"])
    assert isinstance(config, Config)
    assert config.train.iterations == 9  # the override wins over the file
    assert config.train.lr == 0.01  # the file wins over the default
    assert config.run.seed == 3
    assert config.train.clip_eps == 0.2  # untouched default
    assert config.credit.estimator == {"name": "gigpo", "gamma": 0.9}


def test_unknown_key_in_a_file_names_the_key_the_file_and_the_closest_choice(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("train:\n  iteratons: 7\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert "train.iteratons" in message and str(path) in message and "train.iterations" in message


def test_unknown_section_lists_the_valid_sections():
    with pytest.raises(ConfigError, match="unknown config key 'optim'.*Valid keys: env, policy"):
        load_config(None, ["optim.lr=1"])


def test_wrong_type_names_the_key_and_the_override():
    with pytest.raises(ConfigError, match="train.iterations.*train.iterations=many"):
        load_config(None, ["train.iterations=many"])


def test_value_outside_the_choices_lists_them():
    with pytest.raises(ConfigError, match="policy.template.*compact, verl-agent"):
        load_config(None, ["policy.template=alpaca"])


def test_override_without_equals_sign_says_how_to_write_it():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["train.iterations"])


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_loads(path):
    load_config(path)


def test_unknown_credit_estimator_fails_at_load_time_with_the_registered_names():
    with pytest.raises(ConfigError, match="credit.*gigpo"):
        load_config(None, ["credit.estimator={name: gipgo}"])


def test_unknown_estimator_option_is_named():
    with pytest.raises(ConfigError, match="gama"):
        load_config(None, ["credit.estimator={name: gigpo, gama: 0.9}"])


def test_curriculum_stages_are_validated_dataclasses():
    config = load_config(None, ["env.curriculum=[{iterations: 5, kwargs: {receptacles: 3}}]"])
    assert config.env.curriculum[0].iterations == 5
    with pytest.raises(ConfigError, match="iteratons"):
        load_config(None, ["env.curriculum=[{iteratons: 5}]"])


# ---- ranges and choices declared in the schema, checked before anything runs -----------------

QUICKSTART = Path(__file__).resolve().parents[1] / "configs" / "quickstart_rl.yaml"


def _train_cli(capsys, *args):
    """Run `creditgym train ...` in-process; return (exit code, stderr lines)."""
    from creditgym.cli import main

    code = main(["train", *map(str, args)])
    return code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize(
    "override, key, allowed",
    [
        ("train.iterations=-1", "train.iterations", ">= 0"),
        ("rollout.groups=0", "rollout.groups", ">= 1"),
        ("rollout.group_size=0", "rollout.group_size", ">= 1"),
        ("run.save_every=0", "run.save_every", ">= 1"),  # was a ZeroDivisionError later
        ("train.lr=-1", "train.lr", ">= 0"),  # was torch's "Invalid learning rate"
        ("policy.top_p=0", "policy.top_p", "> 0.0 and <= 1.0"),
        ("env.curriculum=[{iterations: 0}]", "env.curriculum[0].iterations", ">= 1"),
        ("policy.template=alpaca", "policy.template", "one of compact, verl-agent"),
    ],
)
def test_out_of_range_values_are_one_line_naming_key_source_and_range_with_exit_code_2(
    tmp_path, capsys, override, key, allowed
):
    out = tmp_path / "run"
    code, err = _train_cli(capsys, QUICKSTART, f"run.output_dir={out}", override)
    assert code == 2
    assert len(err) == 1, err
    assert f"'{key}'" in err[0] and allowed in err[0] and override in err[0]
    assert not out.exists()  # nothing ran


def test_ranges_live_in_the_schema_metadata():
    import dataclasses

    from creditgym.config import RunConfig, TrainConfig

    fields = {f.name: f.metadata for f in dataclasses.fields(TrainConfig)}
    assert fields["iterations"]["min"] == 0 and fields["lr"]["min"] == 0.0
    assert {f.name: f.metadata for f in dataclasses.fields(RunConfig)}["save_every"]["min"] == 1


@pytest.mark.parametrize(
    "text, line, what",
    [
        ("train:\n  iterations: 3\n  iterations: 4\n", 3, "duplicate key iterations"),
        ("train:\n\titerations: 3\n", 2, "tab"),
        ("train: {iterations: [3\nrun:\n  seed: 1\n", 2, "unclosed bracket? one opens at line 1"),
    ],
    ids=["duplicate-key", "tab", "unclosed-bracket"],
)
def test_malformed_yaml_is_one_line_naming_the_file_and_line(tmp_path, capsys, text, line, what):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, err = _train_cli(capsys, path)
    assert code == 2 and len(err) == 1, err
    assert str(path) in err[0] and f"line {line}" in err[0] and what in err[0]


def test_unknown_env_kwarg_is_caught_before_training_and_named(tmp_path, capsys):
    out = tmp_path / "run"
    code, err = _train_cli(capsys, QUICKSTART, f"run.output_dir={out}", "env.kwargs={bogus_kw: 1}")
    assert code == 2 and len(err) == 1, err
    assert "env.kwargs" in err[0] and "'bogus_kw'" in err[0] and "max_steps" in err[0]
    assert not out.exists()


def test_unknown_env_kwarg_in_a_curriculum_stage_is_named():
    from creditgym.config import check_runnable

    config = load_config(None, ["env.curriculum=[{iterations: 2, kwargs: {recepacles: 3}}]"])
    with pytest.raises(ConfigError, match=r"env.curriculum\[0\].kwargs.*'recepacles'.*receptacles"):
        check_runnable(config)


def test_an_output_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("not a directory")
    code, err = _train_cli(capsys, QUICKSTART, f"run.output_dir={taken}")
    assert code == 2 and len(err) == 1, err
    assert "run.output_dir" in err[0] and "is a file" in err[0]
    assert taken.read_text() == "not a directory"


def test_resume_from_a_path_that_is_not_a_checkpoint_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    missing = tmp_path / "nowhere" / "iter_000010"
    code, err = _train_cli(
        capsys, QUICKSTART, f"run.output_dir={out}", f"run.resume_from={missing}"
    )
    assert code == 2 and len(err) == 1, err
    assert f"run.resume_from={missing}" in err[0] and "not a checkpoint directory" in err[0]
    assert not out.exists()


def test_the_cli_as_a_user_runs_it_exits_2_with_one_line_on_stderr(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "creditgym", "train", str(QUICKSTART), "run.save_every=0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: config key 'run.save_every' is 0 in the command-line override "
        "'run.save_every=0'; allowed: >= 1 (default 10)."
    ]
    assert not (tmp_path / "runs").exists()


# ---- one semantics: a value replaces the earlier one, dicts and lists included ----------------

WEBSHOP = QUICKSTART.with_name("webshop_easy.yaml")


def test_an_estimator_given_on_the_command_line_replaces_the_files_one():
    # webshop_easy.yaml sets {name: gigpo, gamma: 0.95, step_weight: 1.0}; merging kept gamma,
    # which grpo does not take
    config = load_config(WEBSHOP, ["credit.estimator={name: grpo}"])
    assert config.credit.estimator == {"name": "grpo"}


def test_a_later_estimator_does_not_keep_an_earlier_option(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("credit:\n  estimator: {name: discounted_group, normalization: none}\n")
    config = load_config(path, ["credit.estimator={name: discounted_group}"])
    assert config.credit.estimator == {"name": "discounted_group"}


def test_addressing_one_entry_of_a_dict_changes_only_that_entry():
    config = load_config(
        None, ["env.kwargs={max_steps: 6, receptacles: 3}", "env.kwargs.max_steps=9"]
    )
    assert config.env.kwargs == {"max_steps": 9, "receptacles": 3}


def test_sections_still_merge_key_by_key(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  iterations: 7\n")
    config = load_config(path, ["train.lr=0.01"])
    assert (config.train.iterations, config.train.lr) == (7, 0.01)


# ---- the schema on the command line ----------------------------------------------------------


def _leaf_keys():
    import dataclasses
    import typing

    def walk(schema, prefix):
        hints = typing.get_type_hints(schema)
        for f in dataclasses.fields(schema):
            if dataclasses.is_dataclass(hints[f.name]):
                yield from walk(hints[f.name], f"{prefix}{f.name}.")
            else:
                yield f"{prefix}{f.name}", f

    return list(walk(Config, ""))


def test_help_config_prints_every_field_with_type_default_range_and_help(capsys):
    from creditgym.cli import main

    assert main(["train", "--help-config"]) == 0
    out = capsys.readouterr().out
    for key, f in _leaf_keys():
        assert f"  {key}: " in out, key
        assert f.metadata["help"] in out, key
    assert (
        "  train.iterations: int = 40  (>= 0 and <= 10000000)\n      rollout + update iterations"
        in out
    )
    assert "  policy.template: str = compact  (one of compact, verl-agent)" in out


def test_config_show_prints_the_resolved_config_with_help_and_it_loads_back(tmp_path, capsys):
    from creditgym.cli import main

    assert main(["config", "show", str(WEBSHOP), "train.iterations=5"]) == 0
    out = capsys.readouterr().out
    assert "  iterations: 5  # int, >= 0 and <= 10000000, default 40: rollout + update" in out
    assert "  estimator: {name: gigpo, gamma: 0.95, step_weight: 1.0}" in out
    shown = tmp_path / "shown.yaml"
    shown.write_text(out)
    assert load_config(shown) == load_config(WEBSHOP, ["train.iterations=5"])


def test_train_called_from_python_checks_the_config_before_anything_runs(tmp_path):
    """A Config built in code gets the CLI's checks: nothing is written for a bad one."""
    from creditgym.config import ConfigError, load_config
    from creditgym.train.trainer import train

    out = tmp_path / "run"
    config = load_config(None, [f"run.output_dir={out}"])
    config.rollout.groups = 0  # set in code, past load_config's validation
    with pytest.raises(ConfigError, match="rollout.groups"):
        train(config)
    config = load_config(None, [f"run.output_dir={out}", "env.kwargs={bogus_kw: 1}"])
    with pytest.raises(ConfigError, match="bogus_kw"):
        train(config)
    assert not out.exists()


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda out: (out / "metrics.jsonl").mkdir(parents=True), "is a folder where the run"),
        (lambda out: (out / "config.yaml").mkdir(parents=True), "is a folder where the run"),
        (lambda out: out.mkdir() or (out / "checkpoints").write_text("x"), "is a file where"),
    ],
)
def test_an_output_path_of_the_wrong_kind_is_caught_before_anything_runs(tmp_path, make, reason):
    from creditgym.config import check_runnable

    out = tmp_path / "run"
    make(out)
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(ConfigError, match=f"run.output_dir.*{reason}"):
        check_runnable(load_config(None, [f"run.output_dir={out}"]))
    assert sorted(p.name for p in out.iterdir()) == before


def test_an_output_dir_that_cannot_be_written_is_caught_before_anything_runs(tmp_path, monkeypatch):
    import os

    from creditgym import config as config_module
    from creditgym.config import check_runnable

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    # as root every folder is writable: the OS's answer for a read-only one, simulated
    monkeypatch.setattr(
        config_module.os,
        "access",
        lambda path, mode: False if Path(path) == locked else real_access(path, mode),
    )
    with pytest.raises(ConfigError, match=f"'{locked}' is not writable"):
        check_runnable(load_config(None, [f"run.output_dir={locked / 'run'}"]))

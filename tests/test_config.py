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

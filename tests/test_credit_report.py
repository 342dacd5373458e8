"""`creditgym credit-report`: the method spec language, the epsilon-noisy expert, the command
end to end on HouseholdEasy, and one clear line (exit code 2) for bad input."""

import json
import re

import numpy as np
import pytest
from _oracle_envs import DetourCorridor

import creditgym
from creditgym.agents.factory import load_policy
from creditgym.agents.scripted import ExpertPolicy
from creditgym.cli import main
from creditgym.credit import CreditConfigError, Requirement, register_shaper
from creditgym.credit.specs import parse_method, parse_methods, register_shorthand
from creditgym.credit_setup.build import register_builder
from creditgym.envs.registry import list_envs
from creditgym.measure.credit_report import run_credit_report


def test_an_estimator_alone_scores_the_env_reward():
    method = parse_method("gigpo")
    assert method.shapers == [{"name": "env"}]
    assert method.estimator == {"name": "gigpo"}


def test_options_shapers_and_estimators_parse_to_the_trainer_config():
    assert parse_method("gigpo:normalization=mean_std:step_weight=0.5").estimator == {
        "name": "gigpo",
        "normalization": "mean_std",
        "step_weight": 0.5,
    }
    calm = parse_method("env+calm/gigpo")
    assert (calm.shapers, calm.estimator) == (
        [{"name": "env"}, {"name": "calm"}],
        {"name": "gigpo"},
    )
    lare = parse_method("lare:variant=rrd/discounted_group")
    assert lare.shapers == [{"name": "lare", "variant": "rrd"}]
    igpo = parse_method("env+info_gain:gain=log_prob_diff/discounted_group:normalization=separate")
    assert igpo.shapers[1] == {"name": "info_gain", "gain": "log_prob_diff"}
    assert igpo.estimator == {"name": "discounted_group", "normalization": "separate"}


def test_shorthands_name_the_papers_configurations():
    assert parse_method("igpo").shaper_names == ["env", "info_gain"]
    assert parse_method("igpo").estimator == {"name": "discounted_group"}
    assert parse_method("lare").shaper_names == ["lare"]


def test_a_registered_shorthand_stands_for_its_spec():
    register_shorthand("tests_short", "env/gigpo:gamma=0.5")
    method = parse_method("tests_short")
    assert (method.label, method.shaper_names) == ("tests_short", ["env"])
    assert method.estimator == {"name": "gigpo", "gamma": 0.5}
    with pytest.raises(ValueError, match="plain name"):
        register_shorthand("a/b", "grpo")


def test_a_comma_then_key_value_continues_the_previous_method():
    methods = parse_methods("grpo,gigpo:normalization=mean_std,step_weight=0.5,env+calm/gigpo")
    assert [m.label for m in methods] == [
        "grpo",
        "gigpo:normalization=mean_std:step_weight=0.5",
        "env+calm/gigpo",
    ]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("gigpo:normalization", "must look like key=value"),
        ("a/b/c", "more than one '/'"),
        ("/gigpo", "no shaper before '/'"),
        ("gigpo:normalization=bogus", "not one of 'mean', 'mean_std'"),
    ],
)
def test_malformed_specs_say_what_is_wrong(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_method(spec)


def test_unknown_names_and_options_come_from_the_credit_registry():
    with pytest.raises(CreditConfigError, match="did you mean 'gigpo'"):
        parse_method("gigp")
    with pytest.raises(CreditConfigError, match="did you mean 'gamma'"):
        parse_method("gigpo:gama=0.9")


class _Env:
    def __init__(self):
        self.unwrapped = self

    def expert_action(self):
        return "go east"


def test_noisy_expert_follows_the_expert_or_picks_an_admissible_action():
    prompts, actions = ["p"] * 400, [["go west", "look"]] * 400
    envs = [_Env()] * 400
    never = ExpertPolicy(epsilon=0.0).generate(prompts, actions, envs)
    assert {g.text for g in never} == {"go east"}
    always = ExpertPolicy(epsilon=1.0, seed=1).generate(prompts, actions, envs)
    assert {g.text for g in always} == {"go west", "look"}
    half = [g.text for g in ExpertPolicy(epsilon=0.5, seed=2).generate(prompts, actions, envs)]
    assert 0.4 < half.count("go east") / 400 < 0.6


def test_expert_eps_is_a_policy_spec():
    policy = load_policy("expert:eps=0.5", seed=3)
    assert (policy.epsilon, policy.seed) == (0.5, 3)
    with pytest.raises(ValueError, match="e.g. expert:eps=0.5"):
        load_policy("expert:epsilon=0.5")


def test_credit_report_end_to_end_on_household_easy(tmp_path, capsys):
    out = tmp_path / "report.json"
    code = main(
        [
            "credit-report",
            "--env",
            "creditgym/HouseholdEasy-v0",
            "--agent",
            "random",
            "--methods",
            "grpo,gigpo,gigpo:normalization=mean_std,env+calm/gigpo",
            "--groups",
            "4",
            "--group-size",
            "4",
            "--mc",
            "2",
            "--mc-turns",
            "6",
            "--json",
            str(out),
            "--markdown",
            str(tmp_path / "report.md"),
            "--plot",
            str(tmp_path / "report.png"),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "0 (constant per episode)" in printed  # GRPO's row says why it is zero
    report = json.loads(out.read_text())
    assert report["episodes"] == 16 and report["turns"] > 16
    assert set(report["methods"]) == {
        "grpo",
        "gigpo",
        "gigpo:normalization=mean_std",
        "env+calm/gigpo",
    }
    grpo = report["methods"]["grpo"]
    assert grpo["constant_within_episodes"] and grpo["within_episode_spearman"] == 0.0
    assert report["methods"]["env+calm/gigpo"]["shapers"] == [{"name": "env"}, {"name": "calm"}]
    assert report["monte_carlo"]["turns"] == 6 and report["monte_carlo"]["continuations"] == 2
    assert report["command"].startswith("creditgym credit-report --env creditgym/HouseholdEasy-v0")
    # the household knows what the agent has seen: the searcher's labels beside the planner's
    assert report["methods"]["gigpo"]["informed_episodes_ranked"] > 0
    assert report["methods"]["gigpo"]["informed_batch_auc"] is not None
    assert "informed_batch_auc" in report["monte_carlo"]
    markdown = (tmp_path / "report.md").read_text()
    assert "| planner AUC | searcher within-episode rho (episodes) | searcher AUC |" in markdown
    assert "| method | MC rho | MC sign | planner within-episode rho (episodes) |" in markdown
    assert re.search(
        r"\| grpo \| (-|[-\d.]+) \| (-|[\d.]+) \| 0 \(constant per episode\) \|", markdown
    )
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"


class NoOracleCorridor(DetourCorridor):
    steps_to_go = None


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    return lines[0]


def test_env_without_cost_to_go_is_one_clear_line(capsys):
    if "tests/NoOracleCorridor-v0" not in list_envs():
        creditgym.register("tests/NoOracleCorridor-v0", NoOracleCorridor)
    code = main(["credit-report", "--env", "tests/NoOracleCorridor-v0", "--methods", "grpo"])
    assert code == 2
    assert "gives no cost-to-go" in _one_error_line(capsys)


def test_method_needing_a_scorer_the_agent_lacks_is_one_clear_line(capsys):
    code = main(
        [
            "credit-report",
            "--env",
            "creditgym/SearchQAEasy-v0",
            "--agent",
            "random",
            "--methods",
            "igpo",
        ]
    )
    assert code == 2
    assert "needs the policy's token log-probs" in _one_error_line(capsys)


def test_malformed_method_is_one_clear_line(capsys):
    code = main(["credit-report", "--methods", "grpo,gigpo:step_weight"])
    assert code == 2
    assert "must look like key=value" in _one_error_line(capsys)


@pytest.mark.slow  # builds the tiny model for the env on first use
def test_igpo_variants_are_scored_with_a_model_agents_log_probs(tmp_path):
    out = tmp_path / "search.json"
    methods = "igpo,env+info_gain:gain=log_prob_diff/discounted_group:normalization=separate"
    code = main(
        [
            "credit-report",
            "--env",
            "creditgym/SearchQAEasy-v0",
            "--agent",
            "tiny",
            "--methods",
            methods,
            "--groups",
            "2",
            "--group-size",
            "2",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    # the gains (scored with the tiny model's log-probs) give turns non-zero advantages
    assert report["methods"]["igpo"]["zero_share"] < 0.5
    assert report["methods"][methods.split(",")[1]]["estimator"]["normalization"] == "separate"


class _Tally:
    """Learned state: a fresh one per method, never shared."""

    def __init__(self):
        self.calls = 0

    def state_dict(self):
        return {"calls": self.calls}

    def load_state_dict(self, state):
        self.calls = state["calls"]


_BUILT: list[tuple[str, object]] = []


@register_builder("tests_token")
def _token(value, run, where):
    _BUILT.append(("token", value))
    return f"token:{value}"


@register_builder("tests_tally")
def _tally(value, run, where):
    _BUILT.append(("tally", value))
    return _Tally()


@register_shaper(
    "tests_served",
    requires=(Requirement("tests_token", setting="judge"), Requirement("tests_tally")),
)
def _served(episodes, context, *, weight: float = 1.0):
    assert context.extras["tests_token"] == "token:my-judge"
    context.extras["tests_tally"].calls += 1
    return [weight * np.ones(len(episode.turns)) for episode in episodes]


def test_the_report_builds_what_a_user_shaper_requires_as_the_trainer_does():
    _BUILT.clear()
    methods = parse_methods("env+tests_served/gigpo,env+tests_served:weight=2/grpo")
    report = run_credit_report(
        "creditgym/HouseholdEasy-v0",
        "random",
        methods,
        groups=2,
        group_size=2,
        settings={"judge": "my-judge"},
    )
    assert [r.method.label for r in report.results] == [m.label for m in methods]
    # the stateless token is built once for both methods; the stateful tally once per method
    assert _BUILT == [("token", "my-judge"), ("tally", None), ("tally", None)]

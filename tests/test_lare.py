"""LaRe (arXiv:2412.11120): return-decomposition losses, the online decoder, the shaper."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from creditgym.credit import CreditContext, LatentReward, lare_rewards, sandboxed_factors
from creditgym.credit.shapers.lare import decomposition_loss
from creditgym.trajectory import Episode, Turn


def test_rd_loss_hand_worked():
    # episode 0: turns 1 + 2 = 3 vs return 4 -> (3-4)^2 = 1; episode 1: 5 vs 2 -> 9; mean 5
    rewards = torch.tensor([1.0, 2.0, 5.0])
    loss = decomposition_loss(rewards, torch.tensor([0, 0, 1]), torch.tensor([4.0, 2.0]), "rd")
    assert loss.item() == pytest.approx(5.0)


def test_rrd_equals_rd_when_the_subset_covers_every_turn_and_is_unbiased_otherwise():
    rewards = torch.tensor([1.0, 2.0, 3.0, 5.0])
    episode = torch.tensor([0, 0, 0, 1])
    returns = torch.tensor([4.0, 2.0])
    rd = decomposition_loss(rewards, episode, returns, "rd")
    assert decomposition_loss(rewards, episode, returns, "rrd", subset_size=3) == pytest.approx(
        rd.item()
    )
    # one turn of three, scaled by 3: the estimate of episode 0's sum averages to 6 over subsets
    generator = torch.Generator().manual_seed(0)
    estimates = [
        decomposition_loss(
            rewards[:3], episode[:3], torch.tensor([0.0]), "rrd", generator, subset_size=1
        )
        .sqrt()
        .item()
        for _ in range(600)
    ]
    assert np.mean(estimates) == pytest.approx(6.0, abs=0.25)
    with pytest.raises(ValueError, match="variant"):
        decomposition_loss(rewards, episode, returns, "lrd")


def synthetic_episodes(n_episodes: int, seed: int):
    """Episodes whose return is the sum of hidden per-turn rewards, a function of 3 factors."""
    rng = np.random.default_rng(seed)
    episodes, hidden = [], []
    for _ in range(n_episodes):
        length = int(rng.integers(3, 9))
        states = [
            {"a": float(rng.random()), "b": float(rng.random()), "c": float(rng.random() > 0.7)}
            for _ in range(length)
        ]
        rewards = [2.0 * s["a"] - s["b"] + 1.5 * s["c"] for s in states]
        turns = [
            Turn(observation="", action="act", next_info={"symbolic_state": s}) for s in states
        ]
        turns[-1].reward = float(sum(rewards))  # the episode's reward comes only at the end
        episodes.append(Episode(turns=turns))
        hidden += rewards
    return episodes, np.array(hidden)


@pytest.mark.parametrize("variant", ["rd", "rrd"])
def test_decoded_rewards_recover_the_hidden_per_turn_rewards(variant):
    episodes, hidden = synthetic_episodes(300, seed=0)
    latent = LatentReward(LatentReward.trusted(lambda s, a: [s["a"], s["b"], s["c"]]), seed=0)
    context = CreditContext(extras={"lare": latent})
    for _ in range(2):  # online: batch after batch, as in training
        predicted = lare_rewards(episodes, context, variant=variant, updates=150, lr=1e-2)
    correlation = np.corrcoef(np.concatenate(predicted), hidden)[0, 1]
    assert correlation >= 0.99, f"{variant}: correlation {correlation:.3f}"  # measured 0.996


def test_sandboxed_llm_style_factor_code_runs_through_the_shaper():
    code = "def evaluate(state, action):\n    return [state['a'], state['b'], state['c']]\n"
    episodes, _ = synthetic_episodes(20, seed=1)
    latent = LatentReward(sandboxed_factors(code, time_limit=10.0))
    rewards = lare_rewards(episodes, CreditContext(extras={"lare": latent}), updates=5)
    assert [r.shape for r in rewards] == [(len(ep.turns),) for ep in episodes]


def test_lare_needs_its_latent_reward_in_the_context():
    with pytest.raises(ValueError, match="lare shaper.*extras"):
        lare_rewards(synthetic_episodes(1, 0)[0], CreditContext())


# ---- the code writer -------------------------------------------------------------------------


class CodingClient:
    """Writes one broken candidate then, when shown the error, a working function."""

    model = "coder"

    def __init__(self):
        self.prompts = []

    def generate(self, prompts):
        from creditgym.agents.base import Generation

        self.prompts += prompts
        answers = []
        for p in prompts:
            if "failed" in p:
                answers.append(
                    "```python\ndef evaluate(state, action):\n    return [state['a'], 1.0]\n```"
                )
            else:  # candidates and the merge import os: the sandbox rejects it
                answers.append(
                    "Sure:\n```python\nimport os\n"
                    "def evaluate(state, action):\n    return [1.0]\n```"
                )
        return [Generation(text=a) for a in answers]


def test_code_writer_merges_candidates_verifies_in_the_sandbox_and_repairs(tmp_path):
    from creditgym.credit.llm import CachedLLM
    from creditgym.credit.shapers.lare_coder import write_factor_code

    client = CodingClient()
    samples = [({"a": 0.5}, "go"), ({"a": 1.0}, "take")]
    result = write_factor_code(
        CachedLLM(client, tmp_path), "reach the goal", "a: progress", samples, n_candidates=3
    )
    assert result.code is not None and "state['a']" in result.code
    assert [r["stage"] for r in result.rounds] == ["verify 1", "verify 2"]
    assert "import of 'os'" in result.rounds[0]["error"]
    assert len(client.prompts) == 3 + 1 + 1  # candidates, merge, one repair
    again = CodingClient()
    assert (
        write_factor_code(
            CachedLLM(again, tmp_path), "reach the goal", "a: progress", samples, n_candidates=3
        ).code
        == result.code
    )
    assert again.prompts == []  # all from the cache


def test_code_writer_gives_up_after_max_rounds():
    from creditgym.credit.llm import CachedLLM
    from creditgym.credit.shapers.lare_coder import write_factor_code

    class Stubborn(CodingClient):
        def generate(self, prompts):
            from creditgym.agents.base import Generation

            return [
                Generation(text="def evaluate(state, action):\n    return 'nope'") for _ in prompts
            ]

    result = write_factor_code(
        CachedLLM(Stubborn()), "t", "a: x", [({"a": 1}, "go")], n_candidates=2, max_rounds=3
    )
    assert result.code is None and len(result.rounds) == 3
    assert all("list of numbers" in r["error"] for r in result.rounds)


def test_training_with_lare_and_the_hand_written_household_factors(tmp_path):
    from creditgym.config import load_config
    from creditgym.train.trainer import train

    config = load_config(
        None,
        [
            "policy.tiny.hidden_size=32",
            "policy.tiny.num_layers=1",
            "policy.tiny.num_heads=2",
            "env.kwargs={receptacles: 3, distractors: 0, max_steps: 4}",
            "rollout.groups=2",
            "rollout.group_size=2",
            "credit.shapers=[{name: lare, variant: rrd, updates: 5}]",
            "credit.lare_factors=hand",
            "train.iterations=2",
            "eval.episodes=2",
            "eval.every=0",
            "run.progress=false",
            "run.tensorboard=false",
            f"run.output_dir={tmp_path}",
        ],
    )
    assert train(config).iterations == 2
    with pytest.raises(ValueError, match="lare_factors='nope'"):
        train(
            load_config(
                None,
                [
                    f"run.output_dir={tmp_path / 'bad'}",
                    "credit.shapers=[lare]",
                    "credit.lare_factors=nope",
                ],
            )
        )


# ---- bad factor code: the batch falls back, training goes on ---------------------------------


def _failing(kind: str):
    from creditgym.credit.sandbox import SandboxError

    def factors(inputs):
        raise SandboxError(f"it failed ({kind})", kind)

    return factors


def test_a_failing_batch_falls_back_to_the_env_rewards_marked_on_every_turn():
    episodes, _ = synthetic_episodes(3, seed=2)
    latent = LatentReward(_failing("timeout"))
    with pytest.warns(UserWarning, match="lare: the factor code failed \\(timeout"):
        rewards = lare_rewards(episodes, CreditContext(extras={"lare": latent}), updates=5)
    for episode, shaped in zip(episodes, rewards):
        assert shaped.tolist() == [turn.reward for turn in episode.turns]  # the env's own
        assert all(t.credit_details["lare"]["fallback"] == "timeout" for t in episode.turns)
    assert latent.decoder is None  # it learned nothing from a batch without factors
    assert (latent.stats["fallbacks"], latent.stats["fallbacks_timeout"]) == (1, 1)


def test_each_kind_of_fallback_is_warned_about_once_and_counted_every_time():
    import warnings

    episodes, _ = synthetic_episodes(2, seed=3)
    latent = LatentReward(_failing("crash"))
    context = CreditContext(extras={"lare": latent})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lare_rewards(episodes, context, updates=1)
        lare_rewards(episodes, context, updates=1)
        latent.factors = _failing("memory")
        lare_rewards(episodes, context, updates=1)
    messages = [str(w.message) for w in caught if "lare:" in str(w.message)]
    assert len(messages) == 2 and "(crash:" in messages[0] and "(memory:" in messages[1]
    assert latent.stats["fallbacks"] == 3
    assert (latent.stats["fallbacks_crash"], latent.stats["fallbacks_memory"]) == (2, 1)


def test_factors_that_change_width_fall_back_as_a_shape_failure():
    episodes, _ = synthetic_episodes(4, seed=4)
    width = {"n": 3}
    latent = LatentReward(LatentReward.trusted(lambda s, a: [s["a"]] * width["n"]))
    context = CreditContext(extras={"lare": latent})
    lare_rewards(episodes, context, updates=2)  # the decoder now takes 3 factors
    width["n"] = 2
    with pytest.warns(UserWarning, match="shape.*decoder takes 3"):
        rewards = lare_rewards(episodes, context, updates=2)
    assert rewards[0].tolist() == [turn.reward for turn in episodes[0].turns]
    assert latent.stats["fallbacks_shape"] == 1


def test_the_repair_loop_handles_every_kind_of_failure(tmp_path):
    from creditgym.agents.base import Generation
    from creditgym.credit.llm import CachedLLM
    from creditgym.credit.shapers.lare_coder import write_factor_code

    head = "def evaluate(state, action):\n    "
    attempts = [
        head + "for i in range(10 ** 12):\n        pass\n    return [1.0]",  # timeout
        head + "x = [0] * (10 ** 10)\n    return [1.0]",  # memory
        head + "return [state['missing']]",  # crash
        head + "return [1.0] * 300",  # shape
        head + "return [" + "+".join(["1.0"] * 450) + "]",  # syntax (once a RecursionError)
        head + "return [state['a']]",
    ]

    class Client:
        model = "coder"

        def __init__(self):
            self.repairs = 0

        def generate(self, prompts):
            answers = []
            for prompt in prompts:
                if "failed" in prompt:
                    self.repairs += 1
                    answers.append(f"```python\n{attempts[self.repairs]}\n```")
                else:
                    answers.append(f"```python\n{attempts[0]}\n```")
            return [Generation(text=a) for a in answers]

    result = write_factor_code(
        CachedLLM(Client(), tmp_path),
        "t",
        "a: x",
        [({"a": 0.5}, "go")],
        n_candidates=1,
        max_rounds=6,
        time_limit=1.0,
        item_time_limit=0.3,
    )
    assert [r["kind"] for r in result.rounds] == [
        "timeout",
        "memory",
        "crash",
        "shape",
        "syntax",
        "",
    ]
    assert result.code == attempts[-1]


HOSTILE_FACTOR_CODE = {
    "crash": "    return [state['no such field']]",
    "timeout": "    for i in range(10 ** 12):\n        pass\n    return [1.0]",
    "memory": "    x = [0] * (10 ** 10)\n    return [1.0]",
    "shape": "    return 'not a list'",
}


@pytest.mark.parametrize("kind", list(HOSTILE_FACTOR_CODE))
def test_training_goes_on_through_hostile_factor_code_counting_the_fallbacks(tmp_path, kind):
    import json

    from conftest import household_config, training_rows

    from creditgym.train.trainer import train

    code = tmp_path / "factors.py"
    code.write_text(f"def evaluate(state, action):\n{HOSTILE_FACTOR_CODE[kind]}\n")
    config = household_config(
        tmp_path,
        "run",
        "env.kwargs={max_steps: 3}",
        "rollout.group_size=2",
        "eval.episodes=1",
        "credit.shapers=[{name: lare, updates: 2}]",
        f"credit.lare_factors={code}",
        "train.iterations=2",
        "run.log_episodes=2",
    )
    with pytest.warns(UserWarning, match=f"lare: the factor code failed \\({kind}"):
        assert train(config).iterations == 2
    rows = training_rows(tmp_path / "run")
    assert [row["lare/fallbacks"] for row in rows] == [1.0, 1.0]
    assert [row[f"lare/fallbacks_{kind}"] for row in rows] == [1.0, 1.0]
    logged = [json.loads(line) for line in (tmp_path / "run" / "episodes.jsonl").open()]
    assert logged and all(
        turn["credit"]["lare"]["fallback"] == kind for record in logged for turn in record["turns"]
    )


# ---- the decoder's state, shapes and defaults -----------------------------------------------


def _batch(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    episode_of_turn = np.repeat(np.arange(4), 6)  # 4 episodes of 6 turns: RRD samples 4 of 6
    return rng.normal(size=(24, 3)), episode_of_turn, rng.normal(size=4)


def test_a_restored_latent_reward_continues_exactly_where_it_stopped():
    first = LatentReward(LatentReward.trusted(lambda s, a: [0.0]), seed=3)
    assert first.state_dict() == {}  # nothing learned before the first batch
    first.fit_and_predict(*_batch(0), variant="rrd", updates=5)
    restored = LatentReward(LatentReward.trusted(lambda s, a: [0.0]), seed=99)
    restored.load_state_dict(first.state_dict())
    expected = first.fit_and_predict(*_batch(1), variant="rrd", updates=5)
    np.testing.assert_array_equal(
        restored.fit_and_predict(*_batch(1), variant="rrd", updates=5), expected
    )


def test_factors_must_be_one_row_of_numbers_per_turn():
    latent = LatentReward(LatentReward.trusted(lambda s, a: [0.0]))
    with pytest.raises(ValueError) as error:
        latent.fit_and_predict(np.zeros(3), np.arange(3), np.zeros(3))
    assert str(error.value) == "lare: factors of shape (3,) for 3 turns"
    with pytest.raises(ValueError, match=r"^lare: variant='rdd' is not one of"):
        latent.fit_and_predict(np.zeros((3, 1)), np.arange(3), np.zeros(3), variant="rdd")


def test_rrd_subsets_are_drawn_from_the_generator_alone():
    rewards = torch.arange(24, dtype=torch.float32)
    index, returns = torch.as_tensor(np.repeat(np.arange(4), 6)), torch.zeros(4)

    def loss(seed: int) -> float:
        generator = torch.Generator().manual_seed(seed)
        return float(decomposition_loss(rewards, index, returns, "rrd", generator))

    assert loss(0) == loss(0) and loss(0) != loss(1)


def test_rrd_sums_exactly_subset_size_turns_of_each_episode():
    # every turn of episode e is worth e + 1: any 4 of its n turns (all of a shorter one),
    # scaled by n / 4, give its return exactly, whichever turns the generator picks
    lengths = [6, 5, 7, 2]
    index = torch.as_tensor(np.repeat(np.arange(4), lengths))
    rewards = (index + 1).float()
    returns = torch.tensor([(e + 1.0) * n for e, n in enumerate(lengths)])
    for seed in range(20):
        generator = torch.Generator().manual_seed(seed)
        assert decomposition_loss(rewards, index, returns, "rrd", generator).item() == 0.0


def test_the_decoder_and_its_training_use_the_documented_defaults():
    latent = LatentReward(LatentReward.trusted(lambda s, a: [0.0]))
    latent.fit_and_predict(*_batch(0), updates=0)
    linear, relu, out = latent.decoder.net
    assert (linear.in_features, linear.out_features, out.out_features) == (3, 32, 1)
    assert isinstance(relu, torch.nn.ReLU)
    assert latent.state_dict()["lr"] == 1e-2


def test_a_fallback_marks_each_turn_with_its_kind_and_the_errors_first_200_characters():
    from creditgym.credit.sandbox import SandboxError

    message = "x" * 150 + "y" * 100

    def factors(inputs):
        raise SandboxError(message, "crash")

    episodes, _ = synthetic_episodes(2, seed=5)
    with pytest.warns(UserWarning):
        lare_rewards(episodes, CreditContext(extras={"lare": LatentReward(factors)}))
    details = [turn.credit_details["lare"] for ep in episodes for turn in ep.turns]
    assert all(d == {"fallback": "crash", "error": message[:200]} for d in details)


def test_the_fallback_warning_says_what_happens_and_where_it_is_counted():
    import warnings

    episodes, _ = synthetic_episodes(1, seed=6)
    latent = LatentReward(_failing("timeout"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lare_rewards(episodes, CreditContext(extras={"lare": latent}))
    [warning] = caught
    assert str(warning.message) == (
        "lare: the factor code failed (timeout: it failed (timeout)); this batch uses the "
        "env's rewards instead, and so will later ones that fail this way (counted in "
        "lare/fallbacks_timeout; not warned again)"
    )


def test_the_fallback_warning_points_at_the_lare_shaper_however_it_is_called():
    # stacklevel 3: past record_fallback and _fall_back to lare_rewards' own line, which names
    # the shaper (through compute_advantages, one level more would be the api's generic call)
    # and puts the warning in creditgym.credit.shapers.lare, a module a user can filter
    import inspect
    import warnings

    from creditgym.credit import compute_advantages
    from creditgym.credit.shapers import lare

    lines, first = inspect.getsourcelines(lare.lare_rewards)
    for call in (
        lambda episodes, context: lare_rewards(episodes, context),
        lambda episodes, context: compute_advantages(episodes, ["lare"], "grpo", context),
    ):
        episodes, _ = synthetic_episodes(2, seed=6)
        context = CreditContext(extras={"lare": LatentReward(_failing("crash"))})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call(episodes, context)
        [warning] = caught
        assert warning.filename == lare.__file__
        assert first <= warning.lineno < first + len(lines)


def test_factors_of_the_wrong_width_fall_back_naming_their_shape():
    latent = LatentReward(LatentReward.trusted(lambda s, a: [0.0, 1.0]))
    latent.fit_and_predict(np.zeros((2, 3)), np.arange(2), np.zeros(2), updates=0)
    factors, error = latent.factors_or_fallback([({}, "a"), ({}, "b")])
    assert factors is None and error.kind == "shape"
    assert str(error) == "factors of shape (2, 2); the decoder takes 3 per turn"


class _Spy(LatentReward):
    """Records what `lare_rewards` hands the decoder; predicts 0 for every turn."""

    def fit_and_predict(self, factors, episode_of_turn, returns, **options):
        self.seen = (episode_of_turn.tolist(), returns.tolist(), options)
        return np.zeros(len(episode_of_turn))


def _turns(*rewards):
    return [Turn("o", "a", reward=r, next_info={"symbolic_state": {}}) for r in rewards]


def test_agents_of_one_team_rollout_share_one_unit_and_the_team_return():
    episodes = [
        Episode(turns=_turns(0.0, 2.0), metadata={"team_rollout": 7}),
        Episode(turns=_turns(1.0)),
        Episode(turns=_turns(0.0, 2.0), metadata={"team_rollout": 7}),
    ]
    spy = _Spy(LatentReward.trusted(lambda s, a: [1.0]))
    lare_rewards(episodes, CreditContext(extras={"lare": spy}), variant="rrd", updates=3, lr=0.5)
    units, returns, options = spy.seen
    assert units == [0, 0, 1, 0, 0] and returns == [2.0, 1.0]
    assert options == {"variant": "rrd", "updates": 3, "lr": 0.5}
    lare_rewards(episodes, CreditContext(extras={"lare": spy}))
    assert spy.seen[2] == {"variant": "rd", "updates": 50, "lr": 1e-2}  # the defaults


def test_a_batch_without_turns_gets_empty_rewards():
    episodes = [Episode(turns=[]), Episode(turns=[])]
    latent = LatentReward(LatentReward.trusted(lambda s, a: [1.0]))
    rewards = lare_rewards(episodes, CreditContext(extras={"lare": latent}))
    assert [r.shape for r in rewards] == [(0,), (0,)]


def test_sandboxed_factors_pass_their_limits_to_the_sandbox(monkeypatch):
    from creditgym.credit.shapers import lare

    calls = []
    monkeypatch.setattr(lare, "run_sandboxed", lambda code, inputs, **limits: calls.append(limits))
    sandboxed_factors("code")([])
    sandboxed_factors("code", time_limit=3.0, item_time_limit=0.5, memory_mb=64)([])
    assert calls == [
        {"time_limit": 10.0, "item_time_limit": 1.0, "memory_mb": 512},
        {"time_limit": 3.0, "item_time_limit": 0.5, "memory_mb": 64},
    ]


def test_the_decoder_has_the_latent_rewards_hidden_width():
    from creditgym.credit.shapers.lare import RewardDecoder

    assert RewardDecoder(3).net[0].out_features == 32
    latent = LatentReward(LatentReward.trusted(lambda s, a: [0.0]), hidden=8)
    latent.fit_and_predict(np.zeros((2, 1)), np.arange(2), np.zeros(2), updates=0)
    assert latent.decoder.net[0].out_features == 8


def test_decomposition_losses_default_to_rd_over_subsets_of_4_turns():
    rewards = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    index, returns = torch.zeros(5, dtype=torch.long), torch.tensor([10.0])
    # rd: (15 - 10)^2
    assert decomposition_loss(rewards, index, returns).item() == 25.0

    def rrd(**options):
        generator = torch.Generator().manual_seed(0)
        return decomposition_loss(rewards, index, returns, "rrd", generator, **options).item()

    assert rrd() == rrd(subset_size=4) != rrd(subset_size=5)


def test_rrd_loss_of_float64_rewards_and_an_episode_without_turns():
    rewards = torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64)
    index, returns = torch.tensor([0, 0, 1]), torch.tensor([4.0, 4.0, 2.0], dtype=torch.float64)
    # 1 + 2 = 3 vs 4, 5 vs 4, and the last episode has no turns: 0 vs 2; mean of 1, 1 and 4
    for variant in ("rd", "rrd"):
        loss = decomposition_loss(rewards, index, returns, variant)
        assert loss.dtype == torch.float64 and loss.item() == 2.0


def test_the_decoder_takes_50_adam_steps_per_batch_unless_told():
    def predict(**options):
        latent = LatentReward(LatentReward.trusted(lambda s, a: [0.0]))
        return latent.fit_and_predict(*_batch(0), **options).tolist()

    assert predict() == predict(updates=50) != predict(updates=51)


def _predict(factors, episode_of_turn, returns):
    latent = LatentReward(LatentReward.trusted(lambda s, a: [0.0]))
    return latent.fit_and_predict(factors, episode_of_turn, returns, variant="rrd", updates=5)


def test_the_decoder_takes_episode_indices_of_any_integer_type():
    factors, episode_of_turn, returns = _batch(0)
    expected = _predict(factors, episode_of_turn, returns).tolist()
    for dtype in (np.int32, np.int16, np.uint8):
        assert _predict(factors, episode_of_turn.astype(dtype), returns).tolist() == expected


def test_the_decoder_trains_in_float32_on_float64_returns():
    # the returns are rounded to float32 first: the same training as on float32 returns
    factors, episode_of_turn, returns = _batch(0)
    float32 = returns.astype(np.float32)
    assert _predict(factors, episode_of_turn, returns).tolist() == (
        _predict(factors, episode_of_turn, float32).tolist()
    )

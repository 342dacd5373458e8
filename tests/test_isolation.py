"""Isolated env workers (rollout.isolation=process): the same episodes as in-process envs, and
every way a worker can break (killed, segfault, exit, hang, garbage, leak, a raising env) fails
only its own episode, with its reason, and a fresh worker serves the next one."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from _flaky_envs import ENV_ID, hostile_worker, register_flaky

from creditgym.agents.scripted import ExpertPolicy, RandomPolicy
from creditgym.envs.registry import registration, unregister
from creditgym.rollout.collect import collect_episodes, group_tasks, make_envs
from creditgym.rollout.failures import EnvFailure
from creditgym.rollout.isolation import IsolatedEnv, WorkerProcess, WorkerSettings, protocol
from creditgym.trajectory import Episode

HOUSEHOLD = "creditgym/HouseholdEasy-v0"
FAST = WorkerSettings(step_timeout_s=0.5, start_timeout_s=30.0)


@pytest.fixture(scope="module", autouse=True)
def flaky_env():
    register_flaky()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _signature(episodes: list[Episode]) -> list:
    return [
        (
            ep.group_id,
            ep.success,
            ep.failed,
            ep.terminated,
            ep.truncated,
            [
                (t.observation, t.action, t.reward, t.info, t.next_info, t.cost_to_go)
                for t in ep.turns
            ],
        )
        for ep in episodes
    ]


def _play(envs, seeds, *, policy=None, group_size=1) -> list[Episode]:
    tasks = group_tasks(seeds, group_size=group_size)
    return collect_episodes(envs, policy or RandomPolicy(seed=0), tasks, env_id=ENV_ID)


def _flaky(count: int, settings: WorkerSettings = FAST, **kwargs) -> list[IsolatedEnv]:
    return make_envs(ENV_ID, count, isolation=settings, **kwargs)


def _close(envs) -> None:
    for env in envs:
        env.close()


def test_isolated_envs_play_the_same_episodes_as_in_process_envs():
    """Same seeds, same lockstep: observations, infos (tuple anchors included), rewards and
    the oracle's cost-to-go all cross the process boundary unchanged."""
    tasks = group_tasks([3, 5, 8], group_size=2, split="train")
    local = collect_episodes(
        make_envs(HOUSEHOLD, 4, split="train"), RandomPolicy(seed=1), tasks, env_id=HOUSEHOLD
    )
    envs = make_envs(HOUSEHOLD, 4, split="train", isolation=WorkerSettings())
    try:
        isolated = collect_episodes(envs, RandomPolicy(seed=1), tasks, env_id=HOUSEHOLD)
        assert _signature(isolated) == _signature(local)
        assert not any(ep.failed for ep in isolated)
        assert isinstance(isolated[0].turns[0].info["anchor"], tuple)
        assert len({env.pid for env in envs}) == 4 and os.getpid() not in {e.pid for e in envs}
    finally:
        _close(envs)


class KillsAWorker(RandomPolicy):
    """A random policy that kill -9s the worker of env 0 before its second step."""

    def __init__(self, env: IsolatedEnv, **kwargs):
        super().__init__(**kwargs)
        self.env, self.calls, self.killed = env, 0, None

    def generate(self, prompts, admissible_actions=None, envs=None):
        self.calls += 1
        if self.calls == 2:
            self.killed = self.env.pid
            os.kill(self.killed, 9)
        return super().generate(prompts, admissible_actions=admissible_actions, envs=envs)


def test_a_worker_killed_with_sigkill_mid_episode_fails_its_episode_and_is_replaced():
    envs = _flaky(2, length=3)
    policy = KillsAWorker(envs[0], seed=0)
    try:
        episodes = _play(envs, [1, 2, 3, 4], policy=policy)
        assert len(episodes) == 4  # nothing lost: every task has its episode
        [failed] = [ep for ep in episodes if ep.failed]
        assert failed.metadata["failure"] == "crash"
        assert (
            "SIGKILL" in failed.metadata["error"] and str(policy.killed) in failed.metadata["error"]
        )
        assert len(failed.turns) == 2  # killed mid-episode: its first step was answered
        assert _gone(policy.killed)  # reaped, not a zombie
        assert envs[0].pid not in (None, policy.killed) and envs[0].starts == 2
        assert sum(not ep.failed for ep in episodes) == 3
    finally:
        _close(envs)


def test_a_step_that_never_returns_is_killed_after_the_timeout():
    envs = _flaky(2, fail="hang", seeds=[1], length=2)
    try:
        envs[0].reset(seed=0)  # both workers up before the clock starts
        envs[1].reset(seed=0)
        hung_pids = {env.pid for env in envs}
        started = time.monotonic()
        episodes = _play(envs, [1, 2])
        elapsed = time.monotonic() - started
        [hung] = [ep for ep in episodes if ep.failed]
        assert (
            hung.metadata["failure"] == "timeout"
            and "did not answer step" in hung.metadata["error"]
        )
        assert elapsed < FAST.step_timeout_s + 2.0  # one step timeout, not a stall
        assert any(_gone(pid) for pid in hung_pids)
        assert [ep.success for ep in episodes if not ep.failed]  # the other env played on
    finally:
        _close(envs)


@pytest.mark.parametrize(
    ("how", "words"),
    [
        ("segfault", "SIGSEGV"),
        ("exit", "exited with code 3"),
        # its socket stays open in the orphan: the worker's exit, watched beside it, tells
        ("orphan", "exited with code 4"),
    ],
)
def test_a_segfault_or_an_exit_is_a_crash(how, words):
    [env] = _flaky(1, fail=how, seeds=[1])
    try:
        started = time.monotonic()
        first, second = _play([env], [1, 2])
        assert time.monotonic() - started < 10.0  # told by the exit, not by a timeout or EOF
        assert first.failed and first.metadata["failure"] == "crash"
        assert words in first.metadata["error"]
        assert not second.failed and env.starts == 2  # a fresh worker took the next task
    finally:
        env.close()


def test_a_wrong_typed_answer_is_garbage_and_the_worker_is_killed():
    [env] = _flaky(1, fail="garbage", seeds=[1])
    try:
        env.reset(seed=1)
        pid = env.pid
        env.step("up")
        with pytest.raises(EnvFailure) as failure:
            env.step("up")
        assert failure.value.reason == "garbage" and "int" in str(failure.value)
        assert env.pid is None and _gone(pid)
        env.reset(seed=2)  # restarted on the next reset
        assert env.pid not in (None, pid)
    finally:
        env.close()


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("not_json", "garbage"),
        ("not_an_object", "garbage"),
        ("wrong_types", "garbage"),
        ("another_type", "garbage"),
        ("unknown_tag", "garbage"),
        ("deep", "garbage"),
        ("huge_header", "garbage"),
        ("partial", "timeout"),
    ],
)
def test_a_hostile_worker_is_killed_and_nothing_it_sent_is_believed(how, reason):
    """A worker process replaced by hostile code: whatever it writes, the rollout gets one
    EnvFailure by the deadline, never a parse it acted on, and the process is killed."""
    pids = []

    def connect() -> WorkerProcess:
        worker = WorkerProcess(hostile_worker, (how,))
        pids.append(worker.pid)
        return worker

    env = IsolatedEnv(registration(ENV_ID), {}, FAST, connect=connect)
    started = time.monotonic()
    with pytest.raises(EnvFailure) as failure:
        env.reset(seed=0)
    assert failure.value.reason == reason
    assert time.monotonic() - started < FAST.step_timeout_s + 3.0
    assert env.transport is None and _gone(pids[0])  # it would have lingered a minute


def test_a_leak_past_the_rss_limit_kills_the_worker():
    settings = WorkerSettings(step_timeout_s=5.0, max_rss_mb=_baseline_mb() + 60)
    [env] = _flaky(1, settings, fail="leak", seeds=[1], leak_mb=96)
    try:
        env.reset(seed=1)
        pid = env.pid
        env.step("up")
        with pytest.raises(EnvFailure) as failure:
            env.step("up")
        assert failure.value.reason == "memory" and "rollout.env_max_rss_mb" in str(failure.value)
        assert _gone(pid)
    finally:
        env.close()


def test_one_huge_allocation_is_stopped_by_the_address_space_backstop():
    """RLIMIT_AS (twice the RSS limit over what the worker mapped at start) turns a 1 GiB
    allocation into a MemoryError inside the step, counted as memory; without it the step
    would finish first, holding the GiB, and only the RSS check would see it afterwards."""
    settings = WorkerSettings(step_timeout_s=5.0, max_rss_mb=_baseline_mb() + 60)
    [env] = _flaky(1, settings, fail="huge", seeds=[1])
    try:
        [episode] = _play([env], [1])
        assert episode.failed and episode.metadata["failure"] == "memory"
        assert "MemoryError" in episode.metadata["error"]
    finally:
        env.close()


def test_an_env_that_raises_fails_its_episode_and_keeps_its_worker():
    [env] = _flaky(1, fail="raise", seeds=[1])
    try:
        env.reset(seed=0)
        pid = env.pid
        first, second = _play([env], [1, 2])
        assert first.metadata["failure"] == "error"
        assert "the flaky env broke on purpose" in first.metadata["error"]
        assert not second.failed and env.pid == pid and env.starts == 1
    finally:
        env.close()


def test_what_an_env_prints_never_reaches_the_protocol():
    [env] = _flaky(1, fail="print", seeds=[1])
    try:
        [episode] = _play([env], [1], policy=ExpertPolicy())
        assert not episode.failed and episode.success
    finally:
        env.close()


def test_an_env_that_cannot_be_built_in_its_worker_fails_each_episode_with_the_reason():
    [env] = _flaky(1, no_such_argument=1)
    try:
        episodes = _play([env], [1, 2])
        assert [ep.metadata["failure"] for ep in episodes] == ["error", "error"]
        assert "no_such_argument" in episodes[0].metadata["error"]
        assert env.starts == 2  # each reset tried a fresh worker
    finally:
        env.close()


def test_an_expert_policy_plays_through_the_worker():
    [env] = _flaky(1)
    try:
        [episode] = _play([env], [0], policy=ExpertPolicy())
        assert episode.success and [t.action for t in episode.turns] == ["up"] * 3
        assert env.state()["step_count"] == 3
    finally:
        env.close()


def _baseline_mb() -> float:
    """Resident MiB of a fresh flaky-env worker (the leak limit sits above it)."""
    [env] = _flaky(1)
    try:
        env.reset(seed=0)
        return env.transport.resident_bytes() / 2**20
    finally:
        env.close()


# ---- the protocol's values -------------------------------------------------------------------


def test_values_json_cannot_hold_cross_unchanged():
    value = {
        "anchor": ("room", 3, ("nested", None)),
        "seen": {"b", "a"},
        "frozen": frozenset({1, 2}),
        "by_position": {(0, 1): "door", 2: "key"},
        "$looks_like_a_tag": 1,
        "grid": np.arange(6, dtype=np.int16).reshape(2, 3),
        "score": np.float32(0.5),
        "nan": float("nan"),
    }
    back = protocol.decode(protocol.encode({"type": "x", "data": value}))["data"]
    assert back["anchor"] == value["anchor"] and isinstance(back["anchor"][2], tuple)
    assert back["seen"] == {"a", "b"} and back["frozen"] == frozenset({1, 2})
    assert back["by_position"] == {(0, 1): "door", 2: "key"}
    assert back["$looks_like_a_tag"] == 1
    assert back["grid"].dtype == np.int16 and back["grid"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert back["score"] == 0.5 and np.isnan(back["nan"])


def test_a_value_that_cannot_travel_is_named():
    with pytest.raises(TypeError, match=r"message\['data'\]\['handle'\] is a object"):
        protocol.encode({"type": "x", "data": {"handle": object()}})


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xff",
        b"[]",
        b'{"data": 1}',
        b'{"type": 3}',
        b'{"$tuple": 5}',
        b'{"$dict": [[[1], 2]]}',
    ],
)
def test_decode_rejects_what_is_not_a_message(payload):
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(payload)


def test_a_multi_agent_env_plays_the_same_episodes_in_a_worker():
    """Per-agent observations, rewards, ends and infos travel as dicts; the expert's joint
    move is asked through the worker."""
    pytest.importorskip("pettingzoo")
    coop = "creditgym/CoopHousehold-v0"
    tasks = group_tasks([3, 5], group_size=2)
    for policy in (lambda: RandomPolicy(seed=1), ExpertPolicy):
        local = collect_episodes(make_envs(coop, 2), policy(), tasks, env_id=coop)
        envs = make_envs(coop, 2, isolation=WorkerSettings())
        try:
            isolated = collect_episodes(envs, policy(), tasks, env_id=coop)
            assert envs[0].possible_agents == list(make_envs(coop, 1)[0].possible_agents)
            assert _signature(isolated) == _signature(local) and len(isolated) == 8
            assert not any(ep.failed for ep in isolated)
        finally:
            _close(envs)


# ---- failure reasons in the metrics and the config -------------------------------------------


def _failed(reason: str | None) -> Episode:
    episode = Episode(failed=reason is not None)
    if reason is not None:
        episode.metadata["failure"] = reason
    return episode


def test_failed_episodes_are_counted_per_reason():
    from creditgym.train.metric_rows import rollout_metrics

    batch = [_failed(None), _failed("timeout"), _failed("timeout"), _failed("crash")]
    row = rollout_metrics(batch)
    assert row["rollout/failed_episodes"] == 3
    assert row["rollout/failed/timeout"] == 2 and row["rollout/failed/crash"] == 1
    assert "rollout/failed/memory" not in row  # only what occurred, without isolation
    every = rollout_metrics(batch, every_reason=True)
    assert [
        every[f"rollout/failed/{r}"] for r in ("error", "crash", "timeout", "garbage", "memory")
    ] == [0, 1, 2, 0, 0]


def test_an_env_failing_in_this_process_is_an_error():
    [episode] = collect_episodes(
        [_RaisingEnv()], RandomPolicy(seed=0), group_tasks([1], group_size=1), env_id="x"
    )
    assert episode.failed and episode.metadata["failure"] == "error"
    assert "RuntimeError: no" in episode.metadata["error"]


class _RaisingEnv:
    def reset(self, seed=None, options=None):
        return "start", {"admissible_actions": ["go"]}

    def step(self, action):
        raise RuntimeError("no")


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["rollout.isolation=process", "rollout.workers=2"], "rollout.workers=0"),
        (["rollout.isolation=thread"], "none, process"),
        (["rollout.env_step_timeout_s=0"], "rollout.env_step_timeout_s"),
        (["rollout.env_max_rss_mb=-1"], "rollout.env_max_rss_mb"),
    ],
)
def test_a_bad_isolation_setting_is_one_line_naming_the_key(overrides, words):
    from creditgym.config import ConfigError, load_config

    with pytest.raises(ConfigError) as error:
        load_config(None, overrides)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_an_entry_point_that_cannot_reach_a_worker_is_named():
    import creditgym

    creditgym.register("tests/Lambda-v0", lambda: None)
    try:
        with pytest.raises(ValueError, match="module:Class"):
            make_envs("tests/Lambda-v0", 1, isolation=FAST)
    finally:
        unregister("tests/Lambda-v0")

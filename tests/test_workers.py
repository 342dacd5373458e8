"""Environments in Ray workers: the same episodes as in-process, and a dead worker fails, not
hangs."""

from __future__ import annotations

import time

import pytest

ray = pytest.importorskip("ray")

from creditgym.agents.scripted import RandomPolicy  # noqa: E402
from creditgym.rollout.collect import collect_episodes, group_tasks, make_envs  # noqa: E402
from creditgym.rollout.failures import EnvFailure  # noqa: E402

pytestmark = pytest.mark.slow
ENV = "creditgym/HouseholdEasy-v0"


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _signature(episodes):
    return [
        (
            ep.group_id,
            ep.success,
            ep.failed,
            [(t.observation, t.action, t.reward, t.info["anchor"]) for t in ep.turns],
        )
        for ep in episodes
    ]


def test_ray_workers_give_the_same_episodes_as_in_process_envs():
    tasks = group_tasks([3, 5, 8], group_size=4, split="train")
    local = collect_episodes(
        make_envs(ENV, 6, split="train"), RandomPolicy(seed=1), tasks, env_id=ENV
    )
    remote = collect_episodes(
        make_envs(ENV, 6, split="train", workers=2), RandomPolicy(seed=1), tasks, env_id=ENV
    )
    assert _signature(remote) == _signature(local)
    assert not any(ep.failed for ep in remote)


class KillsAWorker(RandomPolicy):
    """A random policy that kills worker 0 on its third step."""

    def __init__(self, pool, **kwargs):
        super().__init__(**kwargs)
        self.pool, self.calls = pool, 0

    def generate(self, prompts, admissible_actions=None, envs=None):
        self.calls += 1
        if self.calls == 3:
            _kill(self.pool.actors[0])
        return super().generate(prompts, admissible_actions=admissible_actions, envs=envs)


def _kill(actor):
    """Kill `actor` and wait until Ray reports it dead (`ray.kill` only asks)."""
    ray.kill(actor, no_restart=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # a call may still run before the kill lands
        try:
            ray.get(actor.possible_agents.remote(), timeout=60)
        except ray.exceptions.RayActorError:
            return
        time.sleep(0.05)
    pytest.fail("the killed actor still answers after 60 s")


def test_a_killed_worker_fails_its_episodes_and_is_replaced_for_the_next_iteration():
    envs = make_envs(ENV, 4, split="train", workers=2, max_steps=10)
    tasks = group_tasks([1, 2], group_size=2, split="train")
    policy = KillsAWorker(envs[0].pool, seed=0)
    episodes = collect_episodes(envs, policy, tasks, env_id=ENV)
    assert len(episodes) == 4  # the rollout completed
    failed = [ep for ep in episodes if ep.failed]
    survived = [ep for ep in episodes if not ep.failed]
    assert failed and survived  # worker 0's episodes failed, worker 1's ran to the end
    assert all("Actor" in ep.metadata["error"] or "actor" in ep.metadata["error"] for ep in failed)
    assert all(ep.metadata["failure"] == "crash" for ep in failed)
    next_iteration = collect_episodes(envs, RandomPolicy(seed=0), tasks, env_id=ENV)
    assert not any(ep.failed for ep in next_iteration)  # the dead worker was replaced


def test_an_env_is_never_stepped_on_a_replacement_that_lacks_its_state():
    """Two envs on one worker; the worker dies; one env is reset (on a fresh actor): the other's
    episode fails as a crash instead of stepping an env the fresh actor never reset, and its
    failure does not condemn the fresh actor."""
    first, second = make_envs(ENV, 2, split="train", workers=1, max_steps=10)
    pool = first.pool
    first.reset(seed=1), second.reset(seed=2)
    _kill(pool.actors[0])
    with pytest.raises(EnvFailure) as lost:
        first.step("look")
    assert lost.value.reason == "crash"
    first.reset(seed=1)  # on the replacement
    replacement = pool.actors[0]
    with pytest.raises(EnvFailure) as stale:
        second.step("look")
    assert stale.value.reason == "crash"
    assert pool.actors[0] is replacement and not pool.dead
    assert first.step("look")[0]  # the replacement still serves the env reset on it


@pytest.mark.parametrize(
    "lost", [ray.exceptions.ActorDiedError(), ray.exceptions.ActorUnavailableError("gone", None)]
)
def test_an_actor_lost_at_submission_is_a_crash_too(lost):
    """Ray may learn of a lost actor when a call is submitted, not only at `ray.get`."""
    [env] = make_envs(ENV, 1, split="train", workers=1, max_steps=10)
    env.reset(seed=0)
    actor = env.actor

    class Lost:
        def remote(self, *args):
            raise lost

    env.actor = type("GoneActor", (), {"step": Lost()})()
    env.pool.actors[0] = env.actor
    with pytest.raises(EnvFailure) as failure:
        env.step("look")
    assert failure.value.reason == "crash" and type(lost).__name__ in str(failure.value)
    assert env.pool.dead == {0}
    env.pool.actors[0], env.actor = actor, None
    env.reset(seed=0)
    assert env.pool.actors[0] is not actor and not env.pool.dead  # replaced on the next reset


def test_training_with_env_workers_equals_training_in_process(tmp_path):
    """Workers step the same envs with the same seeds: the run is the same, weights included."""
    import json

    from creditgym.config import load_config
    from creditgym.train.trainer import train

    def run(workers: int):
        out = tmp_path / f"workers{workers}"
        config = load_config(
            None,
            [
                "policy.tiny.hidden_size=32",
                "policy.tiny.num_layers=1",
                "policy.tiny.num_heads=2",
                "env.kwargs={max_steps: 4}",
                "rollout.groups=2",
                "rollout.group_size=2",
                f"rollout.workers={workers}",
                "train.iterations=1",
                "eval.episodes=2",
                "eval.every=0",
                "run.progress=false",
                "run.tensorboard=false",
                f"run.output_dir={out}",
            ],
        )
        result = train(config)
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        [row] = [row for row in rows if "rollout/success" in row]
        return result, row

    (with_workers, row), (in_process, expected_row) = run(2), run(0)
    assert with_workers.iterations == 1 and with_workers.env_steps == in_process.env_steps > 0
    assert row["rollout/failed_episodes"] == 0.0
    for key in ("rollout/success", "rollout/return", "rollout/turns", "rollout/response_tokens"):
        assert row[key] == expected_row[key], key
    assert row["update/pg_loss"] == pytest.approx(expected_row["update/pg_loss"], abs=1e-6)
    assert row["update/grad_norm"] == pytest.approx(expected_row["update/grad_norm"], rel=1e-5)


def test_failed_episodes_are_counted_in_the_iteration_metrics():
    """What the README promises for a dead worker: its episodes show in rollout/failed_episodes
    and leave the other rollout statistics alone."""
    from creditgym.train.metric_rows import rollout_metrics
    from creditgym.trajectory import Episode, Turn

    won = Episode(turns=[Turn("o", "a", reward=1.0)], success=True)
    lost = Episode(turns=[Turn("o", "a"), Turn("o", "b")])
    failed = Episode(turns=[Turn("o", "a")], failed=True, metadata={"error": "actor died"})
    metrics = rollout_metrics([won, lost, failed, failed])
    assert metrics["rollout/failed_episodes"] == 2.0
    assert metrics["rollout/success"] == 0.5 and metrics["rollout/turns"] == 1.5

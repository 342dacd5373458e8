"""Environments in Ray workers: the same episodes as in-process, and a dead worker fails, not
hangs."""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray")

from creditgym.agents.scripted import RandomPolicy  # noqa: E402
from creditgym.rollout.collect import collect_episodes, group_tasks, make_envs  # noqa: E402

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
            ray.kill(self.pool.actors[0], no_restart=True)
        return super().generate(prompts, admissible_actions=admissible_actions, envs=envs)


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

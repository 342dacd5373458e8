"""Multi-process training on the CPU (gloo), launched by the real `torchrun`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY
from safetensors.torch import load_file

from creditgym.config import load_config
from creditgym.train.distributed import ALONE, Distributed, shard
from creditgym.train.trainer import train

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "configs" / "quickstart_rl.yaml"


def torchrun(processes: int, *args: str) -> None:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={processes}",
        *args,
    ]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_shard_gives_every_item_to_exactly_one_rank():
    items = list(range(10))
    shards = [shard(items, Distributed(rank, 3)) for rank in range(3)]
    assert sorted(x for s in shards for x in s) == items
    assert shard(items, ALONE) == items and not ALONE.enabled and ALONE.is_main


def test_two_process_update_equals_one_process_on_the_same_global_batch(tmp_path):
    for processes in (1, 2):
        torchrun(processes, "tests/_ddp_update.py", str(tmp_path / f"{processes}.pt"))
    one, two = (torch.load(tmp_path / f"{n}.pt") for n in (1, 2))
    assert one["weights"].keys() == two["weights"].keys()
    for name in one["weights"]:
        torch.testing.assert_close(two["weights"][name], one["weights"][name], rtol=0, atol=1e-5)
    for name, value in one["stats"].items():  # the statistics are the global batch's
        assert two["stats"][name] == pytest.approx(value, rel=1e-4, abs=1e-6)


def test_two_rank_training_writes_once_and_resumes_on_one_rank(tmp_path):
    out = tmp_path / "run"
    overrides = [
        *TINY,
        "env.id=creditgym/HouseholdEasy-v0",
        "env.kwargs={max_steps: 6}",
        "rollout.groups=4",
        "rollout.group_size=2",
        "eval.episodes=4",
        "eval.every=0",
        "train.iterations=2",
        f"run.output_dir={out}",
    ]
    torchrun(2, "-m", "creditgym", "train", "configs/quickstart_rl.yaml", *overrides)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_rows = [row for row in rows if "rollout/success" in row]
    assert [row["iteration"] for row in train_rows] == [1, 2]  # rank 0 alone writes
    assert (out / "checkpoints" / "iter_000002" / "model").is_dir()
    # the global batch is 4 groups x 2 episodes, split over the 2 ranks and gathered for the metrics
    assert train_rows[0]["credit/failed_episode_share"] == 0.0
    assert train_rows[1]["env_steps"] > train_rows[0]["env_steps"] >= 8

    resumed = train(
        load_config(QUICKSTART, [*overrides[:-2], "train.iterations=3", f"run.output_dir={out}"])
    )
    assert resumed.iterations == 3
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["iteration"] for row in rows if "rollout/success" in row] == [1, 2, 3]


def test_a_two_rank_run_resumed_equals_the_same_run_straight(tmp_path):
    """Checkpoints hold no per-rank state: stopping after 2 iterations and resuming changes
    nothing, down to the weights."""
    overrides = [
        *TINY,
        "env.id=creditgym/HouseholdEasy-v0",
        "env.kwargs={max_steps: 6}",
        "rollout.groups=4",
        "rollout.group_size=2",
        "eval.episodes=4",
        "eval.every=0",
    ]
    resumed, straight = tmp_path / "resumed", tmp_path / "straight"
    for iterations, out in ((2, resumed), (3, resumed), (3, straight)):
        torchrun(
            2,
            *("-m", "creditgym", "train", "configs/quickstart_rl.yaml", *overrides),
            *(f"train.iterations={iterations}", f"run.output_dir={out}"),
        )
    final = Path("checkpoints") / "iter_000003" / "model" / "model.safetensors"
    a, b = load_file(resumed / final), load_file(straight / final)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6)


def test_groups_that_do_not_split_over_the_ranks_are_a_clear_error(tmp_path):
    from creditgym.train.setup import _check_distributed

    config = load_config(QUICKSTART, ["rollout.groups=3"])
    with pytest.raises(ValueError, match="rollout.groups=3 does not split over 2 processes"):
        _check_distributed(config, Distributed(0, 2))
    lare = load_config(QUICKSTART, ["rollout.groups=4", "credit.shapers=[lare]"])
    with pytest.raises(ValueError, match="lare"):
        _check_distributed(lare, Distributed(0, 2))

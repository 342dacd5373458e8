"""Checkpoints: verified before use, broken ones skipped with a warning or named in one line,
a crash mid-save leaves nothing that looks complete, and a torn metrics line is repaired."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import TINY

from creditgym.config import load_config
from creditgym.train.checkpoint import (
    CheckpointError,
    CheckpointWarning,
    TrainerState,
    find_resume_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)
from creditgym.train.trainer import train


def _config(out: Path, *overrides: str):
    base = [
        "env.id=creditgym/HouseholdEasy-v0",
        "env.kwargs={max_steps: 4}",
        "rollout.groups=2",
        "rollout.group_size=2",
        "eval.episodes=2",
        "eval.every=0",
        "run.save_every=1",
        f"run.output_dir={out}",
    ]
    return load_config(None, TINY + base + list(overrides))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A run of two iterations with a checkpoint after each: iter_000001 and iter_000002."""
    out = tmp_path_factory.mktemp("trained") / "run"
    train(_config(out, "train.iterations=2"))
    return out


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A private copy of the trained run to break."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def _truncate(file: Path) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])


def _flip_one_bit(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[-100] ^= 0x01  # in the tensor data, past the header: safetensors' own check passes
    file.write_bytes(bytes(data))


def _same_size_garbage(file: Path) -> None:
    file.write_bytes(b"x" * file.stat().st_size)


def _edit_iteration(file: Path) -> None:
    text = file.read_text()
    assert '"iteration": 2,' in text
    file.write_text(text.replace('"iteration": 2,', '"iteration": 7,', 1))  # same size


BREAKAGES = {
    "one flipped bit in model.safetensors": ("model/model.safetensors", _flip_one_bit),
    "an edited iteration in trainer_state.json": ("trainer_state.json", _edit_iteration),
    "same-size garbage tokenizer_config.json": ("model/tokenizer_config.json", _same_size_garbage),
    "same-size garbage config.json": ("model/config.json", _same_size_garbage),
    "truncated optimizer.pt": ("optimizer.pt", _truncate),
    "truncated rng.pt": ("rng.pt", _truncate),
    "truncated model.safetensors": ("model/model.safetensors", _truncate),
    "empty trainer_state.json": ("trainer_state.json", lambda f: f.write_text("")),
    "deleted trainer_state.json": ("trainer_state.json", lambda f: f.unlink()),
    "grown optimizer.pt": ("optimizer.pt", lambda f: f.write_bytes(f.read_bytes() + b"\0" * 8)),
}


def test_a_fresh_checkpoint_verifies_and_records_its_files(trained):
    checkpoint = trained / "checkpoints" / "iter_000002"
    verify_checkpoint(checkpoint)
    manifest = json.loads((checkpoint / "checkpoint.json").read_text())
    assert manifest["iteration"] == 2
    assert {"optimizer.pt", "rng.pt", "trainer_state.json", "model/model.safetensors"} <= set(
        manifest["files"]
    )
    assert find_resume_checkpoint(trained / "checkpoints") == checkpoint


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_broken_newest_checkpoint_is_skipped_with_a_warning_naming_the_file(run, breakage):
    name, damage = BREAKAGES[breakage]
    broken = run / "checkpoints" / "iter_000002"
    damage(broken / name)
    with pytest.raises(CheckpointError, match=Path(name).name):
        verify_checkpoint(broken)
    with pytest.warns(CheckpointWarning, match=rf"{Path(name).name}.*run.resume_from=PATH"):
        chosen = find_resume_checkpoint(run / "checkpoints")
    assert chosen == run / "checkpoints" / "iter_000001"


def test_when_every_checkpoint_is_broken_resume_stops_naming_them_and_the_ways_out(run):
    for checkpoint in (run / "checkpoints").iterdir():
        _truncate(checkpoint / "rng.pt")
    with pytest.raises(CheckpointError) as error:
        find_resume_checkpoint(run / "checkpoints")
    message = str(error.value)
    assert "iter_000001/rng.pt" in message and "iter_000002/rng.pt" in message
    assert "run.resume_from=PATH" in message and "run.resume=false" in message


def test_resume_from_a_broken_path_is_one_cli_line_naming_the_file_exit_2(run, capsys):
    from creditgym.cli import main

    broken = run / "checkpoints" / "iter_000002"
    _truncate(broken / "model" / "model.safetensors")
    overrides = [
        *TINY,
        "env.kwargs={max_steps: 4}",
        "rollout.groups=2",
        "rollout.group_size=2",
        "eval.episodes=2",
        "train.iterations=3",
        f"run.output_dir={run}",
        f"run.resume_from={broken}",
    ]
    config_file = run.parent / "run.yaml"
    config_file.write_text("env:\n  id: creditgym/HouseholdEasy-v0\n")
    metrics = (run / "metrics.jsonl").read_text()
    assert main(["train", str(config_file), *overrides]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert "model.safetensors" in err[0] and "run.resume_from" in err[0]
    assert str(run / "checkpoints" / "iter_000001") in err[0]  # the complete one to choose
    assert (run / "metrics.jsonl").read_text() == metrics  # stopped before anything ran


def test_resume_skips_a_broken_checkpoint_and_repairs_a_torn_metrics_line(run):
    _truncate(run / "checkpoints" / "iter_000002" / "optimizer.pt")
    metrics = run / "metrics.jsonl"
    metrics.write_text(metrics.read_text() + '{"iteration": 3, "rollout/succ')  # torn by a crash
    with (
        pytest.warns(CheckpointWarning, match="optimizer.pt"),
        pytest.warns(UserWarning, match="metrics.jsonl line 5 is torn"),
    ):
        result = train(_config(run, "train.iterations=3"))
    assert result.iterations == 3
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]  # all JSON again
    iterations = [row["iteration"] for row in rows if "rollout/success" in row]
    assert iterations == [1, 2, 3]  # 2 and 3 rerun from iteration 1, each logged once
    verify_checkpoint(result.checkpoint)


def test_resume_from_a_chosen_checkpoint(run):
    chosen = run / "checkpoints" / "iter_000001"
    result = train(_config(run, "train.iterations=2", f"run.resume_from={chosen}"))
    assert result.iterations == 2
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["iteration"] for row in rows if "rollout/success" in row] == [1, 2]


class _Tokenizer:
    def save_pretrained(self, path):
        Path(path, "tokenizer.json").write_text("{}")


def _tiny_model():
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=16, n_positions=8))


def test_a_crash_mid_save_leaves_no_directory_that_looks_complete(tmp_path, monkeypatch):
    model = _tiny_model()
    optimizer = torch.optim.AdamW(model.parameters())
    kwargs = dict(model=model, tokenizer=_Tokenizer(), optimizer=optimizer, rng={"seed": 1})
    first = save_checkpoint(tmp_path, state=TrainerState(iteration=1), **kwargs)

    real_save = torch.save

    def crash_on_rng(obj, file, *args, **kw):
        if str(file).endswith("rng.pt"):
            raise KeyboardInterrupt("killed mid-save")
        return real_save(obj, file, *args, **kw)

    monkeypatch.setattr(torch, "save", crash_on_rng)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, state=TrainerState(iteration=2), **kwargs)
    monkeypatch.setattr(torch, "save", real_save)

    assert not (tmp_path / "iter_000002").exists()  # only the staging folder
    assert find_resume_checkpoint(tmp_path) == first


def test_a_checkpoint_from_before_the_manifest_is_still_verified_by_loading(tmp_path):
    model = _tiny_model()
    checkpoint = save_checkpoint(
        tmp_path,
        model=model,
        tokenizer=_Tokenizer(),
        optimizer=torch.optim.AdamW(model.parameters()),
        state=TrainerState(iteration=1),
        rng={"seed": 1},
    )
    (checkpoint / "checkpoint.json").unlink()
    with pytest.warns(CheckpointWarning, match="predates content hashes"):
        verify_checkpoint(checkpoint)
    _truncate(checkpoint / "optimizer.pt")
    with (
        pytest.warns(CheckpointWarning, match="predates"),
        pytest.raises(CheckpointError, match="optimizer.pt does not load"),
    ):
        verify_checkpoint(checkpoint)


def test_a_checkpoint_from_before_the_hashes_is_verified_by_sizes_with_a_warning(run):
    checkpoint = run / "checkpoints" / "iter_000002"
    manifest = checkpoint / "checkpoint.json"
    content = json.loads(manifest.read_text())
    content["files"] = {name: entry["size"] for name, entry in content["files"].items()}
    manifest.write_text(json.dumps(content))  # the old format: sizes only
    with pytest.warns(CheckpointWarning, match="predates content hashes"):
        assert find_resume_checkpoint(run / "checkpoints") == checkpoint
    _truncate(checkpoint / "optimizer.pt")  # sizes are still checked
    with pytest.raises(CheckpointError, match="optimizer.pt is .* bytes"):
        verify_checkpoint(checkpoint)


def test_a_fresh_manifest_holds_a_sha256_per_file(trained):
    import hashlib

    checkpoint = trained / "checkpoints" / "iter_000002"
    files = json.loads((checkpoint / "checkpoint.json").read_text())["files"]
    state = checkpoint / "trainer_state.json"
    assert files["trainer_state.json"] == {
        "size": state.stat().st_size,
        "sha256": hashlib.sha256(state.read_bytes()).hexdigest(),
    }


def _disk_fills_at(monkeypatch, iteration: int) -> None:
    """torch.save raises ENOSPC while the checkpoint of `iteration` is written."""
    import errno

    real_save = torch.save

    def save(obj, file, *args, **kwargs):
        if f"iter_{iteration:06d}" in str(file):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, file, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


def test_a_full_disk_mid_checkpoint_is_one_line_and_the_next_run_resumes(
    tmp_path, monkeypatch, capsys
):
    from creditgym.cli import main

    out = tmp_path / "run"
    config_file = tmp_path / "run.yaml"
    config_file.write_text("env:\n  id: creditgym/HouseholdEasy-v0\n")
    overrides = [
        *TINY,
        "env.kwargs={max_steps: 4}",
        "rollout.groups=2",
        "rollout.group_size=2",
        "eval.episodes=2",
        "eval.every=0",
        "run.save_every=1",
        "train.iterations=3",
        f"run.output_dir={out}",
    ]
    _disk_fills_at(monkeypatch, 2)
    assert main(["train", str(config_file), *overrides]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert "the disk is full" in err[0] and "iter_000002" in err[0]
    monkeypatch.undo()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["iter_000001"]
    result = train(_config(out, "train.iterations=3"))
    assert result.iterations == 3
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["iteration"] for row in rows if "rollout/success" in row] == [1, 2, 3]


def test_a_full_disk_on_a_metrics_write_is_one_error_naming_the_file(tmp_path, monkeypatch):
    import errno

    from creditgym.train.disk import DiskFullError
    from creditgym.train.tracking import MetricsWriter

    writer = MetricsWriter(tmp_path, tensorboard=False)
    real_open = Path.open

    class FullDisk:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    def open_(path, *args, **kwargs):
        return FullDisk() if path == writer.path else real_open(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_)
    with pytest.raises(DiskFullError, match=f"the disk is full: could not write {writer.path}"):
        writer.write({"iteration": 1}, 1)

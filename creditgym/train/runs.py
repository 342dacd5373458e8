"""A training run's directory as an agent: its latest model and the config that trained it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from creditgym.config import Config, load_config
from creditgym.train.checkpoint import latest_checkpoint

__all__ = ["TrainedModel", "trained_model"]


@dataclass(frozen=True)
class TrainedModel:
    """A model directory and the config of the `creditgym train` run that wrote it.

    Attributes:
        model: the Hugging Face model directory to load.
        config: the run's ``config.yaml``; None when the path is not inside a training run.
        source: where the config was read (for messages).
    """

    model: str
    config: Config | None = None
    source: Path | None = None


def trained_model(spec: str) -> TrainedModel:
    """Resolve an agent spec that may point into a training run (`run.output_dir`).

    - a run directory (``config.yaml`` and ``checkpoints/``): its latest complete checkpoint;
    - a checkpoint, ``RUN/checkpoints/iter_N``: its ``model/``;
    - ``RUN/checkpoints/iter_N/model`` itself.

    Each of these comes with the run's config. Any other spec (a backend name, an exported or
    downloaded model directory) is returned unchanged without one.

    Raises:
        FileNotFoundError: a run directory holds no complete checkpoint yet.
    """
    path = Path(spec).expanduser()
    if not path.is_dir():
        return TrainedModel(spec)
    if (path / "config.yaml").is_file() and (path / "checkpoints").is_dir():
        checkpoint = latest_checkpoint(path / "checkpoints")
        if checkpoint is None or not (checkpoint / "model").is_dir():
            raise FileNotFoundError(
                f"{path} is a training run without a complete checkpoint; train it first or "
                "give a checkpoint's model directory (RUN/checkpoints/iter_N/model)"
            )
        run, model = path, checkpoint / "model"
    elif (path / "model").is_dir() and path.parent.name == "checkpoints":
        run, model = path.parent.parent, path / "model"
    elif path.name == "model" and path.parent.parent.name == "checkpoints":
        run, model = path.parent.parent.parent, path
    else:
        return TrainedModel(spec)
    config_file = run / "config.yaml"
    if not config_file.is_file():  # a checkpoint copied out of its run: no format to take
        return TrainedModel(str(model))
    return TrainedModel(str(model), load_config(config_file), config_file)

"""Multi-process training with torch.distributed: one process per device, launched by `torchrun`.

    torchrun --nproc-per-node 2 -m creditgym train configs/quickstart_rl.yaml

Data parallel, as DDP does it: every rank holds the whole model, rolls out its share of the
iteration's groups (whole groups, so group-relative credit is computed locally), and the
gradients of each optimizer step are summed over ranks, with the token-mean divisor taken over
the global batch, so the step equals one process's step on the whole batch. The gradients are
all-reduced explicitly once per optimizer step instead of through the `DistributedDataParallel`
wrapper, because ranks run different numbers of micro-batches (episodes differ in length)
and DDP needs the same number of backward passes on every rank.

Rank 0 alone evaluates, writes metrics and checkpoints. A checkpoint holds the full model and
optimizer state and nothing per rank, so a run resumes on any number of ranks. Without
``WORLD_SIZE`` > 1 in the environment every function here is a no-op for one process.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

__all__ = ["ALONE", "Distributed", "setup", "shard", "shutdown"]

T = TypeVar("T")


@dataclass(frozen=True)
class Distributed:
    """This process's place among the training processes (rank 0 of 1 when alone)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this process evaluates, logs and writes checkpoints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def sum(self, value: float) -> float:
        """`value` summed over all ranks."""
        if not self.enabled:
            return value
        tensor = torch.tensor([float(value)], dtype=torch.float64, device=_device())
        dist.all_reduce(tensor)
        return float(tensor.item())

    def sum_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Sum every parameter's gradient over ranks in place (a rank without one sends zeros)."""
        if not self.enabled:
            return
        for parameter in parameters:
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
            dist.all_reduce(parameter.grad)

    def gather(self, items: Sequence[T]) -> list[T]:
        """Every rank's `items`, concatenated in rank order, on every rank."""
        if not self.enabled:
            return list(items)
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, list(items))
        return [item for part in gathered for item in part]

    def broadcast_parameters(self, model: torch.nn.Module) -> None:
        """Give every rank rank 0's weights (the ranks start from one model)."""
        if not self.enabled:
            return
        with torch.no_grad():
            for tensor in list(model.parameters()) + list(model.buffers()):
                dist.broadcast(tensor.data, src=0)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Run the block on rank 0, then on the other ranks: what rank 0 builds into the cache
        (the tiny model) the others find there. It matters beyond speed: under an initialised
        process group, transformers' `save_pretrained` writes files on rank 0 only."""
        if self.enabled and not self.is_main:
            dist.barrier()
        yield
        if self.enabled and self.is_main:
            dist.barrier()


ALONE = Distributed()  # a single training process


def setup() -> Distributed:
    """Join the process group `torchrun` describes in the environment (once); alone otherwise.

    NCCL on CUDA (each rank on GPU ``LOCAL_RANK``), gloo on the CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return ALONE
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return Distributed(rank=dist.get_rank(), world_size=dist.get_world_size())


def shutdown() -> None:
    """Leave the process group before the process exits (else gloo may abort it at exit)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def shard(items: Sequence[T], distributed: Distributed) -> list[T]:
    """This rank's share of `items`: every world_size-th item from its rank on."""
    return list(items[distributed.rank :: distributed.world_size])


def _device() -> torch.device:
    return torch.device("cuda") if dist.get_backend() == "nccl" else torch.device("cpu")

"""Data-parallel training of one model under ``torchrun`` (torch.distributed, DDP).

``prn train`` needs no flag for it: under ``torchrun --nproc-per-node N`` (or several nodes with
the usual rendezvous flags) the environment holds ``RANK`` and ``WORLD_SIZE``, and the trainer's
hooks here take effect; in a single process every hook is a no-op. The rules (DESIGN section 9):

* **Sharding.** Every training sample is a pure function of ``(seed, epoch, index)``, so each
  global batch ``b`` (indices ``b*B .. b*B + B - 1``) is cut into ``N`` equal slices and rank
  ``r`` draws slice ``r``. No two ranks draw the same sample, the union is the single-process
  epoch, and the number of optimiser steps per epoch does not depend on ``N``: the LR schedule
  and the checkpoints are the same, so ``--resume`` works with any number of ranks. DDP averages
  the gradients over the ranks, i.e. over the global batch.
* **Prototypes** are fitted (K-means) once, on rank 0, and broadcast.
* **Files** (checkpoints, log, model, ``result.json``) are written by rank 0 only; on resume
  every rank reads the checkpoint, so the run folder must be on storage all nodes see.
* **Evaluation** runs on every rank over a contiguous block of whole batches of the test set;
  the metric histograms are gathered (:mod:`prn_core.metrics`, ``shards``), which gives the
  single-process metrics exactly.

NCCL is used on GPUs (each rank takes ``cuda:LOCAL_RANK``), gloo on CPUs.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

from .models import PrototypeBank
from .runinfo import write_json_atomic

__all__ = [
    "SHARDS_FILE",
    "world_size",
    "rank",
    "is_main",
    "setup",
    "barrier",
    "all_gather",
    "broadcast_prototypes",
    "sync_from_main",
    "wrap",
    "shard_loader",
    "check_epoch_shards",
    "shard_batches",
    "eval_shards",
    "ShardBatchSampler",
]

SHARDS_FILE = "shards.json"  # rank 0's record of which sample indices each rank drew per epoch
T = TypeVar("T")


def world_size() -> int:
    """Number of processes: the process group's, else ``WORLD_SIZE`` from torchrun, else 1."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank (0 outside torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """True on the process that writes files: rank 0, or the only process."""
    return rank() == 0


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def setup(device: torch.device) -> torch.device:
    """Join the process group when launched by torchrun; return this rank's device.

    NCCL with ``cuda:LOCAL_RANK`` on GPUs, gloo on CPUs. Outside torchrun nothing happens.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def barrier() -> None:
    """Wait for every rank (e.g. until rank 0's files are complete); no-op in one process."""
    if _active():
        dist.barrier()


def broadcast_prototypes(fit: Callable[[], PrototypeBank]) -> PrototypeBank:
    """``fit()`` on rank 0 only (K-means is costly and seeded), then send the bank to all ranks."""
    if not _active():
        return fit()
    box = [fit().to_state() if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return PrototypeBank.from_state(box[0])


def sync_from_main(model: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank.

    DDP keeps parameters equal, but BatchNorm running statistics are updated by each rank's own
    last batch; after this, every rank evaluates exactly the model that rank 0 saves.
    """
    if not _active():
        return
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            dist.broadcast(tensor.data, src=0)


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The module to call in training: DDP around ``model`` under torchrun, else ``model``.

    Checkpoints keep saving ``model`` itself, so their keys never carry DDP's ``module.``.
    """
    if not _active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def shard_batches(epoch_size: int, batch_size: int, rank_: int, world: int) -> list[list[int]]:
    """Rank ``rank_``'s slice of every full global batch of an epoch (see the module docstring).

    >>> shard_batches(8, 4, 0, 2), shard_batches(8, 4, 1, 2)
    ([[0, 1], [4, 5]], [[2, 3], [6, 7]])
    """
    if batch_size % world:
        raise ValueError(
            f"train.batch_size ({batch_size}) must be divisible by the number of ranks ({world}) "
            "so that every rank draws an equal slice of each batch; change --nproc-per-node or "
            "--set train.batch_size"
        )
    part = batch_size // world
    return [
        list(range(b * batch_size + rank_ * part, b * batch_size + (rank_ + 1) * part))
        for b in range(epoch_size // batch_size)
    ]


@dataclass
class ShardBatchSampler(Sampler[list[int]]):
    """Yields this rank's slice of each global batch and remembers what it handed out."""

    epoch_size: int
    batch_size: int
    rank: int
    world: int
    drawn: list[int] = field(default_factory=list)

    def __iter__(self) -> Iterator[list[int]]:
        self.drawn = []
        for batch in shard_batches(self.epoch_size, self.batch_size, self.rank, self.world):
            self.drawn += batch
            yield batch

    def __len__(self) -> int:
        return self.epoch_size // self.batch_size


def shard_loader(loader: DataLoader) -> DataLoader:
    """The same loader drawing only this rank's slices under torchrun; unchanged otherwise."""
    if not _active():
        return loader
    sampler = ShardBatchSampler(len(loader.dataset), loader.batch_size, rank(), world_size())
    return DataLoader(loader.dataset, batch_sampler=sampler, num_workers=loader.num_workers,
                      persistent_workers=False, pin_memory=loader.pin_memory)


def check_epoch_shards(loader: DataLoader, out_dir: Path, epoch: int) -> None:
    """Gather what each rank drew this epoch; check disjoint and complete; record on rank 0.

    Rank 0 writes ``shards.json`` (per epoch: the indices of each rank), so the sharding of a
    distributed run can be audited afterwards. A violation is a bug, raised as RuntimeError.
    """
    sampler = loader.batch_sampler
    if not _active() or not isinstance(sampler, ShardBatchSampler):
        return
    drawn = [None] * world_size()
    dist.all_gather_object(drawn, sampler.drawn)
    flat = [i for part in drawn for i in part]
    expected = (sampler.epoch_size // sampler.batch_size) * sampler.batch_size
    if len(set(flat)) != len(flat) or sorted(flat) != list(range(expected)):
        raise RuntimeError(f"epoch {epoch}: ranks drew overlapping or missing samples")
    if is_main():
        path = Path(out_dir) / SHARDS_FILE
        record = {"world_size": world_size(), "epochs": {}}
        if epoch > 1 and path.exists():
            record["epochs"] = json.loads(path.read_text())["epochs"]
        record["epochs"][str(epoch)] = drawn
        write_json_atomic(path, record)


@dataclass
class _ProcessGroupShards:
    """:class:`prn_core.metrics.Shards` over the default process group."""

    rank: int

    def all_gather(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out


def all_gather(obj: Any) -> list[Any]:
    """``obj`` from every rank, in rank order (``[obj]`` outside torchrun)."""
    if not _active():
        return [obj]
    return _ProcessGroupShards(rank()).all_gather(obj)


def eval_shards(
    items: Sequence[T], batch_size: int, chunk: int
) -> tuple[Sequence[T], _ProcessGroupShards | None]:
    """This rank's contiguous block of ``items``, and the shards to gather metrics over.

    Evaluation predicts in chunks of ``chunk`` images, each in batches of ``batch_size``. Blocks
    are cut at batch boundaries when the chunks are whole batches, else at chunk boundaries, so
    every image lands in the same batch as in one process and each rank computes bit-identical
    maps and scores. Outside torchrun it returns ``(items, None)``.

    >>> eval_shards(list(range(5)), 2, 4)
    ([0, 1, 2, 3, 4], None)
    """
    if not _active():
        return items, None
    unit = batch_size if chunk % batch_size == 0 else chunk
    per_rank = -(-(-(-len(items) // unit)) // world_size())  # units per rank, rounded up
    start = min(len(items), rank() * per_rank * unit)
    stop = min(len(items), (rank() + 1) * per_rank * unit)
    return items[start:stop], _ProcessGroupShards(rank())

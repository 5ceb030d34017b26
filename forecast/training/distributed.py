"""Multi-process training: which process this is, and the process group ``torchrun`` asks for.

``torchrun --nproc_per_node G forecast ...`` (or ``python -m torch.distributed.run``) starts one process per
GPU and sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``. Each process then
joins one process group: NCCL on GPUs, gloo on CPUs. Without those variables training runs in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from forecast.device import select_device
from forecast.errors import ForecastError


@dataclass(frozen=True)
class ProcessInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup(device_name: str = "auto") -> tuple[ProcessInfo, torch.device]:
    """Join the process group if launched by ``torchrun``; return this process's rank info and device."""
    if dist.is_available() and dist.is_initialized():
        info = ProcessInfo(
            dist.get_rank(), int(os.environ.get("LOCAL_RANK", dist.get_rank())), dist.get_world_size()
        )
    elif _env_world_size() > 1:
        info = ProcessInfo(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0)), _env_world_size())
    else:
        return ProcessInfo(), select_device(device_name)

    device = select_device(device_name)
    if device.type == "cuda":
        if torch.cuda.device_count() < info.local_rank + 1:
            raise ForecastError(
                f"process {info.rank} has LOCAL_RANK {info.local_rank} but this node has "
                f"{torch.cuda.device_count()} GPU(s)"
            )
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    elif device.type == "mps":
        raise ForecastError("multi-process training is not supported on MPS; use cuda or cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", init_method="env://")
    return info, device


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: ProcessInfo) -> None:
    if info.distributed:
        dist.barrier()


def broadcast_object(obj, info: ProcessInfo):
    """Rank 0's ``obj`` on every rank."""
    if not info.distributed:
        return obj
    box = [obj if info.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj, info: ProcessInfo) -> list:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not info.distributed:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def mean_over_ranks(values: torch.Tensor, info: ProcessInfo) -> torch.Tensor:
    """The mean of ``values`` over every process (``values`` itself in a one-process run)."""
    if not info.distributed:
        return values
    total = values.detach().to(torch.float64).clone()
    dist.all_reduce(total)
    return total / info.world_size

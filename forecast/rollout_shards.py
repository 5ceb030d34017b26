"""Rollouts across processes: torchrun's ranks split the inits, each writes a shard, rank 0 joins them.

A forecast of many inits and members is embarrassingly parallel. Under
``torchrun --nproc_per_node G [--nnodes ...] -m forecast rollout ...`` rank ``r`` of ``W`` takes inits
``r, r + W, r + 2W, ...`` (round robin: neighbouring inits cost the same, so the shards stay balanced) and writes
them through the ordinary forecast-file writer into its own shard ``.FC.nc.shard-r-of-W`` beside the final path:
a forecast file of the full layout with only its own inits filled, partial (and resumable) while it runs. Rank 0,
after its own shard, waits until every shard is complete, copies each init from its owner's shard into the final
file, renames that into place and deletes the shards.

Each init draws its noise from its own generators (``forecast.rollout.chunk_generator``), so the joined file
holds the same numbers as a single-process run with the same seed on the same device type and software.

No ``torch.distributed`` process group is used: rank 0 waits on the file system (all ranks must see the output
directory), so a long or uneven shard cannot hit a collective's timeout, and the join works the same after a
resume. If a rank dies, torchrun stops the others; rerunning with ``--resume`` continues every shard where it
stopped and redoes the join.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from forecast.errors import ForecastError
from forecast.forecast_file import join_round_robin

#: global attribute of a finished shard: the settings fingerprint it was written with (removed by the join)
SHARD_SETTINGS_ATTR = "rollout_shard_settings"


@dataclass(frozen=True)
class Shard:
    """Rank ``rank`` of ``world`` processes; ``local_rank`` is its rank on its node (its GPU)."""

    rank: int
    world: int
    local_rank: int = 0

    def owns(self, index: int) -> bool:
        return index % self.world == self.rank


def shard_from_env(env: dict[str, str] | None = None) -> Shard | None:
    """The shard of this process from torchrun's ``RANK``/``WORLD_SIZE``; None for a single process."""
    env = os.environ if env is None else env
    names = ("WORLD_SIZE", "RANK", "LOCAL_RANK")
    try:
        world, rank, local = (int(env.get(name, default)) for name, default in zip(names, ("1", "0", "0")))
    except ValueError:
        values = ", ".join(f"{n}={env.get(n)!r}" for n in names)
        raise ForecastError(f"torchrun's {values} must be integers") from None
    if world < 1 or not 0 <= rank < world:
        raise ForecastError(f"RANK={rank} is outside 0..WORLD_SIZE-1 (WORLD_SIZE={world})")
    return Shard(rank, world, local) if world > 1 else None


def shard_device(device: torch.device, shard: Shard) -> torch.device:
    """The device of ``shard``'s process: for an unnumbered CUDA device, one GPU per process on a node while GPUs
    last (``cuda:LOCAL_RANK``); more processes than GPUs share them round robin."""
    if device.type != "cuda" or device.index is not None:
        return device
    return torch.device("cuda", shard.local_rank % max(torch.cuda.device_count(), 1))


def shard_path(out_path: str | os.PathLike, shard: Shard) -> Path:
    """Where ``shard`` of the forecast ``out_path`` is written (hidden, beside it)."""
    out_path = Path(out_path)
    return out_path.with_name(f".{out_path.name}.shard-{shard.rank}-of-{shard.world}")


def unsealed_path(path: Path) -> Path:
    """Where a shard's writer commits it before ``seal_shard`` moves it to ``path``."""
    return path.with_name(f"{path.name}.unsealed")


def seal_shard(path: Path, fingerprint: str) -> None:
    """Mark the finished shard at ``unsealed_path(path)`` with its settings and move it to ``path`` (atomically:
    a waiting rank 0 never opens a shard that is still being written)."""
    import netCDF4

    unsealed = unsealed_path(path)
    with netCDF4.Dataset(unsealed, "a") as nc:
        nc.setncattr(SHARD_SETTINGS_ATTR, fingerprint)
    os.replace(unsealed, path)


def shard_is_done(path: Path, fingerprint: str, strict: bool = True) -> bool:
    """Whether a finished shard exists at ``path`` with these settings. One of other settings is an error if
    ``strict``, else not done (a stale shard of an earlier rollout, which its rank is about to replace)."""
    if not path.exists():
        return False
    import netCDF4

    with netCDF4.Dataset(path, "r") as nc:
        sealed = nc.getncattr(SHARD_SETTINGS_ATTR) if SHARD_SETTINGS_ATTR in nc.ncattrs() else None
    if sealed != fingerprint and not strict:
        return False
    if sealed != fingerprint:
        raise ForecastError(
            f"{path} is a shard of a rollout with other settings; delete it or rerun with the same options"
        )
    return True


def wait_for_shards(paths: list[Path], fingerprint: str, poll_s: float = 1.0) -> None:
    """Block until every shard in ``paths`` is finished (torchrun stops this rank if another one dies)."""
    while not all(shard_is_done(p, fingerprint, strict=False) for p in paths):
        time.sleep(poll_s)


def join_shards(out_path: str | os.PathLike, world: int, partial: Path) -> Path:
    """Join the ``world`` shards of ``out_path`` into it (``forecast_file.join_round_robin``), delete them."""
    from forecast.claims import claim_output
    from forecast.io_errors import writing

    out_path = Path(out_path)
    shards = [shard_path(out_path, Shard(r, world)) for r in range(world)]
    note = "; the shards are kept: rerun with --resume to join them again"
    with claim_output(out_path), writing(out_path, note):
        join_round_robin(shards, out_path, partial, drop_attrs=(SHARD_SETTINGS_ATTR,))
    for shard in shards:
        shard.unlink()
    return out_path

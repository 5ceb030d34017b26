"""Training (algorithm 1 of the paper) with teacher forcing, EMA, checkpoints and exact resume.

Each step draws a batch of windows of ``context_frames + future_frames`` consecutive frames, and the model's
``loss(window, n_context)`` scores every future frame given the true earlier ones (teacher forcing); for RVD
that is the sum over frames of the noise-prediction error of algorithm 1, with the transform (``mu``) and the
denoiser trained end to end through one backward pass. Adam with a decaying learning rate, gradient clipping,
an EMA of the weights (used for sampling), bf16 autocast on GPUs, and DistributedDataParallel when launched by
``torchrun``.

Exact resume: a checkpoint holds everything that decides what happens next (weights, EMA, optimizer moments,
step, every process's RNG state, the data-sampler position), so a run interrupted and resumed computes the same
weights as one that never stopped (on the same hardware and world size).
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from forecast.atomic import atomic_output
from forecast.data.channels import ChannelLayout
from forecast.data.windows import WindowDataset, WindowSampler, open_lazy
from forecast.device import autocast_dtype
from forecast.errors import ForecastError
from forecast.field_store import open_field_store
from forecast.models.base import SequenceModel
from forecast.training import distributed
from forecast.training.checkpoint import (
    CHECKPOINT_FORMAT,
    CONFIG_FILE,
    METRICS_FILE,
    NORMALIZATION_FILE,
    checkpoint_path,
    default_model_factory,
    load_model_weights,
    read_checkpoint,
    read_run_config,
    save_checkpoint,
)
from forecast.training.config import config_mismatch, dump_config, resolve_config, window_length
from forecast.training.ema import EMA

ModelFactory = Callable[[dict, int], SequenceModel]
METRIC_COLUMNS = ("step", "loss", "lr", "grad_norm", "samples_per_s", "elapsed_s")


def learning_rate(step: int, training: dict) -> float:
    """The learning rate for optimizer step ``step`` (0-based): warm-up, then decay from lr to lr_final."""
    lr, lr_final = training["lr"], training["lr_final"]
    warmup = training["warmup_steps"]
    if step < warmup:
        return lr * (step + 1) / warmup
    fraction = min(1.0, (step - warmup) / max(1, training["lr_decay_steps"] - warmup))
    if training["lr_schedule"] == "constant":
        return lr
    if training["lr_schedule"] == "cosine":
        return lr_final + (lr - lr_final) * 0.5 * (1.0 + math.cos(math.pi * fraction))
    return lr + (lr_final - lr) * fraction


class _LossModule(nn.Module):
    """Routes ``forward`` to ``model.loss``, so DistributedDataParallel's gradient hooks see the loss pass."""

    def __init__(self, model: SequenceModel):
        super().__init__()
        self.model = model

    def forward(self, window: torch.Tensor, n_context: int) -> torch.Tensor:
        return self.model.loss(window, n_context)


def _is_empty_dir(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


class Trainer:
    """One training run over a field store, writing into ``run_dir``.

    Construction checks everything (config, store, model, run directory, checkpoint) and builds the model
    and data pipeline without writing anything; ``fit`` trains. The model comes from ``model_factory(config,
    n_channels)`` (default: ``forecast.models.build_model``), so any ``SequenceModel`` can be trained.
    """

    def __init__(
        self,
        config: dict,
        store: str | os.PathLike,
        run_dir: str | os.PathLike,
        model_factory: ModelFactory | None = None,
        resume: bool = False,
        steps: int | None = None,
        device: str | None = None,
        progress: bool = True,
        log: Callable[[str], None] = print,
    ):
        self.store = Path(store)
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.log = log
        self.checkpoint_file = checkpoint_path(self.run_dir)
        config = resolve_config(config, steps=steps, device=device)

        # ---- the run directory: a new run needs an empty one; a resumed run continues under its saved config
        self.resumed_payload: dict | None = None
        self.new_run = True
        if resume and (self.run_dir / CONFIG_FILE).is_file():
            saved = read_run_config(self.run_dir)
            why = config_mismatch(saved, config)
            if why:
                raise ForecastError(
                    f"cannot resume {self.run_dir} with this config: {why} from {CONFIG_FILE}"
                )
            # the saved config rules; only --steps and --device may change on resume
            config = resolve_config(saved, steps=steps, device=device)
            self.new_run = False
            if self.checkpoint_file.exists():
                self.resumed_payload = read_checkpoint(self.checkpoint_file)
                why = config_mismatch(resolve_config(self.resumed_payload["config"]), config)
                if why:
                    raise ForecastError(
                        f"checkpoint {self.checkpoint_file} does not match its run's config: {why}"
                    )
        elif resume:
            log(f"note: {self.run_dir} holds no run to resume; starting a new run")
            if not _is_empty_dir(self.run_dir) and (self.run_dir / METRICS_FILE).exists():
                raise ForecastError(f"{self.run_dir} looks like a damaged run directory (no {CONFIG_FILE})")
        elif not _is_empty_dir(self.run_dir):
            raise ForecastError(
                f"run directory {self.run_dir} exists and is not empty; use --resume to continue it or choose "
                "another --out"
            )
        self.config = config
        self.training = config["training"]
        self.n_context = config["data"]["context_frames"]

        self.process, self.device = distributed.setup(self.training["device"])
        if not self.process.is_main:
            self.log = lambda message: None  # one voice per run, not one per process
        self.autocast = self._autocast_dtype()

        # ---- data: statistics from the train group (rank 0 computes, the others receive them)
        train = open_lazy(self.store, "train")
        if self.new_run:
            layout = None
            if self.process.is_main:
                # dask-backed: the statistics stream over the whole train group chunk by chunk
                layout = ChannelLayout.from_dataset(
                    open_field_store(self.store, "train"), self.config["data"]["variables"]
                )
            self.layout = distributed.broadcast_object(layout, self.process)
        else:
            self.layout = ChannelLayout.from_json(self.run_dir / NORMALIZATION_FILE)
            if tuple(self.layout.variables) != tuple(self.config["data"]["variables"]):
                raise ForecastError(
                    f"{self.run_dir / NORMALIZATION_FILE} does not match data.variables of the run"
                )
        self.layout.check_compatible(train, f"{self.store}[train]")
        expected = self.config["data"]["channels"]
        if expected is not None and expected != self.layout.n_channels:
            raise ForecastError(
                f"config expects {expected} channels (data.channels) but variables {list(self.layout.variables)} "
                f"of {self.store} give {self.layout.n_channels}"
            )
        self.dataset = WindowDataset(self.store, self.layout, window_length(self.config))

        # ---- model: identical initial weights on every rank (same seed), then a per-rank noise stream
        torch.manual_seed(self.training["seed"])
        factory = model_factory or default_model_factory
        self.model = factory(self.config, self.layout.n_channels)
        multiple = int(getattr(self.model, "spatial_multiple", 1))
        if self.layout.height % multiple or self.layout.width % multiple:
            raise ForecastError(
                f"frames of {self.layout.height}x{self.layout.width} do not fit the model: its U-Net depth needs "
                f"height and width divisible by {multiple} (change the model depth or resample the data)"
            )
        self.model.to(self.device)
        self.n_parameters = sum(p.numel() for p in self.model.parameters())
        self.optimizer = torch.optim.Adam(
            [{"params": list(self.model.parameters())}],  # a group may be empty: parameter-free baselines
            lr=self.training["lr"],
            betas=tuple(self.training["adam_betas"]),
            weight_decay=self.training["weight_decay"],
        )
        self.ema = EMA(self.model, self.training["ema_decay"], self.training["ema_warmup"])
        self.step = 0
        self.position = 0  # batches this process has consumed
        torch.manual_seed(self.training["seed"] + 1 + self.process.rank)
        if self.resumed_payload is not None:
            self._restore(self.resumed_payload)

    # ------------------------------------------------------------------ setup helpers
    def _autocast_dtype(self) -> torch.dtype | None:
        precision = self.training["precision"]
        if precision == "fp32":
            return None
        if precision == "bf16":
            return torch.bfloat16
        return autocast_dtype(self.device)

    def _restore(self, payload: dict) -> None:
        source = f"checkpoint {self.checkpoint_file}"
        load_model_weights(self.model, payload["model"], source)
        # rebuilt after loading: fitted buffers (baselines' statistics) may have taken the checkpoint's shape
        self.ema = EMA(self.model, self.training["ema_decay"], self.training["ema_warmup"])
        try:
            self.ema.load_state_dict(payload["ema"])
            self.optimizer.load_state_dict(payload["optimizer"])
        except (KeyError, ValueError, RuntimeError) as exc:
            raise ForecastError(f"{source} does not match the model ({type(exc).__name__}: {exc})") from None
        self.step = int(payload["step"])
        data = payload["data"]
        if data["world_size"] != self.process.world_size or data["n_windows"] != len(self.dataset):
            # the window stream depends on both: continue from the same epoch position as closely as possible
            self.log(
                f"note: the run was saved with {data['world_size']} process(es) over {data['n_windows']} windows; "
                f"now {self.process.world_size} over {len(self.dataset)}: the data order is not exactly resumed"
            )
            self.position = data["position"] * data["world_size"] // self.process.world_size
        else:
            self.position = int(data["position"])
        rng = payload["rng"]
        if len(rng["torch"]) == self.process.world_size:
            torch.set_rng_state(rng["torch"][self.process.rank])
            if self.device.type == "cuda" and rng.get("cuda"):
                torch.cuda.set_rng_state(rng["cuda"][self.process.rank], self.device)
        else:
            torch.manual_seed(self.training["seed"] + 1 + self.process.rank + self.step)

    def sampler(self) -> WindowSampler:
        return WindowSampler(
            len(self.dataset),
            self.training["batch_size"],
            seed=self.training["seed"],
            rank=self.process.rank,
            world_size=self.process.world_size,
            position=self.position,
        )

    def data_workers(self) -> int:
        """DataLoader workers: as configured, or for ``auto`` none on CPUs (the measured loader outpaces the
        step there, and workers would compete with it for cores) and up to 4 per process on GPUs."""
        workers = self.training["num_workers"]
        if workers != "auto":
            return workers
        if self.device.type == "cpu":
            return 0
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        return max(1, min(4, (os.cpu_count() or 1) // local_processes - 1))

    def loader(self) -> DataLoader:
        workers = self.data_workers()
        return DataLoader(
            self.dataset,
            batch_sampler=self.sampler(),
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=self.training["prefetch_factor"] if workers > 0 else None,
            # its own generator, so creating a loader never draws from the global RNG (exact resume)
            generator=torch.Generator().manual_seed(self.training["seed"]),
        )

    # ------------------------------------------------------------------ outputs
    def _write_run_files(self) -> None:
        if not self.process.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.new_run or not (self.run_dir / NORMALIZATION_FILE).exists():
            with atomic_output(self.run_dir / NORMALIZATION_FILE) as tmp:
                self.layout.to_json(tmp)
        with atomic_output(self.run_dir / CONFIG_FILE) as tmp:
            dump_config(self.config, tmp)
        self._trim_metrics()

    def _trim_metrics(self) -> None:
        """Keep the rows up to the resumed step: later ones came from steps that are now recomputed."""
        path = self.run_dir / METRICS_FILE
        if not path.exists():
            with open(path, "w", newline="") as f:
                csv.writer(f).writerow(METRIC_COLUMNS)
            return
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= self.step]
        with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
            csv.writer(f).writerows(kept)

    def _append_metrics(self, row: dict) -> None:
        if not self.process.is_main:
            return
        with open(self.run_dir / METRICS_FILE, "a", newline="") as f:
            csv.writer(f).writerow([row[c] for c in METRIC_COLUMNS])

    def checkpoint(self) -> None:
        """Write ``checkpoints/last.pt`` atomically (a collective call in distributed runs)."""
        rng_torch = distributed.gather_objects(torch.get_rng_state(), self.process)
        rng_cuda = (
            distributed.gather_objects(torch.cuda.get_rng_state(self.device), self.process)
            if self.device.type == "cuda"
            else []
        )
        if self.process.is_main:
            payload = {
                "format": CHECKPOINT_FORMAT,
                "step": self.step,
                "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "ema": {k: v.detach().cpu() for k, v in self.ema.state_dict().items()},
                "optimizer": self.optimizer.state_dict(),
                "rng": {"torch": rng_torch, "cuda": rng_cuda},
                "data": {**self.sampler().state_dict(), "position": self.position},
                "config": self.config,
                "n_parameters": self.n_parameters,
            }
            save_checkpoint(self.checkpoint_file, payload)
        distributed.barrier(self.process)

    # ------------------------------------------------------------------ the loop
    def check_batch(self) -> torch.Tensor:
        """Read one batch through the data pipeline (what ``--dry-run`` does instead of training)."""
        batch = next(iter(self.loader()))
        expected = (
            self.training["batch_size"],
            window_length(self.config),
            self.layout.n_channels,
            self.layout.height,
            self.layout.width,
        )
        if tuple(batch.shape) != expected:
            raise ForecastError(
                f"data pipeline gave a batch of shape {tuple(batch.shape)}, expected {expected}"
            )
        return batch

    def fit(self, max_steps: int | None = None) -> int:
        """Train until ``training.steps`` (or, to simulate an interruption, until ``max_steps``); return the step."""
        target = self.training["steps"] if max_steps is None else min(max_steps, self.training["steps"])
        if self.resumed_payload is not None:
            self.log(f"resumed from step {self.step}")
        self._write_run_files()
        distributed.barrier(self.process)
        if self.step == 0 and hasattr(self.model, "fit_statistics"):
            self.fit_statistics()
        if self.step >= target:
            return self.step

        module: nn.Module = _LossModule(self.model)
        if self.process.distributed:
            module = nn.parallel.DistributedDataParallel(
                module,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=self.training["ddp_find_unused_parameters"],
            )
        module.train()
        batches = iter(self.loader())
        clip = self.training["grad_clip"]
        log_every, checkpoint_every = self.training["log_every"], self.training["checkpoint_every"]
        bar = tqdm(
            total=target,
            initial=self.step,
            desc="training",
            unit="step",
            disable=not (self.progress and self.process.is_main),
            dynamic_ncols=True,
        )
        loss_sum, loss_count, grad_norm = 0.0, 0, float("nan")
        interval_start, run_start = time.perf_counter(), time.perf_counter()
        interval_steps = 0
        last_saved = self.step
        try:
            while self.step < target:
                window = next(batches).to(self.device, non_blocking=True)
                self.position += 1
                lr = learning_rate(self.step, self.training)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                with torch.autocast(self.device.type, dtype=self.autocast, enabled=self.autocast is not None):
                    loss = module(window, self.n_context)
                if not torch.isfinite(loss):
                    raise ForecastError(
                        f"loss became {loss.item()} at step {self.step}; lower training.lr or check the data "
                        f"(the last checkpoint, step {last_saved}, is intact)"
                    )
                self.optimizer.zero_grad(set_to_none=True)
                if loss.requires_grad:  # a parameter-free baseline's loss is only an evaluation
                    loss.backward()
                if clip and loss.requires_grad:
                    grad_norm = float(nn.utils.clip_grad_norm_(self.model.parameters(), clip))
                self.optimizer.step()
                self.ema.update(self.model, self.step)
                self.step += 1
                interval_steps += 1
                loss_sum += float(loss.detach())
                loss_count += 1
                bar.update(1)

                if self.step % log_every == 0 or self.step == target:
                    now = time.perf_counter()
                    mean_loss = distributed.mean_over_ranks(loss_sum / loss_count, self.process, self.device)
                    samples = interval_steps * self.training["batch_size"] * self.process.world_size
                    self._append_metrics(
                        {
                            "step": self.step,
                            "loss": f"{mean_loss:.6g}",
                            "lr": f"{lr:.6g}",
                            "grad_norm": f"{grad_norm:.6g}",
                            "samples_per_s": f"{samples / max(now - interval_start, 1e-9):.4g}",
                            "elapsed_s": f"{now - run_start:.1f}",
                        }
                    )
                    bar.set_postfix(loss=f"{mean_loss:.4g}", lr=f"{lr:.2e}")
                    loss_sum, loss_count, interval_steps, interval_start = 0.0, 0, 0, now
                if self.step % checkpoint_every == 0 or self.step == target:
                    self.checkpoint()
                    last_saved = self.step
        finally:
            bar.close()
        return self.step

    @torch.no_grad()
    def fit_statistics(self) -> None:
        """Let a model that learns from data statistics (``fit_statistics``) measure the train group.

        The model asks for windows of ``statistics_frames`` frames, at most ``statistics_windows`` of them; they
        are spread evenly over the train group and passed in batches. Fitted buffers are checkpointed with the
        weights (the EMA copy restarts from them).
        """
        frames = int(getattr(self.model, "statistics_frames", window_length(self.config)))
        dataset = WindowDataset(self.store, self.layout, frames)
        count = min(len(dataset), int(getattr(self.model, "statistics_windows", 256)))
        indices = torch.linspace(0, len(dataset) - 1, count).round().long().unique().tolist()
        size = self.training["batch_size"]
        batches = (
            torch.stack([dataset[i] for i in indices[j : j + size]]).to(self.device)
            for j in range(0, len(indices), size)
        )
        if self.progress and self.process.is_main:
            batches = tqdm(batches, total=-(-len(indices) // size), desc="statistics", unit="batch")
        self.model.fit_statistics(batches)
        self.ema = EMA(self.model, self.training["ema_decay"], self.training["ema_warmup"])

    def close(self) -> None:
        distributed.teardown()

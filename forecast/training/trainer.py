"""Training (algorithm 1 of the paper) with teacher forcing, EMA, checkpoints, a time budget and exact resume.

Each step draws a batch of windows of ``context_frames + future_frames`` consecutive frames, and the model's
``loss(window, n_context)`` scores every future frame given the true earlier ones (teacher forcing); for RVD
that is the sum over frames of the noise-prediction error of algorithm 1, with the transform (``mu``) and the
denoiser trained end to end through one backward pass. Adam with a decaying learning rate, gradient clipping,
an EMA of the weights (used for sampling), bf16 autocast on GPUs, and DistributedDataParallel when launched by
``torchrun``.

The shape is improved-diffusion's ``TrainLoop``: ``run_loop`` (until ``training.steps`` or the time budget),
``run_step`` (learning rate, the mode's step, EMA), ``log`` (one ``metrics.csv`` row) and ``save`` (the
checkpoint). What one step does is the training mode's (``forecast.training.modes``); the run-directory rules
are ``forecast.training.run_dir``'s.

Speed: a step never waits for the device. Metrics stay on the device and are read once per log interval, which
is also where a non-finite loss is caught (and before every checkpoint, so a checkpoint never holds weights
trained on a NaN). Batches come from pinned memory and are copied to the GPU on a side stream one step ahead.

Exact resume: a checkpoint holds everything that decides what happens next (weights, EMA, optimizer moments,
step, every process's RNG state, the data-sampler position), so a run interrupted and resumed computes the same
weights as one that never stopped (on the same hardware and world size).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from forecast.claims import claim_output
from forecast.data.channels import ChannelLayout
from forecast.data.windows import WindowDataset, WindowSampler, open_lazy
from forecast.device import training_autocast_dtype
from forecast.errors import ForecastError
from forecast.field_store import open_field_store
from forecast.io_errors import writing
from forecast.models.base import SequenceModel
from forecast.training import distributed
from forecast.training.config import (
    TrainingConfig,
    override_config,
    parse_data_config,
    parse_training_config,
    resolve_config,
)
from forecast.training.ema import EMA
from forecast.training.mode_registry import MODES
from forecast.training.run_dir import (
    METRIC_COLUMNS,
    NORMALIZATION_FILE,
    MetricsLog,
    checkpoint_path,
    default_model_factory,
    load_model_weights,
    open_run,
    save_checkpoint,
    write_run_files,
)

ModelFactory = Callable[[dict, int], SequenceModel]


def learning_rate(step: int, training: TrainingConfig) -> float:
    """The learning rate for optimizer step ``step`` (0-based): warm-up, then decay from lr to lr_final."""
    lr, lr_final, warmup = training.lr, training.lr_final, training.warmup_steps
    if step < warmup:
        return lr * (step + 1) / warmup
    fraction = min(1.0, (step - warmup) / max(1, training.lr_decay_steps - warmup))
    if training.lr_schedule == "constant":
        return lr
    if training.lr_schedule == "cosine":
        return lr_final + (lr - lr_final) * 0.5 * (1.0 + math.cos(math.pi * fraction))
    return lr + (lr_final - lr) * fraction


def device_batches(loader: DataLoader, device: torch.device) -> Iterator[torch.Tensor]:
    """The loader's batches on ``device``; on a GPU the next batch is copied (from pinned memory, on a side
    stream) while the current step computes."""
    batches = iter(loader)
    if device.type != "cuda":
        for batch in batches:
            yield batch.to(device, non_blocking=True)
        return
    stream = torch.cuda.Stream(device)

    def start_copy() -> torch.Tensor:
        batch = next(batches)
        with torch.cuda.stream(stream):
            return batch.to(device, non_blocking=True)

    upcoming = start_copy()
    while True:
        torch.cuda.current_stream(device).wait_stream(stream)
        batch = upcoming
        batch.record_stream(torch.cuda.current_stream(device))  # its memory is used on the compute stream
        upcoming = start_copy()
        yield batch


def with_store_variables(config: dict, store: str | os.PathLike) -> dict:
    """``config`` with ``data.variables`` filled from the store's ``data.group`` (all its variables, sorted by
    name) where the config leaves them out or null; a one-line error where it names variables the store lacks."""
    data = parse_data_config(resolve_config(config))  # the config's own errors first
    have = sorted(str(v) for v in open_field_store(store, data.group).data_vars)  # zarr keeps no order
    if data.variables is None:
        return override_config(config, {"data.variables": have})
    missing = [v for v in data.variables if v not in have]
    if missing:
        raise ForecastError(
            f"config: data.variables {missing} are not in the store {store} (its {data.group} group has {have}); "
            f"choose them with --set data.variables=[{','.join(have)}], or --set data.variables=null for all of them"
        )
    return config


class Trainer:
    """One training run over a field store, writing into ``run_dir``.

    Construction checks everything (config, store, model, run directory, checkpoint) and builds the model
    and data pipeline without writing anything; ``run_loop`` trains and returns the final metrics. The model
    comes from ``model_factory(config, n_channels)`` (default: ``forecast.models.build_model``), so any
    ``SequenceModel`` can be trained. ``steps``, ``device`` and ``time_budget_s`` override the config's keys
    (and may change when a run is resumed).
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
        time_budget_s: float | None = None,
        progress: bool = True,
        log: Callable[[str], None] = print,
    ):
        self.store, self.run_dir = Path(store), Path(run_dir)
        self.progress = progress
        config = with_store_variables(config, self.store)
        # the run directory is claimed until close() by the process that writes it (rank 0 under torchrun)
        self._claim = contextlib.ExitStack()
        if os.environ.get("RANK", "0") == "0":
            self._claim.enter_context(claim_output(self.run_dir))
        try:
            self._setup(config, resume, log, model_factory, steps, device, time_budget_s)
        except BaseException:
            self._claim.close()
            raise

    def _setup(self, config, resume, log, model_factory, steps, device, time_budget_s) -> None:
        self.start = open_run(
            self.run_dir, config, resume, log, steps=steps, device=device, time_budget_s=time_budget_s
        )
        self.config = self.start.config
        self.data = parse_data_config(self.config)
        self.training = parse_training_config(self.config)
        self.n_context = self.data.context_frames
        self.process, self.device = distributed.setup(self.training.device)
        self.say = log if self.process.is_main else (lambda message: None)  # one voice per run
        self.autocast_dtype = self._autocast_dtype()

        self.layout, self.dataset = self._open_data()
        self.model = self._build_model(model_factory or default_model_factory)
        self.n_parameters = sum(p.numel() for p in self.model.parameters())
        self.module: nn.Module | None = (
            None  # what a step calls: the model, wrapped for DDP/compile (run_loop)
        )
        self.mode = MODES[self.training.mode](self)
        self.ema = EMA(self.model, self.training.ema_decay, self.training.ema_warmup)
        self.metrics_log = MetricsLog(self.run_dir / "metrics.csv", METRIC_COLUMNS + self.mode.extra_metrics)
        self.step = 0
        self.position = 0  # batches this process has consumed
        self.elapsed_s = 0.0  # seconds spent in run_loop, over every resume (what the time budget counts)
        self.last_metrics: dict[str, float] = {}
        self._interval = _Interval(0)  # metrics since the last log
        self._lr = learning_rate(0, self.training)
        self._saved_step: int | None = None
        torch.manual_seed(self.training.seed + 1 + self.process.rank)
        if self.start.checkpoint is not None:
            self._restore(self.start.checkpoint)
            self._saved_step = self.step

    # ------------------------------------------------------------------ setup
    @property
    def checkpoint_file(self) -> Path:
        return checkpoint_path(self.run_dir)

    def _autocast_dtype(self) -> torch.dtype | None:
        return training_autocast_dtype(self.training.precision, self.device)

    def autocast(self) -> contextlib.AbstractContextManager:
        """The precision context of a training forward pass (bf16 autocast, or nothing)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _open_data(self) -> tuple[ChannelLayout, WindowDataset]:
        """The channel layout (train-group statistics: rank 0 computes, the others receive) and the windows."""
        group = self.data.group
        train = open_lazy(self.store, group)
        variables = list(self.data.variables)
        if self.start.new_run:
            layout = None
            if self.process.is_main:  # dask-backed: the statistics stream over the group chunk by chunk
                layout = ChannelLayout.from_dataset(open_field_store(self.store, group), variables)
            layout = distributed.broadcast_object(layout, self.process)
        else:
            layout = ChannelLayout.from_json(self.run_dir / NORMALIZATION_FILE)
            if list(layout.variables) != variables:
                raise ForecastError(
                    f"{self.run_dir / NORMALIZATION_FILE} does not match data.variables of the run"
                )
        layout.check_compatible(train, f"{self.store}[{group}]")
        expected = self.data.channels
        if expected is not None and expected != layout.n_channels:
            raise ForecastError(
                f"config expects {expected} channels (data.channels) but variables {list(layout.variables)} "
                f"of {self.store} give {layout.n_channels}"
            )
        return layout, WindowDataset(self.store, layout, self.data.window_length, group=group)

    def _build_model(self, factory: ModelFactory) -> SequenceModel:
        torch.manual_seed(self.training.seed)  # identical initial weights on every rank
        model = factory(self.config, self.layout.n_channels)
        model.check_frame_size(self.layout.height, self.layout.width)
        model.to(self.device)
        if self.training.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` as a step should call it: in DistributedDataParallel in a multi-process run."""
        if not self.process.distributed:
            return module
        return nn.parallel.DistributedDataParallel(
            module,
            device_ids=[self.device.index] if self.device.type == "cuda" else None,
            find_unused_parameters=self.training.ddp_find_unused_parameters,
        )

    def _restore(self, payload: dict) -> None:
        source = f"checkpoint {self.checkpoint_file}"
        load_model_weights(self.model, payload["model"], source)
        # rebuilt after loading: fitted buffers (baselines' statistics) may have taken the checkpoint's shape
        self.ema = EMA(self.model, self.training.ema_decay, self.training.ema_warmup)
        try:
            self.ema.load_state_dict(payload["ema"])
            if set(payload["optimizers"]) != set(self.mode.optimizers):
                raise KeyError(
                    f"optimizers {sorted(payload['optimizers'])}, expected {sorted(self.mode.optimizers)}"
                )
            for name, optimizer in self.mode.optimizers.items():
                optimizer.load_state_dict(payload["optimizers"][name])
            self.mode.load_state_dict(payload["mode"])
        except (KeyError, ValueError, RuntimeError) as exc:
            raise ForecastError(f"{source} does not match the model ({type(exc).__name__}: {exc})") from None
        self.step = int(payload["step"])
        self.elapsed_s = float(payload["elapsed_s"])
        self.last_metrics = dict(payload["metrics"])
        self.position = self._resumed_position(payload["data"])
        rng = payload["rng"]
        if len(rng["torch"]) == self.process.world_size:
            torch.set_rng_state(rng["torch"][self.process.rank])
            if self.device.type == "cuda" and rng.get("cuda"):
                torch.cuda.set_rng_state(rng["cuda"][self.process.rank], self.device)
        else:
            torch.manual_seed(self.training.seed + 1 + self.process.rank + self.step)

    def _resumed_position(self, data: dict) -> int:
        if data["world_size"] == self.process.world_size and data["n_windows"] == len(self.dataset):
            return int(data["position"])
        # the window stream depends on both: continue from the same epoch position as closely as possible
        self.say(
            f"note: the run was saved with {data['world_size']} process(es) over {data['n_windows']} windows; "
            f"now {self.process.world_size} over {len(self.dataset)}: the data order is not exactly resumed"
        )
        return data["position"] * data["world_size"] // self.process.world_size

    # ------------------------------------------------------------------ data
    def sampler(self) -> WindowSampler:
        return WindowSampler(
            len(self.dataset),
            self.training.batch_size,
            seed=self.training.seed,
            rank=self.process.rank,
            world_size=self.process.world_size,
            position=self.position,
        )

    def data_workers(self) -> int:
        """DataLoader workers: as configured, or for ``auto`` none on CPUs (the measured loader outpaces the
        step there, and workers would compete with it for cores) and up to 4 per process on GPUs."""
        workers = self.training.num_workers
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
            prefetch_factor=self.training.prefetch_factor if workers > 0 else None,
            # its own generator, so creating a loader never draws from the global RNG (exact resume)
            generator=torch.Generator().manual_seed(self.training.seed),
        )

    def check_batch(self) -> torch.Tensor:
        """Read one batch through the data pipeline (what ``--dry-run`` does instead of training)."""
        batch = next(iter(self.loader()))
        expected = (
            self.training.batch_size,
            self.data.window_length,
            self.layout.n_channels,
            self.layout.height,
            self.layout.width,
        )
        if tuple(batch.shape) != expected:
            raise ForecastError(
                f"data pipeline gave a batch of shape {tuple(batch.shape)}, expected {expected}"
            )
        return batch

    # ------------------------------------------------------------------ the loop
    def run_loop(self, max_steps: int | None = None) -> dict[str, float | int | str]:
        """Train until ``training.steps``, the time budget (``training.time_budget_s``, counted over resumes)
        or, to simulate an interruption, ``max_steps``; return the final metrics (the last logged row, plus
        ``step``, ``elapsed_s`` and ``stopped``: steps, time_budget or max_steps)."""
        # a failed write (full disk, no permission) is one line; the last checkpoint stays whole for --resume
        with writing(self.run_dir, "; the last checkpoint is intact: rerun with --resume"):
            return self._run_loop(max_steps)

    def _run_loop(self, max_steps: int | None) -> dict[str, float | int | str]:
        target = self.training.steps if max_steps is None else min(max_steps, self.training.steps)
        if self.start.checkpoint is not None:
            self.say(f"resumed from step {self.step}")
        self._prepare()
        # a new run trains at least one step, even on a spent budget, so that it has a checkpoint
        if self.step >= target or (self.step > 0 and self._budget_spent(self.elapsed_s)):
            return self._final_metrics(target)
        batches = device_batches(self.loader(), self.device)
        budget = self.training.time_budget_s
        bar = tqdm(
            total=round(budget) if budget is not None else target,
            initial=min(round(self.elapsed_s), round(budget)) if budget is not None else self.step,
            desc="training",
            unit="s" if budget is not None else "step",
            disable=not (self.progress and self.process.is_main),
            dynamic_ncols=True,
        )
        self._interval = _Interval(self.step)
        loop_start, elapsed_before = time.perf_counter(), self.elapsed_s
        try:
            while True:
                self._interval.add(self.run_step(next(batches)))
                self.elapsed_s = elapsed_before + time.perf_counter() - loop_start
                last = self.step >= target or self._budget_spent(self.elapsed_s)
                if self.step % self.training.log_every == 0 or last:
                    self.log()
                    bar.set_postfix(step=self.step, loss=f"{self.last_metrics['loss']:.4g}")
                if self.step % self.training.checkpoint_every == 0 or last:
                    self.save()
                bar.update(
                    (min(round(self.elapsed_s), round(budget)) if budget is not None else self.step) - bar.n
                )
                if last:
                    break
        finally:
            bar.close()
        return self._final_metrics(target)

    def _prepare(self) -> None:
        """Run files, data statistics (at step 0, for models that fit them) and the module a step calls."""
        if self.process.is_main:
            columns = self.metrics_log.columns
            write_run_files(self.run_dir, self.start, self.layout, self.step, columns)
        distributed.barrier(self.process)
        if self.step == 0 and hasattr(self.model, "fit_statistics"):
            self.fit_statistics()
        module = self.wrap(self.model)
        self.module = torch.compile(module) if self.training.compile else module
        self.module.train()

    def _budget_spent(self, elapsed: float) -> bool:
        return self.training.time_budget_s is not None and elapsed >= self.training.time_budget_s

    def _final_metrics(self, target: int) -> dict[str, float | int | str]:
        if self.step >= self.training.steps:
            stopped = "steps"
        elif self._budget_spent(self.elapsed_s):
            stopped = "time_budget"
        else:
            stopped = "max_steps"
        return {**self.last_metrics, "step": self.step, "elapsed_s": self.elapsed_s, "stopped": stopped}

    def run_step(self, window: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimizer step on ``window`` (already on the device): schedule, the mode's step, EMA."""
        self.position += 1
        lr = learning_rate(self.step, self.training)
        for optimizer in self.mode.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = lr
        metrics = self.mode.step(window)
        self.ema.update(self.model, self.step)
        self.step += 1
        self._lr = lr
        return metrics

    def log(self) -> None:
        """Average the interval's metrics over steps and processes (the one host synchronisation of the
        interval), check the loss is finite and append a ``metrics.csv`` row."""
        interval = self._interval
        names, means = interval.means(self.process, self.device)
        now = time.perf_counter()
        self._check_finite(means["loss"], interval.first_step)
        samples = (self.step - interval.first_step) * self.training.batch_size * self.process.world_size
        self.last_metrics = {
            **means,
            "lr": self._lr,
            "samples_per_s": samples / max(now - interval.start, 1e-9),
            "elapsed_s": self.elapsed_s,
        }
        if self.process.is_main:
            formats = {"samples_per_s": "{:.4g}", "elapsed_s": "{:.1f}"}
            self.metrics_log.append(
                {"step": self.step}
                | {k: formats.get(k, "{:.6g}").format(v) for k, v in self.last_metrics.items()}
            )
        self._interval = _Interval(self.step)

    def _check_finite(self, loss: float, since: int) -> None:
        if not math.isfinite(loss):
            raise ForecastError(
                f"loss became {loss} between steps {since} and {self.step}; lower training.lr or check the data "
                f"(the last checkpoint, step {self._saved_step}, is intact)"
            )

    def save(self) -> None:
        """Write ``checkpoints/last.pt`` atomically (a collective call in distributed runs). Refused (with the
        loss error) if a loss since the last log was not finite."""
        if self._interval.steps:
            _, means = self._interval.means(self.process, self.device, names=("loss",))
            self._check_finite(means["loss"], self._interval.first_step)
        rng_torch = distributed.gather_objects(torch.get_rng_state(), self.process)
        rng_cuda = (
            distributed.gather_objects(torch.cuda.get_rng_state(self.device), self.process)
            if self.device.type == "cuda"
            else []
        )
        if self.process.is_main:
            payload = {
                "step": self.step,
                "elapsed_s": self.elapsed_s,
                "metrics": self.last_metrics,
                "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "ema": {k: v.detach().cpu() for k, v in self.ema.state_dict().items()},
                "optimizers": {name: opt.state_dict() for name, opt in self.mode.optimizers.items()},
                "mode": self.mode.state_dict(),
                "rng": {"torch": rng_torch, "cuda": rng_cuda},
                "data": {**self.sampler().state_dict(), "position": self.position},
                "config": self.config,
                "n_parameters": self.n_parameters,
            }
            save_checkpoint(self.checkpoint_file, payload)
        self._saved_step = self.step
        distributed.barrier(self.process)

    @torch.no_grad()
    def fit_statistics(self) -> None:
        """Let a model that learns from data statistics (``fit_statistics``) measure the train group.

        The model asks for windows of ``statistics_frames`` frames, at most ``statistics_windows`` of them; they
        are spread evenly over the train group and passed in batches. Fitted buffers are checkpointed with the
        weights (the EMA copy restarts from them).
        """
        frames = int(getattr(self.model, "statistics_frames", self.data.window_length))
        dataset = WindowDataset(self.store, self.layout, frames)
        count = min(len(dataset), int(getattr(self.model, "statistics_windows", 256)))
        indices = torch.linspace(0, len(dataset) - 1, count).round().long().unique().tolist()
        size = self.training.batch_size
        batches = (
            torch.stack([dataset[i] for i in indices[j : j + size]]).to(self.device)
            for j in range(0, len(indices), size)
        )
        if self.progress and self.process.is_main:
            batches = tqdm(batches, total=-(-len(indices) // size), desc="statistics", unit="batch")
        self.model.fit_statistics(batches)
        self.ema = EMA(self.model, self.training.ema_decay, self.training.ema_warmup)

    def close(self) -> None:
        distributed.teardown()
        self._claim.close()


class _Interval:
    """Sums of the step metrics since the last log, kept on the device (adding them never synchronises)."""

    def __init__(self, first_step: int):
        self.first_step = first_step
        self.start = time.perf_counter()
        self.steps = 0
        self.sums: dict[str, torch.Tensor] = {}

    def add(self, metrics: dict[str, torch.Tensor]) -> None:
        self.steps += 1
        for name, value in metrics.items():
            value = value.detach().float()
            self.sums[name] = self.sums[name] + value if name in self.sums else value

    def means(
        self, process: distributed.ProcessInfo, device: torch.device, names: tuple[str, ...] | None = None
    ) -> tuple[list[str], dict[str, float]]:
        names = list(names or self.sums)
        values = torch.stack([self.sums[n].to(device) for n in names]) / max(1, self.steps)
        values = distributed.mean_over_ranks(values, process).tolist()
        return names, dict(zip(names, values))

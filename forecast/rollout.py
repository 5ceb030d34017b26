"""Ensemble rollouts: autoregressive forecasts from a trained model, written to a netCDF forecast file.

For each forecast start (an *init*: a test sequence and the frame where its context begins) the model observes
``context`` true frames, then generates ``horizon`` frames one after the other; each generated frame is fed back
through ``observe``, so its ``mu`` and diffusion context come from the generated past (algorithm 2 of the RVD
paper, section 4.2: 4 context frames, 16 generated). Ensemble members are rows of one batch: the context is
expanded to ``(members, channel, y, x)`` and observed once, so no recurrent state is ever copied.

``rollout`` reads as: validate the options, choose the starts, generate, write. The file itself (its layout, CF
metadata, times, partial file and resume) is ``forecast.forecast_file``: ``V (init, member, lead_time, [channel,]
y, x)`` in the store's units, the verifying truth ``V_obs`` and the observed context frames ``V_context``, so a
forecast file alone can be plotted with its context and scored against persistence.

Starts. ``starts="even"`` spreads ``inits`` starts over the test sequences (``choose_inits``); ``starts="truth"``
forecasts exactly the starts of the store's ``truth`` group (the perfect-model ensembles of a known-answer
benchmark), with its horizon by default, and writes the truth's ``init``, ``sequence`` and ``init_time``.

Memory and interruption. Each chunk of at most ``batch_size`` members of one init is written as soon as it is
generated, so memory holds one chunk, never the ensemble. On an interruption (Ctrl-C, a killed job) the partial
file keeps the finished inits; ``resume=True`` (``forecast rollout ... --resume``) checks that it was written
with the same settings and continues with the inits it lacks. Any other error deletes the partial file.

Reproducibility. Each chunk's noise comes from its own ``torch.Generator`` seeded from
``(seed, sequence, start, first member of the chunk)``: a forecast does not depend on which other inits are in
the run, on their order, or on an interruption and resume, and it does not depend on ``batch_size`` as long as
``batch_size >= members`` (a smaller batch size splits members into chunks with their own noise streams). The
same seed gives the same file on the same device and software.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from forecast import __version__
from forecast.capture import resolve_capture
from forecast.claims import claim_output
from forecast.data.channels import ChannelLayout
from forecast.device import autocast_dtype, select_device
from forecast.diffusion import SAMPLERS
from forecast.errors import ForecastError
from forecast.field_store import TEST_GROUP, check_truth, open_truth
from forecast.forecast_file import (
    ForecastFileWriter,
    ForecastSettings,
    Init,
    NoRoomForInit,
    history_entry,
    partial_path,
)
from forecast.models.base import SequenceModel
from forecast.rollout_options import DEFAULT_HORIZON, DEFAULTS, RolloutOptions
from forecast.rollout_options import names as option_names
from forecast.rollout_shards import (
    Shard,
    join_shards,
    seal_shard,
    shard_device,
    shard_is_done,
    shard_path,
    unsealed_path,
    wait_for_shards,
)
from forecast.spread_calibration import ATTRIBUTE as SPREAD_ATTRIBUTE
from forecast.spread_calibration import CALIBRATION_FILE, SpreadCalibration

__all__ = ["Init", "RolloutInterrupted", "choose_inits", "generate", "rollout", "rollout_run", "truth_inits"]


class RolloutInterrupted(ForecastError):
    """A rollout stopped by the user; its finished inits are kept in the partial file for ``--resume``."""


def choose_inits(
    n_sequences: int, sequence_length: int, context: int, horizon: int, inits: int | None
) -> list[Init]:
    """Forecast starts spread evenly over the test sequences, and evenly over time within each sequence.

    ``inits=None`` takes one start per sequence (at its beginning). Otherwise sequences are used in turn, the
    first ``inits % n_sequences`` getting one start more, and each sequence's starts are spread evenly over its
    admissible range ``0 .. sequence_length - context - horizon``. Inits come back sorted by sequence and start.
    """
    if context < 1 or horizon < 1:
        raise ForecastError(f"context ({context}) and horizon ({horizon}) must both be at least 1")
    window = context + horizon
    if window > sequence_length:
        raise ForecastError(
            f"context + horizon = {context} + {horizon} = {window} frames is longer than the test sequences "
            f"({sequence_length} frames)"
        )
    if n_sequences < 1:
        raise ForecastError("the test group has no sequences")
    if inits is None:
        inits = n_sequences
    if inits < 1:
        raise ForecastError(f"--inits must be at least 1 (got {inits})")
    n_starts = sequence_length - window + 1  # admissible starts per sequence
    if inits > n_sequences * n_starts:
        raise ForecastError(
            f"{inits} inits asked for, but the test group has only {n_sequences * n_starts} distinct starts "
            f"({n_sequences} sequences x {n_starts} starts for a {window}-frame window)"
        )
    per_sequence = [inits // n_sequences + (1 if i < inits % n_sequences else 0) for i in range(n_sequences)]
    if inits < n_sequences:
        # fewer inits than sequences: take sequences spread evenly rather than the first ones
        chosen = np.round(np.linspace(0, n_sequences - 1, inits)).astype(int)
        per_sequence = [1 if i in set(chosen.tolist()) else 0 for i in range(n_sequences)]
    result = []
    for seq, k in enumerate(per_sequence):
        if k == 0:
            continue
        starts = np.round(np.linspace(0, n_starts - 1, k)).astype(int) if k > 1 else np.array([0])
        result.extend(Init(seq, int(s)) for s in starts)
    return result


def chunk_generator(seed: int, init: Init, first_member: int, device: torch.device) -> torch.Generator:
    """The noise source of one member chunk of one init, independent of every other chunk and init."""
    words = np.random.SeedSequence([seed, init.sequence, init.start, first_member]).generate_state(
        2, np.uint32
    )
    generator = torch.Generator(device=device)
    generator.manual_seed(int(words[0]) << 31 | int(words[1]) >> 1)  # 63 bits: a valid torch seed
    return generator


# --------------------------------------------------------------------------------------------------- generation
@torch.inference_mode()
def generate(
    model: SequenceModel,
    context_frames: torch.Tensor,
    horizon: int,
    members: int,
    *,
    sampler: str = "ddpm",
    steps: int | None = None,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    amp_dtype: torch.dtype | None = None,
    on_frame=None,
) -> torch.Tensor:
    """Roll ``model`` out from one init: ``(members, horizon, channel, y, x)`` normalised frames.

    ``context_frames`` ``(context, channel, y, x)`` are observed by every member (batch row); then each
    generated frame is observed before the next is drawn, so the recurrent state carries the generated past.
    """
    n_context, channels, height, width = context_frames.shape
    device = context_frames.device
    state = model.initial_state(members, height, width, device)
    frames = []
    with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        for t in range(n_context):
            state = model.observe(state, context_frames[t].expand(members, channels, height, width))
        for lead in range(horizon):
            frame = model.sample_next(
                state, sampler=sampler, steps=steps, eta=eta, generator=generator
            ).float()
            if frame.shape != (members, channels, height, width):
                raise ForecastError(
                    f"model {model.name!r} returned a frame of shape {tuple(frame.shape)}, "
                    f"expected {(members, channels, height, width)}"
                )
            frames.append(frame)
            if lead + 1 < horizon:  # the last frame needs no observing
                state = model.observe(state, frame)
            if on_frame is not None:
                on_frame()
    return torch.stack(frames, dim=1)


# --------------------------------------------------------------------------------------------------- starts
def truth_inits(test_ds: xr.Dataset, truth: xr.Dataset, context: int) -> tuple[list[Init], np.ndarray]:
    """The starts of a store's ``truth`` group as ``Init`` objects of ``test_ds``, and the truth's ``init`` labels.

    The truth's ``sequence`` is a label of the test group's ``sequence`` coordinate and its ``init_time`` a value
    of the test group's ``time``: the frame lead 1 verifies against, so the context ends one frame before it.
    """
    check_truth(truth)
    seq_labels = np.asarray(test_ds["sequence"].values) if "sequence" in test_ds.coords else None
    times = (
        np.asarray(test_ds["time"].values) if "time" in test_ds.coords else np.arange(test_ds.sizes["time"])
    )
    chosen = []
    for sequence, init_time in zip(truth["sequence"].values, truth["init_time"].values, strict=True):
        seq = np.flatnonzero(seq_labels == sequence) if seq_labels is not None else [int(sequence)]
        frame = np.flatnonzero(times == init_time)
        if len(seq) != 1 or len(frame) != 1:
            raise ForecastError(
                f"the truth group's start (sequence {sequence}, init_time {init_time}) is not a frame of the test group"
            )
        if frame[0] < context:
            raise ForecastError(
                f"the truth group's start (sequence {sequence}, init_time {init_time}) has only {frame[0]} test "
                f"frames before it; --context {context} needs {context}"
            )
        chosen.append(Init(int(seq[0]), int(frame[0]) - context))
    labels = np.asarray(truth["init"].values) if "init" in truth.coords else np.arange(len(chosen))
    return chosen, labels


def _choose(
    test_ds: xr.Dataset, store, starts: str, inits, context: int, horizon: int | None
) -> tuple[list[Init], np.ndarray | None, int]:
    """The inits to forecast, their ``init`` labels (None: 0..n-1) and the horizon."""
    n_sequences, length = test_ds.sizes["sequence"], test_ds.sizes["time"]
    if starts == "truth":
        if inits is not None:
            raise ForecastError(
                "--inits cannot be combined with --starts truth (the truth group fixes the starts)"
            )
        if store is None:
            raise ForecastError("starts='truth' needs the field store's path (pass the store, not a Dataset)")
        truth = open_truth(store)
        horizon = truth.sizes["lead_time"] if horizon is None else horizon
        chosen, labels = truth_inits(test_ds, truth, context)
    else:
        horizon = DEFAULT_HORIZON if horizon is None else horizon
        labels = None
        if inits is None or isinstance(inits, int | np.integer):
            return (
                choose_inits(n_sequences, length, context, horizon, inits if inits is None else int(inits)),
                None,
                horizon,
            )
        chosen = list(inits)
    choose_inits(n_sequences, length, context, horizon, 1)  # validates the window
    for init in chosen:
        if not (0 <= init.sequence < n_sequences and 0 <= init.start <= length - context - horizon):
            raise ForecastError(
                f"{init} with context {context} and horizon {horizon} lies outside the test group "
                f"({n_sequences} sequences x {length} frames)"
            )
    return chosen, labels, horizon


# --------------------------------------------------------------------------------------------------- rollout
def rollout(
    model: SequenceModel,
    layout: ChannelLayout,
    data: xr.Dataset | str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    members: int = DEFAULTS.members,
    context: int = DEFAULTS.context,
    horizon: int | None = DEFAULTS.horizon,
    inits: int | Sequence[Init] | None = DEFAULTS.inits,
    starts: str = DEFAULTS.starts,
    sampler: str = DEFAULTS.sampler,
    steps: int | None = DEFAULTS.steps,
    eta: float = DEFAULTS.eta,
    seed: int = DEFAULTS.seed,
    batch_size: int = DEFAULTS.batch_size,
    device: torch.device | str = DEFAULTS.device,
    amp: bool = DEFAULTS.amp,
    capture: str = DEFAULTS.capture,
    channels_last: bool = DEFAULTS.channels_last,
    attrs: dict[str, Any] | None = None,
    group: str | None = None,
    history: str | None = None,
    resume: bool = False,
    progress: bool = False,
    log: Callable[[str], Any] | None = None,
    shard: Shard | None = None,
    spread_calibration: SpreadCalibration | None = None,
) -> Path:
    """Write an ensemble forecast file for starts of a field store's test group and return its path.

    The options (``members`` .. ``channels_last``) are those of ``forecast.rollout_options.RolloutOptions``, with
    its defaults. ``data`` is the store's path (its ``group``, default ``test``, is opened) or an opened group.
    ``starts``: ``"even"`` takes ``inits`` starts (a count spread evenly by ``choose_inits``, ``None`` one per
    sequence, or explicit ``Init`` objects); ``"truth"`` the starts of the store's ``truth`` group, whose horizon
    is then the default. ``horizon`` defaults to 16 otherwise. ``steps=None``: the sampler's default
    (``RolloutOptions.sampling_steps``). ``attrs`` are added to the file's global attributes (the checkpoint and
    run directory: ``rollout_run`` puts them there); ``history`` is the command that made the file; ``log``
    receives notes for the user (a deterministic model is written with one member). ``amp``: bf16 autocast of the
    networks (the sampler's arithmetic stays fp32); ``capture``: compile or CUDA-graph-capture the denoiser
    (``forecast.capture``); ``channels_last``: run it in that memory format. ``shard``: this process's part of a
    multi-process rollout (``forecast.rollout_shards``; rank 0 returns the joined file, other ranks their shard). ``spread_calibration``: widen
    each init's members about their mean by its factors (``forecast.spread_calibration``; all members in one
    chunk, ``batch_size >= members``), recorded in the file's ``spread_calibration`` attribute.
    See the module docstring for chunking, interruption and seeding.
    """
    options = _options(locals())
    device = select_device(device) if not isinstance(device, torch.device) else device
    _check_options(model, options)
    test_ds, store, group = _open_data(data, group)
    layout.check_compatible(test_ds, "test store")
    chosen, labels, horizon = _choose(test_ds, store, starts, inits, context, horizon)
    attrs = _with_spread_calibration(attrs, spread_calibration, layout, horizon, members, batch_size)
    if (
        "frame_interval" in test_ds.attrs
    ):  # the simulator's time between frames: what a frequency is scaled by
        attrs = {"frame_interval": test_ds.attrs["frame_interval"], **(attrs or {})}
    settings = ForecastSettings.from_options(
        options,
        model=model.name,
        variables=tuple(layout.variables),
        inits=tuple(chosen),
        members=_ensemble_size(model, members, log),
        horizon=horizon,
        sampling_steps=_resolved_steps(model, options.sampling_steps()),
        capture=resolve_capture(capture, device),
        source_store=str(store) if store is not None else "unknown",
        source_group=group,
        provenance=dict(attrs or {}),
        device=str(device),
        software=f"forecast {__version__}, torch {torch.__version__}",
        history=history or history_entry("forecast.rollout.rollout (Python API)"),
    )
    return _generate_and_write(
        out_path, settings, test_ds, labels, resume, shard, model, layout, device, progress
    )


def _options(arguments: dict[str, Any]) -> RolloutOptions:
    """The ``RolloutOptions`` among a function's ``arguments`` (its ``locals()``), validated."""
    values = {name: arguments[name] for name in option_names()}
    return RolloutOptions(**{**values, "device": str(values["device"])})


def _with_spread_calibration(
    attrs: dict[str, Any] | None,
    calibration: SpreadCalibration | None,
    layout: ChannelLayout,
    horizon: int,
    members: int,
    batch_size: int,
) -> dict[str, Any]:
    """``attrs`` with the calibration recorded (``_forecast_init`` applies it from there); one line if it does
    not fit this forecast."""
    attrs = dict(attrs or {})
    if calibration is None:
        return attrs
    calibration.check(layout.variables, horizon, members)
    if batch_size < members:
        raise ForecastError(
            f"a spread calibration needs every member in one batch: --batch-size {batch_size} < {members} members"
        )
    attrs[SPREAD_ATTRIBUTE] = calibration.to_json()
    return attrs


def _ensemble_size(model: SequenceModel, members: int, log: Callable[[str], Any] | None) -> int:
    """``members``, or one for a deterministic model: it gives the same frame every time, one member says it all."""
    if model.stochastic or members == 1:
        return members
    if log is not None:
        log(f"model {model.name!r} is deterministic: writing one member")
    return 1


def _generate_and_write(
    out_path: str | os.PathLike,
    settings: ForecastSettings,
    test_ds: xr.Dataset,
    labels: np.ndarray | None,
    resume: bool,
    shard: Shard | None,
    model: SequenceModel,
    layout: ChannelLayout,
    device: torch.device,
    progress: bool,
) -> Path:
    """Generate the file's inits and write them: into ``out_path``, or into this rank's shard under ``shard``."""
    model = model.to(device).eval()
    model.accelerate_sampling(settings.capture, channels_last=settings.channels_last)
    try:
        if shard is not None:
            return _sharded(
                shard, out_path, settings, test_ds, labels, resume, model, layout, device, progress
            )
        writer = ForecastFileWriter(out_path, settings, test_ds, init_labels=labels, resume=resume)
        _generate_into(writer, model, layout, test_ds, device, settings.amp, progress)
        return writer.commit()
    finally:
        model.accelerate_sampling("none")


def _sharded(shard: Shard, out_path, settings: ForecastSettings, test_ds, labels, resume: bool, *generation):
    """This rank's inits into its shard; rank 0 then waits for every shard and joins them into ``out_path``."""
    model, layout, device, progress = generation
    mine, fingerprint = shard_path(out_path, shard), settings.fingerprint()
    # rank 0 claims the final file for the whole rollout; each rank's writer claims its own shard
    with claim_output(out_path) if shard.rank == 0 else contextlib.nullcontext():
        if not (resume and shard_is_done(mine, fingerprint)):
            writer = ForecastFileWriter(
                unsealed_path(mine), settings, test_ds, init_labels=labels, resume=resume
            )
            writer.done |= {i for i in range(len(settings.inits)) if not shard.owns(i)}  # other ranks' inits
            _generate_into(writer, model, layout, test_ds, device, settings.amp, progress and shard.rank == 0)
            writer.commit()
            seal_shard(mine, fingerprint)
        if shard.rank != 0:
            return mine
        wait_for_shards(
            [shard_path(out_path, Shard(r, shard.world)) for r in range(shard.world)], fingerprint
        )
        return join_shards(out_path, shard.world, partial_path(out_path))


def _check_options(model: SequenceModel, options: RolloutOptions) -> None:
    """What ``RolloutOptions`` cannot check alone: the sampler's name, and its steps against the model's N."""
    if options.sampler not in SAMPLERS:
        raise ForecastError(f"unknown sampler {options.sampler!r}; choose one of {SAMPLERS}")
    diffusion = getattr(model, "diffusion", None)
    if isinstance(getattr(diffusion, "steps", None), int):
        diffusion.check_sampler(options.sampler, options.sampling_steps(), options.eta)


def _open_data(data, group: str | None) -> tuple[xr.Dataset, str | None, str]:
    """The group to forecast, the store's path (where known) and the group's name."""
    if isinstance(data, xr.Dataset):
        return data, data.encoding.get("source"), group or str(data.attrs.get("group", TEST_GROUP))
    from forecast.field_store import open_field_store

    group = group or TEST_GROUP
    return open_field_store(data, group), str(data), group


def _resolved_steps(model: SequenceModel, steps: int | None) -> int | str:
    """The number of sampling steps actually run: ``steps``, or the model's N when it exposes its diffusion."""
    if steps is not None:
        return steps
    n = getattr(getattr(model, "diffusion", None), "steps", None)
    return int(n) if isinstance(n, int) else "all"


def _generate_into(
    writer: ForecastFileWriter,
    model: SequenceModel,
    layout: ChannelLayout,
    test_ds: xr.Dataset,
    device: torch.device,
    amp: bool,
    progress: bool,
) -> None:
    """Generate every init the file lacks and write it; Ctrl-C keeps the partial file, other errors delete it."""
    settings = writer.settings
    chunk = settings.member_chunk
    todo = [(i, init) for i, init in enumerate(settings.inits) if i not in writer.done]
    bar = _progress_bar(len(todo) * -(-settings.members // chunk) * settings.horizon) if progress else None
    try:
        for index, init in todo:
            if bar is not None:
                bar.set_postfix_str(f"init {index + 1}/{len(settings.inits)}", refresh=False)
            _forecast_init(
                writer,
                index,
                init,
                model,
                layout,
                test_ds,
                device,
                amp,
                bar.update if bar is not None else None,
            )
            writer.finish_init(index)
    except NoRoomForInit:
        writer.abandon(keep=True)  # refused before the init's first write: the finished inits are whole
        raise
    except KeyboardInterrupt:
        writer.abandon(keep=True)
        raise RolloutInterrupted(
            f"interrupted after {len(writer.done)} of {len(settings.inits)} inits; the finished ones are kept in "
            f"{writer.partial}: rerun the same command with --resume to continue"
        ) from None
    except BaseException:
        writer.abandon(keep=False)
        raise
    finally:
        if bar is not None:
            bar.close()


def _progress_bar(total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="frame", desc="rollout", dynamic_ncols=True)


def _forecast_init(
    writer: ForecastFileWriter,
    index: int,
    init: Init,
    model: SequenceModel,
    layout: ChannelLayout,
    test_ds: xr.Dataset,
    device: torch.device,
    amp: bool,
    on_frame: Callable[[], Any] | None,
) -> None:
    """One init: its observed frames, then its members chunk by chunk, each chunk with its own noise."""
    settings = writer.settings
    context, horizon, members, chunk = (
        settings.context,
        settings.horizon,
        settings.members,
        settings.member_chunk,
    )
    window = test_ds.isel(sequence=init.sequence, time=slice(init.start, init.start + context + horizon))
    window = window[list(layout.variables)].load()
    normalised = layout.stack(window.isel(time=slice(0, context)))
    if not np.isfinite(normalised).all():
        raise ForecastError(f"context frames of {init} contain NaN or infinite values")
    writer.write_observed(index, window)
    context_frames = torch.from_numpy(normalised).to(device)
    calibration = SpreadCalibration.of_attributes(settings.provenance)  # all members in one chunk then
    for first in range(0, members, chunk):
        frames = generate(
            model,
            context_frames,
            horizon,
            min(chunk, members - first),
            sampler=settings.sampler,
            steps=settings.steps,
            eta=settings.eta,
            generator=chunk_generator(settings.seed, init, first, device),
            amp_dtype=autocast_dtype(device) if amp else None,
            on_frame=on_frame,
        ).cpu()
        if not torch.isfinite(frames).all():
            raise ForecastError(
                f"model {model.name!r} generated NaN or infinite values for {init}; the checkpoint may be diverged"
            )
        fields = layout.unstack(frames.numpy())
        writer.write_members(index, first, calibration.apply(fields) if calibration is not None else fields)


# --------------------------------------------------------------------------------------------------- from a run
def rollout_run(
    run_dir: str | os.PathLike,
    store: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    members: int = DEFAULTS.members,
    context: int = DEFAULTS.context,
    horizon: int | None = DEFAULTS.horizon,
    inits: int | Sequence[Init] | None = DEFAULTS.inits,
    starts: str = DEFAULTS.starts,
    sampler: str = DEFAULTS.sampler,
    steps: int | None = DEFAULTS.steps,
    eta: float = DEFAULTS.eta,
    seed: int = DEFAULTS.seed,
    batch_size: int = DEFAULTS.batch_size,
    device: str | torch.device = DEFAULTS.device,
    amp: bool = DEFAULTS.amp,
    capture: str = DEFAULTS.capture,
    channels_last: bool = DEFAULTS.channels_last,
    ema: bool = True,
    attrs: dict[str, Any] | None = None,
    group: str | None = None,
    history: str | None = None,
    spread_calibration: str | os.PathLike | bool | None = DEFAULTS.spread_calibration,
    resume: bool = False,
    progress: bool = False,
    log: Callable[[str], Any] | None = None,
    shard: Shard | None = None,
) -> Path:
    """Forecast a field store with a run directory's trained model, recording where both came from.

    Loads the run (EMA weights unless ``ema=False``) and calls ``rollout`` on the store's test group with the
    options (``forecast.rollout_options.RolloutOptions``: ``members`` .. ``channels_last``, the same defaults as
    ``forecast rollout`` and the pipeline); the file's attributes name the checkpoint, its step, the run
    directory, the weights, the config, the store and group, and ``attrs``. ``group``: another group of the
    store to forecast (``train``: the calibration benchmark's long rollouts, longer than the test sequences).
    ``spread_calibration``: a fitted calibration's JSON file to apply (``forecast.spread_calibration``), or
    True (or ``"run"``) for the run's own (``RUN_DIR/spread_calibration.json``); None or False: none.
    """
    import json

    from forecast.training import load_run

    options = _options(locals())
    device = select_device(device) if not isinstance(device, torch.device) else device
    if shard is not None:
        device = shard_device(device, shard)
    if device.type == "cuda":
        # same seed, same forecast: no autotuned (non-deterministic) convolution algorithms
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    run = load_run(run_dir, device=str(device), ema=ema)
    provenance = {
        "checkpoint": str(run.checkpoint),
        "checkpoint_step": int(run.step),
        "run_dir": str(run_dir),
        "weights": "ema" if ema else "raw",
        "config": json.dumps(run.config, sort_keys=True, default=str),
        **(attrs or {}),
    }
    if history is None:
        history = history_entry(
            f"forecast.rollout.rollout_run({str(run_dir)!r}, {str(store)!r}) (Python API)"
        )
    calibration = None
    if spread_calibration is not None and spread_calibration is not False:
        own = spread_calibration is True or spread_calibration == "run"
        path = Path(run_dir) / CALIBRATION_FILE if own else Path(spread_calibration)
        calibration = SpreadCalibration.load(path)
        provenance["spread_calibration_file"] = str(path)
    return rollout(
        run.model, run.layout, store, out_path, **{**options.as_kwargs(), "device": device, "spread_calibration": calibration}, attrs=provenance,
        history=history, resume=resume, progress=progress, log=log, shard=shard, group=group,
    )  # fmt: skip

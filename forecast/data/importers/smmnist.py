"""Stochastic Moving MNIST (SM-MNIST, Denton & Fergus 2018): two digits bouncing in a 64x64 frame.

Each digit moves with a constant velocity until it reaches a wall; there it takes a new random speed (1 to 4
pixels per frame) pointing away from the wall, so trajectories branch at every bounce. Frames are the
pixel-wise maximum of the digits. Digits come from an MNIST file the user gives (``mnist.npz`` with ``x_train``/
``x_test``, or the IDX files ``train-images-idx3-ubyte[.gz]`` / ``t10k-images-idx3-ubyte[.gz]``) or, with SRC
``builtin``, from the 8x8 digits bundled with scikit-learn (upsampled), so it works offline.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from forecast.data.importers.writer import StorePlan, run_import, video_plan
from forecast.errors import ForecastError
from forecast.field_store import GROUPS, TEST_GROUP, TRAIN_GROUP

BUILTIN = "builtin"
TRUTH_STREAM = 2  # random streams: [seed, 0 | 1 (train | test), index]; truth members [seed, 2, ...]
MAX_SPEED = 4  # pixels per frame (Denton & Fergus 2018)


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ForecastError(f"cannot read MNIST file {path}: {exc}") from None
    if len(raw) < 16 or raw[2] != 0x08 or raw[3] != 3:
        raise ForecastError(f"{path} is not an IDX file of uint8 images (bad magic number)")
    n, rows, cols = (int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(3))
    if len(raw) != 16 + n * rows * cols:
        raise ForecastError(
            f"{path} is truncated: {len(raw) - 16} bytes of pixels, expected {n * rows * cols}"
        )
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, rows, cols)


def _builtin_digits() -> np.ndarray:
    """scikit-learn's 1797 8x8 digits (0..16) as uint8 0..255.

    Read straight from the data file the package ships (importing scikit-learn takes seconds); through
    ``sklearn.datasets.load_digits`` where that file is not where expected.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ForecastError(
            "the builtin digits need scikit-learn (pip install scikit-learn), or give an MNIST file as SRC"
        )
    data_file = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    if data_file.is_file():
        table = np.loadtxt(data_file, delimiter=",")
        pixels = table[:, :64].reshape(-1, 8, 8)
    else:
        from sklearn.datasets import load_digits

        pixels = load_digits().images
    return np.clip(np.rint(pixels * (255.0 / 16.0)), 0, 255).astype(np.uint8)


def load_digits_images(src: str | os.PathLike) -> dict[str, np.ndarray]:
    """Digit images for the train and test groups, uint8 (n, h, w)."""
    if str(src) == BUILTIN:
        images = _builtin_digits()
        cut = int(0.8 * len(images))
        return {TRAIN_GROUP: images[:cut], TEST_GROUP: images[cut:]}
    path = Path(src)
    if not path.exists():
        raise ForecastError(f"MNIST source not found: {path} (give mnist.npz, an IDX folder, or 'builtin')")
    if path.is_dir():
        found = {}
        for group, stem in ((TRAIN_GROUP, "train-images-idx3-ubyte"), (TEST_GROUP, "t10k-images-idx3-ubyte")):
            candidates = [path / stem, path / f"{stem}.gz"]
            hit = next((c for c in candidates if c.exists()), None)
            if hit is None:
                raise ForecastError(f"{path} has no {stem}[.gz] (the MNIST IDX image file)")
            found[group] = _read_idx(hit)
        return found
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {TRAIN_GROUP: npz["x_train"], TEST_GROUP: npz["x_test"]}
        except (KeyError, ValueError, OSError) as exc:
            raise ForecastError(f"{path} is not an MNIST npz with x_train and x_test ({exc})") from None
    images = _read_idx(path)
    return {TRAIN_GROUP: images, TEST_GROUP: images}


def _resize_digits(images: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.stack(
        [np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BILINEAR)) for img in images]
    )


def _walk(
    position: np.ndarray,
    velocity: np.ndarray,
    rng: np.random.Generator,
    length: int,
    limit: int,
    max_speed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Move one digit for ``length`` frames from (``position``, ``velocity``): the corners (length, 2) and the
    state (position, velocity) on entering each frame (length, 2, 2), from which a continuation can fork."""
    position, velocity = position.copy(), velocity.copy()
    out = np.empty((length, 2), np.int64)
    states = np.empty((length, 2, 2), np.int64)
    for t in range(length):
        states[t] = position, velocity
        for axis in range(2):
            if position[axis] <= 0:
                position[axis] = 0
                velocity[axis] = rng.integers(1, max_speed + 1)
            elif position[axis] >= limit:
                position[axis] = limit
                velocity[axis] = -rng.integers(1, max_speed + 1)
        out[t] = position
        position = position + velocity
    return out, states


def _start(rng: np.random.Generator, limit: int, max_speed: int) -> tuple[np.ndarray, np.ndarray]:
    position = rng.integers(0, limit + 1, size=2).astype(np.int64)
    # a random direction; a zero component would pin the digit to one row or column, so speeds are >= 1
    velocity = rng.integers(1, max_speed + 1, size=2) * rng.choice([-1, 1], size=2)
    return position, velocity


def trajectory(rng: np.random.Generator, length: int, limit: int, max_speed: int = 4) -> np.ndarray:
    """Top-left corners (length, 2) of one digit: constant velocity, random new speed at each wall."""
    return _walk(*_start(rng, limit, max_speed), rng, length, limit, max_speed)[0]


def digit_paths(
    rng: np.random.Generator, digits: np.ndarray, length: int, size: int = 64, num_digits: int = 2
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per digit: (image, corners (length, 2), states (length, 2, 2)); the random draws of
    :func:`render_sequence`, in its order."""
    paths = []
    limit = size - digits.shape[-1]
    for _ in range(num_digits):
        digit = digits[rng.integers(len(digits))]
        corners, states = _walk(*_start(rng, limit, MAX_SPEED), rng, length, limit, MAX_SPEED)
        paths.append((digit, corners, states))
    return paths


def render(paths: list[tuple[np.ndarray, np.ndarray, np.ndarray]], size: int) -> np.ndarray:
    """Frames (length, size, size) uint8: the pixel-wise maximum of the digits at their corners."""
    length = paths[0][1].shape[0]
    frames = np.zeros((length, size, size), np.uint8)
    for digit, corners, _ in paths:
        digit_size = digit.shape[-1]
        for t, (y, x) in enumerate(corners):
            window = frames[t, y : y + digit_size, x : x + digit_size]
            np.maximum(window, digit, out=window)
    return frames


def render_sequence(
    rng: np.random.Generator, digits: np.ndarray, length: int, size: int = 64, num_digits: int = 2
) -> np.ndarray:
    """One (length, size, size) uint8 sequence."""
    return render(digit_paths(rng, digits, length, size, num_digits), size)


def continuations(
    paths: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    init_time: int,
    horizon: int,
    rngs: list[np.random.Generator],
    size: int,
) -> np.ndarray:
    """(members, horizon, size, size): the sequence continued from its state on entering frame ``init_time``
    (digit positions and velocities), each member with its own future bounces (``rngs``)."""
    out = []
    for rng in rngs:
        limit = [size - digit.shape[-1] for digit, _, _ in paths]
        member = []
        for (digit, _, states), lim in zip(paths, limit, strict=True):
            position, velocity = states[init_time]
            corners, future = _walk(position, velocity, rng, horizon, lim, MAX_SPEED)
            member.append((digit, corners, future))
        out.append(render(member, size))
    return np.stack(out)


def truth_starts(n_test: int, length: int, inits: int, context: int, horizon: int) -> list[tuple[int, int]]:
    """(test sequence, init_time) of the truth starts: sequences and times spread evenly over the test group,
    each with ``context`` frames before and ``horizon - 1`` after."""
    if length - context - horizon + 1 < 1:
        raise ForecastError(
            f"truth starts need {context} context frames and {horizon} frames after them within "
            f"--length {length}; raise --length or lower --truth-horizon or --truth-context"
        )
    sequences = np.round(np.linspace(0, n_test - 1, inits)).astype(int)
    times = np.round(np.linspace(context, length - horizon, inits)).astype(int)
    starts = [(int(s), int(t)) for s, t in zip(sequences, times, strict=True)]
    if len(set(starts)) < len(starts):
        raise ForecastError(
            f"{inits} truth starts do not fit {n_test} test sequences of {length} frames without repeats; "
            "lower --truth-inits"
        )
    return starts


def _check_options(
    size: int, digit_size: int, truth_members: int, truth_inits: int, truth_horizon: int, truth_context: int
) -> None:
    if digit_size >= size:
        raise ForecastError(f"digit size {digit_size} must be smaller than the frame size {size}")
    if truth_members < 0 or (truth_members and (truth_inits < 1 or truth_horizon < 1 or truth_context < 0)):
        raise ForecastError(
            "--truth-members must be >= 0, --truth-inits and --truth-horizon >= 1, --truth-context >= 0 (got "
            f"{truth_members}, {truth_inits}, {truth_horizon}, {truth_context})"
        )


@dataclass(frozen=True)
class Recipe:
    """What every SM-MNIST sequence is drawn from: the digit images per group, the sizes and the seed.

    Sequence ``index`` of a group has its own generator, seeded by (seed, group, index): a resumed import makes
    the same data, and the truth group replays a test sequence's draws before forking its futures.
    """

    digits: dict[str, np.ndarray]
    length: int
    size: int
    num_digits: int
    seed: int

    def rng(self, group: str, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, GROUPS.index(group), index])

    def sequences(self, counts: dict[str, int], group: str, start: int) -> Iterator[dict[str, np.ndarray]]:
        """The ``frames`` of the sequences of ``group`` from ``start`` on (``counts``: sequences per group)."""
        for index in range(start, counts[group]):
            yield {
                "frames": render_sequence(
                    self.rng(group, index), self.digits[group], self.length, self.size, self.num_digits
                )
            }

    def truth(
        self, plan: StorePlan, starts: list[tuple[int, int]], members: int, horizon: int, context: int
    ) -> xr.Dataset:
        """The ``truth`` group: ``members`` futures of ``horizon`` frames from each start's digit states."""
        futures = []
        for sequence, init_time in starts:
            paths = digit_paths(
                self.rng(TEST_GROUP, sequence),
                self.digits[TEST_GROUP],
                self.length,
                self.size,
                self.num_digits,
            )
            rngs = [
                np.random.default_rng([self.seed, TRUTH_STREAM, sequence, init_time, m])
                for m in range(members)
            ]
            futures.append(continuations(paths, init_time, horizon, rngs, self.size))
        return truth_dataset(plan, np.stack(futures), starts, context, self.seed)


def import_smmnist(
    src: str | os.PathLike,
    out: str | os.PathLike,
    size: int = 64,
    length: int = 30,
    sequences: dict[str, int] | None = None,
    digit_size: int = 32,
    num_digits: int = 2,
    seed: int = 0,
    truth_members: int = 0,
    truth_inits: int = 8,
    truth_horizon: int = 16,
    truth_context: int = 4,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Generate SM-MNIST sequences into a field store (train digits for `train`, test digits for `test`).

    With ``truth_members`` K > 0 the store gets a ``truth`` group: for ``truth_inits`` test starts, K futures
    of ``truth_horizon`` frames from the same digit positions and velocities, each with its own bounces."""
    sequences = sequences or {TRAIN_GROUP: 1000, TEST_GROUP: 100}
    _check_options(size, digit_size, truth_members, truth_inits, truth_horizon, truth_context)
    starts = (
        truth_starts(sequences[TEST_GROUP], length, truth_inits, truth_context, truth_horizon)
        if truth_members
        else []
    )
    digits = {group: _resize_digits(images, digit_size) for group, images in load_digits_images(src).items()}
    recipe = Recipe(digits, length, size, num_digits, seed)
    plan = video_plan(
        "smmnist",
        "stochastic moving digits",
        (size, size),
        length,
        {g: {"seed_index": np.arange(sequences[g])} for g in GROUPS},
        attrs={"digits": str(src), "num_digits": num_digits, "digit_size": digit_size, "seed": seed},
        fingerprint={
            "src": str(src),
            "size": size,
            "sequences": sequences,
            "digit_size": digit_size,
            "num_digits": num_digits,
            "seed": seed,
            # truth options only when asked: stores from before they existed still resume
            **(
                {"truth": [truth_members, truth_inits, truth_horizon, truth_context]} if truth_members else {}
            ),
        },
    )
    truth = functools.partial(recipe.truth, plan, starts, truth_members, truth_horizon, truth_context)
    return run_import(
        out,
        plan,
        functools.partial(recipe.sequences, sequences),
        resume=resume,
        overwrite=overwrite,
        progress=progress,
        truth=truth if truth_members else None,
    )


def truth_dataset(
    plan: StorePlan, frames: np.ndarray, starts: list[tuple[int, int]], context: int, seed: int
) -> xr.Dataset:
    """The ``truth`` group: ``frames`` (init, member, lead_time, y, x) with the coordinates of docs/formats.md."""
    sequence = np.array([s for s, _ in starts])
    layout = xr.Dataset(coords=plan.coords)
    time_attrs = {k: v for k, v in layout["time"].attrs.items() if k != "axis"}  # one T axis: `time`
    n_init, n_member, horizon = frames.shape[:3]
    coords = {
        "init": ("init", np.arange(n_init), {"long_name": "truth start"}),
        "sequence": ("init", sequence, {"long_name": "test sequence index"}),
        "init_time": (
            "init",
            np.array([t for _, t in starts]),
            {**time_attrs, "long_name": "time of the test frame that lead 1 verifies against"},
        ),
        "member": (
            "member",
            np.arange(n_member),
            {"long_name": "truth ensemble member", "standard_name": "realization"},
        ),
        "lead_time": (
            "lead_time",
            np.arange(1, horizon + 1),
            {
                **{k: v for k, v in time_attrs.items() if k != "units"},  # a frame count: no UDUNITS time
                "long_name": "frames after the start's last context frame",
                "standard_name": "forecast_period",  # climpred and cf_xarray find the lead axis by it
            },
        ),
        "y": layout["y"].variable,
        "x": layout["x"].variable,
    }
    for name, values in plan.sequence_coords[TEST_GROUP].items():
        coords[name] = ("init", np.asarray(values)[sequence], {"long_name": f"{name} of the test sequence"})
    spec = plan.variables["frames"]
    attrs = {
        **plan.attrs,
        "truth_context": context,
        "truth_description": (
            "perfect-model ensemble: futures from the digits' positions and velocities on entering frame "
            "init_time, each member with its own bounces (numpy default_rng([seed, "
            f"{TRUTH_STREAM}, sequence, init_time, member]), seed = {seed}); lead l verifies against "
            "test.isel(sequence=sequence).sel(time=init_time + l - 1)"
        ),
    }
    data = xr.DataArray(frames, dims=("init", "member", "lead_time", "y", "x"), attrs=dict(spec.attrs))
    return xr.Dataset({"frames": data}, coords=coords, attrs=attrs)

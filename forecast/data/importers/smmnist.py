"""Stochastic Moving MNIST (SM-MNIST, Denton & Fergus 2018): two digits bouncing in a 64x64 frame.

Each digit moves with a constant velocity until it reaches a wall; there it takes a new random speed (1 to 4
pixels per frame) pointing away from the wall, so trajectories branch at every bounce. Frames are the
pixel-wise maximum of the digits. Digits come from an MNIST file the user gives (``mnist.npz`` with ``x_train``/
``x_test``, or the IDX files ``train-images-idx3-ubyte[.gz]`` / ``t10k-images-idx3-ubyte[.gz]``) or, with SRC
``builtin``, from the 8x8 digits bundled with scikit-learn (upsampled), so it works offline.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np

from forecast.data.importers.writer import StorePlan, frames_variable, pixel_coords, run_import
from forecast.errors import ForecastError

BUILTIN = "builtin"


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
        return {"train": images[:cut], "test": images[cut:]}
    path = Path(src)
    if not path.exists():
        raise ForecastError(f"MNIST source not found: {path} (give mnist.npz, an IDX folder, or 'builtin')")
    if path.is_dir():
        found = {}
        for group, stem in (("train", "train-images-idx3-ubyte"), ("test", "t10k-images-idx3-ubyte")):
            candidates = [path / stem, path / f"{stem}.gz"]
            hit = next((c for c in candidates if c.exists()), None)
            if hit is None:
                raise ForecastError(f"{path} has no {stem}[.gz] (the MNIST IDX image file)")
            found[group] = _read_idx(hit)
        return found
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {"train": npz["x_train"], "test": npz["x_test"]}
        except (KeyError, ValueError, OSError) as exc:
            raise ForecastError(f"{path} is not an MNIST npz with x_train and x_test ({exc})") from None
    images = _read_idx(path)
    return {"train": images, "test": images}


def _resize_digits(images: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.stack(
        [np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BILINEAR)) for img in images]
    )


def trajectory(rng: np.random.Generator, length: int, limit: int, max_speed: int = 4) -> np.ndarray:
    """Top-left corners (length, 2) of one digit: constant velocity, random new speed at each wall."""
    position = rng.integers(0, limit + 1, size=2).astype(np.int64)
    # a random direction; a zero component would pin the digit to one row or column, so speeds are >= 1
    velocity = rng.integers(1, max_speed + 1, size=2) * rng.choice([-1, 1], size=2)
    out = np.empty((length, 2), np.int64)
    for t in range(length):
        for axis in range(2):
            if position[axis] <= 0:
                position[axis] = 0
                velocity[axis] = rng.integers(1, max_speed + 1)
            elif position[axis] >= limit:
                position[axis] = limit
                velocity[axis] = -rng.integers(1, max_speed + 1)
        out[t] = position
        position = position + velocity
    return out


def render_sequence(
    rng: np.random.Generator, digits: np.ndarray, length: int, size: int = 64, num_digits: int = 2
) -> np.ndarray:
    """One (length, size, size) uint8 sequence."""
    digit_size = digits.shape[-1]
    frames = np.zeros((length, size, size), np.uint8)
    for _ in range(num_digits):
        digit = digits[rng.integers(len(digits))]
        for t, (y, x) in enumerate(trajectory(rng, length, size - digit_size)):
            window = frames[t, y : y + digit_size, x : x + digit_size]
            np.maximum(window, digit, out=window)
    return frames


def import_smmnist(
    src: str | os.PathLike,
    out: str | os.PathLike,
    size: int = 64,
    length: int = 30,
    sequences: dict[str, int] | None = None,
    digit_size: int = 32,
    num_digits: int = 2,
    seed: int = 0,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Generate SM-MNIST sequences into a field store (train digits for `train`, test digits for `test`)."""
    sequences = sequences or {"train": 1000, "test": 100}
    if digit_size >= size:
        raise ForecastError(f"digit size {digit_size} must be smaller than the frame size {size}")
    digits = {group: _resize_digits(images, digit_size) for group, images in load_digits_images(src).items()}
    plan = StorePlan(
        variables=frames_variable((size, size), "stochastic moving digits"),
        time_length=length,
        sequence_coords={g: {"seed_index": np.arange(sequences[g])} for g in ("train", "test")},
        attrs={
            "source": "smmnist",
            "digits": str(src),
            "num_digits": num_digits,
            "digit_size": digit_size,
            "seed": seed,
        },
        coords=pixel_coords(length, size),
        fingerprint={
            "kind": "smmnist",
            "src": str(src),
            "size": size,
            "length": length,
            "sequences": sequences,
            "digit_size": digit_size,
            "num_digits": num_digits,
            "seed": seed,
        },
    )

    def sequences_for(group: str, start: int):
        # One generator per sequence, seeded by (seed, group, index): a resumed run makes the same data.
        group_id = ("train", "test").index(group)
        for index in range(start, sequences[group]):
            rng = np.random.default_rng([seed, group_id, index])
            yield {"frames": render_sequence(rng, digits[group], length, size, num_digits)}

    return run_import(out, plan, sequences_for, resume=resume, overwrite=overwrite, progress=progress)

"""Cityscapes video snippets (``leftImg8bit_sequence_trainvaltest``), as used by the paper (section 4.1).

SRC is the folder holding ``leftImg8bit_sequence`` (or that folder itself). Files are
``{split}/{city}/{city}_{seq:06d}_{frame:06d}_leftImg8bit.png``; each snippet is a run of 30 consecutive frame
numbers of one ``(city, seq)``. Snippets are cut into windows of ``length`` frames (default 30: the whole
snippet). ``train`` is the store's `train` group and ``val`` its `test` group (the official ``test`` split has
no public labels and is not used). Frames are resized so the shorter side is ``size`` (default 128), centre
cropped, and stored as RGB ``frames`` (sequence, time, channel, y, x), uint8. Per-sequence coordinates:
``city``, ``snippet`` (the seq number) and ``first_frame``.
"""

from __future__ import annotations

import functools
import os
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from forecast.data.importers.video import resize_frame
from forecast.data.importers.writer import run_import, video_plan, window_coords
from forecast.errors import ForecastError
from forecast.field_store import TEST_GROUP, TRAIN_GROUP

FILE_PATTERN = re.compile(r"^([a-z_]+)_(\d{6})_(\d{6})_leftImg8bit\.png$")
SPLITS = {TRAIN_GROUP: "train", TEST_GROUP: "val"}  # our group -> the dataset's split folder


def find_root(src: Path) -> Path:
    for candidate in (src / "leftImg8bit_sequence", src):
        if (candidate / "train").is_dir() and (candidate / "val").is_dir():
            return candidate
    raise ForecastError(
        f"no Cityscapes sequences under {src} (expected leftImg8bit_sequence/train and .../val)"
    )


def snippets(folder: Path, length: int) -> list[dict]:
    """Windows of ``length`` consecutive frames, in (city, seq, frame) order."""
    runs: dict[tuple[str, int], dict[int, Path]] = defaultdict(dict)
    for path in folder.glob("*/*.png"):
        match = FILE_PATTERN.match(path.name)
        if match:
            city, seq, frame = match.group(1), int(match.group(2)), int(match.group(3))
            runs[(city, seq)][frame] = path
    windows = []
    for (city, seq), frames in sorted(runs.items()):
        numbers = sorted(frames)
        # split into runs of consecutive frame numbers, then windows of `length`
        start = 0
        for i in range(1, len(numbers) + 1):
            if i == len(numbers) or numbers[i] != numbers[i - 1] + 1:
                run = numbers[start:i]
                for w in range(0, len(run) - length + 1, length):
                    chosen = run[w : w + length]
                    windows.append(
                        {
                            "city": city,
                            "snippet": seq,
                            "first_frame": chosen[0],
                            "paths": [frames[n] for n in chosen],
                        }
                    )
                start = i
    return windows


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise ForecastError(f"cannot read image {path}: {exc}") from None


def read_snippets(
    windows: dict[str, list[dict]], size: int, group: str, start: int
) -> Iterator[dict[str, np.ndarray]]:
    """The ``frames`` of the windows of ``group`` from ``start`` on: resized, centre-cropped, channel first."""
    for window in windows[group][start:]:
        frames = [resize_frame(_read_png(p), size, crop=True) for p in window["paths"]]
        yield {"frames": np.stack(frames).transpose(0, 3, 1, 2)}


def import_cityscapes(
    src: str | os.PathLike,
    out: str | os.PathLike,
    size: int = 128,
    length: int = 30,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Import Cityscapes snippets into a field store of RGB ``frames``."""
    root = find_root(Path(src))
    windows = {group: snippets(root / split, length) for group, split in SPLITS.items()}
    for group, items in windows.items():
        if not items:
            raise ForecastError(f"no runs of {length} consecutive frames in {root / SPLITS[group]}")
    plan = video_plan(
        "cityscapes",
        "Cityscapes frames (left 8-bit)",
        (3, size, size),
        length,
        window_coords(windows, {"city": None, "snippet": np.int32, "first_frame": np.int32}),
        attrs={"resize": "shorter side to size, centre crop"},
        fingerprint={
            "src": str(root.resolve()),
            "size": size,
            "sequences": {g: len(w) for g, w in windows.items()},
        },
    )
    read = functools.partial(read_snippets, windows, size)
    return run_import(out, plan, read, resume=resume, overwrite=overwrite, progress=progress)

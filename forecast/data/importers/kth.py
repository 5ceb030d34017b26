"""KTH Actions (Schuldt et al. 2004): 600 grey clips of 25 people doing 6 actions in 4 scenarios.

Sources are the original AVI clips ``personNN_ACTION_dK_uncomp.avi`` (any folder layout below SRC). Where
``00sequences.txt`` is present, each clip is cut into the segments it lists (``person01_boxing_d1 frames 1-95,
96-185, ...``, 1-based inclusive frame ranges); otherwise a clip is one segment. Each segment is then cut into
consecutive, non-overlapping windows of ``length`` frames (the remainder is dropped): these are the store's
sequences. Persons 1-16 form `train`, 17-25 `test` (the split of SVG-LP and later work). Per-sequence
coordinates: ``person``, ``action``, ``scenario``, ``segment``, ``start_frame`` (0-based, in the clip), ``clip``.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from forecast.data.importers.video import count_frames, read_video, resize_frame, to_gray
from forecast.data.importers.writer import run_import, video_plan, window_coords
from forecast.errors import ForecastError
from forecast.field_store import TEST_GROUP, TRAIN_GROUP

ACTIONS = ("boxing", "handclapping", "handwaving", "jogging", "running", "walking")
CLIP_PATTERN = re.compile(r"^person(\d\d)_([a-z]+)_d(\d)(?:_uncomp)?\.avi$")
TRAIN_PERSONS = range(1, 17)


def parse_sequences_file(path: str | os.PathLike) -> dict[str, list[tuple[int, int]]]:
    """``00sequences.txt`` -> {clip stem: [(first, last), ...]} with 0-based, end-exclusive frame ranges."""
    path = Path(path)
    segments: dict[str, list[tuple[int, int]]] = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        line = line.strip()
        if not line or not line.startswith("person"):
            continue
        name = line.split()[0]
        ranges = re.findall(r"(\d+)\s*-\s*(\d+)", line[len(name) :])
        if not ranges:
            raise ForecastError(f"{path}:{number}: no frame ranges in line {line!r}")
        spans = []
        for first, last in ranges:
            first, last = int(first), int(last)
            if last < first or first < 1:
                raise ForecastError(f"{path}:{number}: bad frame range {first}-{last}")
            spans.append((first - 1, last))
        segments[name] = spans
    if not segments:
        raise ForecastError(
            f"{path} lists no sequences (expected lines like 'person01_boxing_d1 frames 1-95')"
        )
    return segments


def find_clips(src: Path) -> list[Path]:
    if not src.is_dir():
        raise ForecastError(f"KTH source folder not found: {src}")
    clips = sorted((p for p in src.rglob("*.avi") if CLIP_PATTERN.match(p.name)), key=lambda p: p.name)
    if not clips:
        raise ForecastError(f"no KTH clips (personNN_ACTION_dK_uncomp.avi) under {src}")
    return clips


#: the per-sequence coordinates of a KTH store, in store order, with their dtypes (None: numpy's)
COORDS = {
    "person": np.int16,
    "action": None,
    "scenario": np.int16,
    "segment": np.int16,
    "start_frame": np.int32,
    "clip": None,
}


def kth_windows(
    src: Path,
    clips: list[Path],
    listed: dict[str, list[tuple[int, int]]],
    length: int,
    actions: tuple[str, ...],
) -> dict[str, list[dict]]:
    """The plan: per group, each window of ``length`` frames (its clip, the ``COORDS`` values and its path)."""
    windows: dict[str, list[dict]] = {TRAIN_GROUP: [], TEST_GROUP: []}
    for clip in clips:
        person, action, scenario = CLIP_PATTERN.match(clip.name).groups()
        if action not in actions:
            continue
        stem = f"person{person}_{action}_d{scenario}"
        segments = listed.get(stem) if listed else None
        if segments is None:
            segments = [(0, count_frames(clip))]
        group = TRAIN_GROUP if int(person) in TRAIN_PERSONS else TEST_GROUP
        for segment, (first, stop) in enumerate(segments):
            for start in range(first, stop - length + 1, length):
                windows[group].append(
                    {
                        "path": clip,
                        "clip": clip.name,
                        "person": int(person),
                        "action": action,
                        "scenario": int(scenario),
                        "segment": segment,
                        "start_frame": start,
                    }
                )
    for group in windows:
        if not windows[group]:
            raise ForecastError(
                f"no KTH {group} sequences of {length} frames under {src} (persons "
                f"{'1-16' if group == TRAIN_GROUP else '17-25'})"
            )
    return windows


def read_windows(
    windows: dict[str, list[dict]], size: int, length: int, crop: bool, group: str, start: int
) -> Iterator[dict[str, np.ndarray]]:
    """Read: the ``frames`` of the windows of ``group`` from ``start`` on, each clip decoded once."""
    cached: tuple[Path, np.ndarray] | None = None
    for window in windows[group][start:]:
        if cached is None or cached[0] != window["path"]:
            rgb = read_video(window["path"])
            cached = (window["path"], to_gray(rgb))
        frames = cached[1]
        first = window["start_frame"]
        if first + length > len(frames):
            raise ForecastError(
                f"{window['path']} has {len(frames)} frames; 00sequences.txt needs frames up to {first + length}"
            )
        yield {"frames": np.stack([resize_frame(f, size, crop) for f in frames[first : first + length]])}


def import_kth(
    src: str | os.PathLike,
    out: str | os.PathLike,
    size: int = 64,
    length: int = 20,
    crop: bool = False,
    actions: tuple[str, ...] = ACTIONS,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Import KTH clips into a field store of grey ``frames`` (sequence, time, y, x)."""
    src = Path(src)
    clips = find_clips(src)
    sequences_file = next(iter(sorted(src.rglob("00sequences.txt"))), None)
    listed = parse_sequences_file(sequences_file) if sequences_file else {}
    windows = kth_windows(src, clips, listed, length, actions)
    plan = video_plan(
        "kth",
        "KTH video frames (grey)",
        (size, size),
        length,
        window_coords(windows, COORDS),
        attrs={
            "sequences_file": str(sequences_file) if sequences_file else "",
            "resize": "centre crop" if crop else "whole frame to square",
        },
        fingerprint={
            "src": str(src.resolve()),
            "size": size,
            "crop": crop,
            "actions": list(actions),
            "clips": len(clips),
        },
    )
    read = functools.partial(read_windows, windows, size, length, crop)
    return run_import(out, plan, read, resume=resume, overwrite=overwrite, progress=progress)

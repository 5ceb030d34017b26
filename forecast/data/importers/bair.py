"""BAIR robot pushing (Ebert et al. 2017), from the original release, without TensorFlow.

SRC is the folder holding ``softmotion30_44k`` (or that folder itself, or its parent of ``train``/``test``).
Each ``*.tfrecords`` file holds ``tf.train.Example`` records; record ``r`` is one 30-frame clip whose frame
``i`` is the raw 64x64x3 RGB bytes under ``{i}/image_aux1/encoded`` (``--image main`` reads ``image_main``).
``train`` becomes the store's `train` group and ``test`` its `test` group; frames are stored as ``frames``
(sequence, time, channel, y, x), uint8. Per-sequence coordinates: ``file`` and ``record``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from forecast.data.importers.tfrecord import parse_example, read_record, record_offsets
from forecast.data.importers.writer import run_import, video_plan, window_coords
from forecast.errors import ForecastError
from forecast.field_store import TEST_GROUP, TRAIN_GROUP

SPLITS = {TRAIN_GROUP: "train", TEST_GROUP: "test"}  # our group -> the dataset's folder

FRAME_SIZE = 64


def find_split_folder(src: Path) -> Path:
    for candidate in (src / "softmotion30_44k", src):
        if (candidate / "train").is_dir() and (candidate / "test").is_dir():
            return candidate
    raise ForecastError(f"no BAIR release under {src} (expected softmotion30_44k/train and .../test)")


def index_records(root: Path, progress: bool) -> dict[str, list[dict]]:
    """The plan: per group, every record of its ``*.tfrecords`` files (``path``, ``file``, ``record``,
    ``offset``, ``size``), in file order."""
    records: dict[str, list[dict]] = {}
    for group, folder in SPLITS.items():
        files = sorted((root / folder).glob("*.tfrecords"))
        if not files:
            raise ForecastError(f"no *.tfrecords files in {root / folder}")
        records[group] = [
            {"path": path, "file": path.name, "record": index, "offset": offset, "size": size}
            for path in tqdm(files, desc=f"index {group}", unit="file", disable=not progress)
            for index, (offset, size) in enumerate(record_offsets(path))
        ]
    return records


def decode_record(record: dict, length: int, image: str, verify: bool) -> np.ndarray:
    """The ``length`` frames (time, channel, y, x) uint8 of one record."""
    path, index = record["path"], record["record"]
    try:
        example = parse_example(read_record(path, record["offset"], record["size"], verify=verify))
    except ValueError as exc:
        raise ForecastError(f"{path}: record {index} is not a valid Example protobuf ({exc})") from None
    expected_bytes = FRAME_SIZE * FRAME_SIZE * 3
    frames = np.empty((length, 3, FRAME_SIZE, FRAME_SIZE), np.uint8)
    for t in range(length):
        key = f"{t}/image_{image}/encoded"
        values = example.get(key)
        if not values or not isinstance(values, list):
            raise ForecastError(f"{path}: record {index} has no bytes feature {key!r}")
        if len(values[0]) != expected_bytes:
            raise ForecastError(
                f"{path}: record {index} {key} has {len(values[0])} bytes, expected {expected_bytes} (64x64x3)"
            )
        frames[t] = np.frombuffer(values[0], np.uint8).reshape(FRAME_SIZE, FRAME_SIZE, 3).transpose(2, 0, 1)
    return frames


def read_records(
    records: dict[str, list[dict]], length: int, image: str, verify: bool, group: str, start: int
) -> Iterator[dict[str, np.ndarray]]:
    """Read: the ``frames`` of the records of ``group`` from ``start`` on."""
    for record in records[group][start:]:
        yield {"frames": decode_record(record, length, image, verify)}


def import_bair(
    src: str | os.PathLike,
    out: str | os.PathLike,
    length: int = 30,
    image: str = "aux1",
    verify: bool = True,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Import BAIR tfrecords into a field store of RGB ``frames``."""
    root = find_split_folder(Path(src))
    records = index_records(root, progress)
    plan = video_plan(
        "bair",
        "BAIR robot pushing frames",
        (3, FRAME_SIZE, FRAME_SIZE),
        length,
        window_coords(records, {"file": None, "record": np.int32}),
        attrs={"image": f"image_{image}"},
        fingerprint={
            "src": str(root.resolve()),
            "image": image,
            "records": {g: len(r) for g, r in records.items()},
        },
    )
    read = functools.partial(read_records, records, length, image, verify)
    return run_import(out, plan, read, resume=resume, overwrite=overwrite, progress=progress)

import gzip

import numpy as np
import pytest

from forecast.data.importers.smmnist import import_smmnist, load_digits_images, render_sequence, trajectory
from forecast.errors import ForecastError
from forecast.store import open_field_store


def test_trajectory_stays_in_frame_and_changes_direction_at_walls(rng):
    limit = 32
    path = trajectory(rng, 400, limit)
    assert path.min() >= 0 and path.max() <= limit
    velocity = np.diff(path, axis=0)
    assert np.abs(velocity).max() <= 4
    # at the walls the speed is redrawn: several different speeds appear along one axis
    assert len(np.unique(np.abs(velocity[:, 0]))) > 2


def test_two_digits_rendered_as_uint8(rng):
    digits = np.zeros((5, 8, 8), np.uint8)
    digits[:, 2:6, 2:6] = 200
    frames = render_sequence(rng, digits, 10, size=32, num_digits=2)
    assert frames.shape == (10, 32, 32) and frames.dtype == np.uint8
    assert frames.max() == 200
    # every frame holds at least one and at most two digits' worth of pixels
    on = (frames > 0).reshape(10, -1).sum(axis=1)
    assert (on >= 16).all() and (on <= 32).all()


def test_builtin_import(tmp_path):
    pytest.importorskip("sklearn")
    out = import_smmnist(
        "builtin", tmp_path / "sm.zarr", length=5, sequences={"train": 3, "test": 2}, progress=False
    )
    train, test = open_field_store(out, "train"), open_field_store(out, "test")
    assert train.frames.shape == (3, 5, 64, 64) and test.frames.shape == (2, 5, 64, 64)
    assert train.frames.dtype == np.uint8 and int(train.frames.max()) > 100


def test_idx_file_source(tmp_path):
    images = np.zeros((6, 28, 28), np.uint8)
    images[:, 10:18, 10:18] = 255
    header = bytes([0, 0, 8, 3]) + b"".join(int(n).to_bytes(4, "big") for n in images.shape)
    for stem in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        with gzip.open(tmp_path / f"{stem}.gz", "wb") as fh:
            fh.write(header + images.tobytes())
    loaded = load_digits_images(tmp_path)
    np.testing.assert_array_equal(loaded["train"], images)
    (tmp_path / "bad").write_bytes(b"\0\0\x08\x03" + (100).to_bytes(4, "big") + b"\0" * 20)
    with pytest.raises(ForecastError, match="bad"):
        load_digits_images(tmp_path / "bad")


def test_missing_source_is_named(tmp_path):
    with pytest.raises(ForecastError, match="nowhere.npz"):
        load_digits_images(tmp_path / "nowhere.npz")

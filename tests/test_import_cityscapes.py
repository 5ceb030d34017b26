"""Cityscapes: PNG sequences in the release's folder layout, written here with Pillow."""

import numpy as np
import pytest
from PIL import Image

from forecast.data.importers.cityscapes import import_cityscapes
from forecast.errors import ForecastError
from forecast.field_store import open_field_store


def _write_snippet(folder, city, seq, first, frames, rng):
    (folder / city).mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(frames):
        image = rng.integers(0, 256, (16, 32, 3), dtype=np.uint8)
        image[:, :8] = 0  # left border: removed by the centre crop
        Image.fromarray(image).save(folder / city / f"{city}_{seq:06d}_{first + i:06d}_leftImg8bit.png")
        written.append(image)
    return written


def test_cityscapes_import(tmp_path, rng):
    root = tmp_path / "leftImg8bit_sequence"
    a = _write_snippet(root / "train", "aachen", 0, 0, 6, rng)
    _write_snippet(root / "train", "bremen", 3, 100, 6, rng)
    _write_snippet(root / "train", "bremen", 3, 200, 4, rng)  # too short for a window of 6
    v = _write_snippet(root / "val", "lindau", 1, 19, 6, rng)
    _write_snippet(root / "test", "berlin", 0, 0, 6, rng)  # the official test split is not used
    out = import_cityscapes(tmp_path, tmp_path / "c.zarr", size=8, length=6, progress=False)
    train = open_field_store(out, "train", chunks=None)
    test = open_field_store(out, "test", chunks=None)
    assert train.frames.shape == (2, 6, 3, 8, 8) and test.frames.shape == (1, 6, 3, 8, 8)
    assert list(train.city.values) == ["aachen", "bremen"] and list(train.first_frame.values) == [0, 100]
    assert list(test.city.values) == ["lindau"]
    # shorter side 16 -> 8 (factor 2): width 32 -> 16, centre crop keeps columns 4..12 of the half-size frame
    half = np.asarray(Image.fromarray(a[2]).resize((16, 8), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(train.frames.values[0, 2], half[:, 4:12].transpose(2, 0, 1))
    half = np.asarray(Image.fromarray(v[0]).resize((16, 8), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(test.frames.values[0, 0], half[:, 4:12].transpose(2, 0, 1))


def test_broken_png_is_named(tmp_path, rng):
    root = tmp_path / "leftImg8bit_sequence"
    _write_snippet(root / "train", "aachen", 0, 0, 3, rng)
    _write_snippet(root / "val", "lindau", 0, 0, 3, rng)
    bad = root / "train" / "aachen" / "aachen_000000_000001_leftImg8bit.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(ForecastError, match="aachen_000000_000001_leftImg8bit.png"):
        import_cityscapes(tmp_path, tmp_path / "c.zarr", size=8, length=3, progress=False)
    with pytest.raises(ForecastError, match="no Cityscapes sequences"):
        import_cityscapes(tmp_path / "elsewhere", tmp_path / "d.zarr", progress=False)

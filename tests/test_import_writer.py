"""The shared store writer: layout, completeness flag, resume after an interruption, refusal to mix imports."""

import numpy as np
import pytest
import xarray as xr

from forecast.data.importers.smmnist import import_smmnist
from forecast.data.importers.writer import (
    FieldStoreWriter,
    StorePlan,
    frames_variable,
    pixel_coords,
    run_import,
)
from forecast.errors import ForecastError
from forecast.field_store import is_complete, open_field_store


def _plan(n_train=4, n_test=2, length=3, size=8, tag="a"):
    return StorePlan(
        variables=frames_variable((size, size)),
        time_length=length,
        sequence_coords={"train": {"index": np.arange(n_train)}, "test": {"index": np.arange(n_test)}},
        coords=pixel_coords(length, size),
        fingerprint={"kind": "test", "tag": tag},
    )


def _sequence(group, index, length=3, size=8):
    return {"frames": np.full((length, size, size), (index + 1) * (1 if group == "train" else 50), np.uint8)}


def test_store_follows_the_conventions(tmp_path):
    out = run_import(
        tmp_path / "s.zarr",
        _plan(),
        lambda g, s: (_sequence(g, i) for i in range(s, 4 if g == "train" else 2)),
        progress=False,
    )
    ds = open_field_store(out, "train", chunks=None)
    assert ds.frames.dims == ("sequence", "time", "y", "x")
    assert ds.frames.dtype == np.uint8
    assert ds.frames.attrs["units"] and ds.frames.attrs["long_name"]
    assert ds.x.attrs["units"] == "1" and ds.x.attrs["axis"] == "X"
    np.testing.assert_array_equal(ds.frames.values[:, 0, 0, 0], [1, 2, 3, 4])
    test = open_field_store(out, "test", chunks=None)
    np.testing.assert_array_equal(test.frames.values[:, 0, 0, 0], [50, 100])
    # a chunk holds whole frames and one sequence
    assert ds.frames.encoding["chunks"][0] == 1 and ds.frames.encoding["chunks"][2:] == (8, 8)


def test_interrupted_import_is_incomplete_and_resumes(tmp_path):
    path = tmp_path / "s.zarr"
    calls = []

    def failing(group, start):
        for i in range(start, 4 if group == "train" else 2):
            if group == "train" and i == 2:
                raise KeyboardInterrupt
            calls.append((group, i))
            yield _sequence(group, i)

    with pytest.raises(KeyboardInterrupt):
        run_import(path, _plan(), failing, progress=False)
    assert not is_complete(path)
    with pytest.raises(ForecastError, match="incomplete"):
        open_field_store(path)
    with pytest.raises(ForecastError, match="--resume"):
        run_import(path, _plan(), failing, progress=False)

    def rest(group, start):
        calls.append(("start", group, start))
        return (_sequence(group, i) for i in range(start, 4 if group == "train" else 2))

    run_import(path, _plan(), rest, resume=True, progress=False)
    assert ("start", "train", 2) in calls  # finished sequences were not produced again
    assert is_complete(path)
    np.testing.assert_array_equal(open_field_store(path, chunks=None).frames.values[:, 0, 0, 0], [1, 2, 3, 4])


def test_resume_refuses_a_different_import(tmp_path):
    path = tmp_path / "s.zarr"
    FieldStoreWriter(path, _plan(tag="a"))
    with pytest.raises(ForecastError, match="different sources or options"):
        FieldStoreWriter(path, _plan(tag="b"), resume=True)


def test_wrong_shape_from_an_importer_is_named(tmp_path):
    bad = lambda g, s: iter([{"frames": np.zeros((3, 4, 4), np.uint8)}])  # noqa: E731
    with pytest.raises(ForecastError, match=r"train sequence 0: frames has shape \(3, 4, 4\)"):
        run_import(tmp_path / "s.zarr", _plan(), bad, progress=False)


def test_smmnist_resume_equals_uninterrupted(tmp_path, monkeypatch):
    whole = import_smmnist(
        "builtin", tmp_path / "a.zarr", length=6, sequences={"train": 4, "test": 2}, progress=False
    )
    import forecast.data.importers.smmnist as sm

    real = sm.render_sequence
    count = {"n": 0}

    def flaky(*args, **kwargs):
        count["n"] += 1
        if count["n"] == 3:
            raise RuntimeError("power cut")
        return real(*args, **kwargs)

    monkeypatch.setattr(sm, "render_sequence", flaky)
    with pytest.raises(RuntimeError):
        import_smmnist(
            "builtin", tmp_path / "b.zarr", length=6, sequences={"train": 4, "test": 2}, progress=False
        )
    monkeypatch.setattr(sm, "render_sequence", real)
    resumed = import_smmnist(
        "builtin",
        tmp_path / "b.zarr",
        length=6,
        sequences={"train": 4, "test": 2},
        resume=True,
        progress=False,
    )
    for group in ("train", "test"):
        a, b = open_field_store(whole, group).load(), open_field_store(resumed, group).load()
        assert a.attrs.pop("history") != "" and b.attrs.pop("history") != ""  # when each was written
        xr.testing.assert_identical(a, b)

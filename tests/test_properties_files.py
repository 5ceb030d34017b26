"""Property-based round trips (hypothesis): field stores and forecast files through their writers and readers.

Generated: shapes (1-4 cells a side, 1-3 channels or none), variable names and dtypes, the source's time axis
(none, frame index, regular float with units, irregular float, dates), netCDF or zarr sources, inits, members.
Checked: every value comes back where the conventions of docs/formats.md put it, the coordinates derive from the
source's as documented, and the files open without a warning. Example counts are stated per test.
"""

import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast.data.importers.fields import import_fields
from forecast.field_store import open_field_store
from forecast.forecast_file import ForecastFileWriter, ForecastSettings, Init, open_forecast

NAMES = ["u", "v", "p", "temperature", "q_2", "Vx"]
TIME_KINDS = ["none", "index", "regular", "irregular", "dates"]


def _time_coord(kind: str, n: int, step: float):
    """The source's time coordinate of ``kind`` (None: no coordinate), and what it should become in a store."""
    if kind == "none":
        return None
    if kind == "index":
        return ("t", np.arange(n))
    if kind == "regular":
        return ("t", 10.0 + step * np.arange(n), {"units": "s"})
    if kind == "irregular":
        return ("t", np.cumsum(np.arange(1, n + 1) ** 2 * step), {"units": "s"})
    return ("t", np.datetime64("2020-01-01") + np.arange(n) * np.timedelta64(6, "h"))


@st.composite
def sources(draw):
    """A gridded source dataset (dims sample, t, [channel,] lat, lon) and how it was made."""
    n_seq, n_t = draw(st.integers(2, 4)), draw(st.integers(2, 5))
    ny, nx = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    channels = draw(st.sampled_from([None, 1, 3]))
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    time_kind = draw(st.sampled_from(TIME_KINDS))
    step = draw(st.sampled_from([0.5, 1.0, 0.1]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    frame_dims = (*(("channel",) if channels else ()), "lat", "lon")
    frame_shape = (*((channels,) if channels else ()), ny, nx)
    data_vars = {}
    for name in names:
        dtype = draw(st.sampled_from(["float32", "float64", "int16"]))
        values = rng.normal(0, 100, (n_seq, n_t, *frame_shape)).astype(dtype)
        data_vars[name] = (
            ("sample", "t", *frame_dims),
            values,
            {"units": "m s-1", "long_name": f"the {name}"},
        )
    coords = {
        "lat": np.linspace(-1, 1, ny),
        "lon": np.arange(nx) * 2.5,
        "reynolds": ("sample", 100.0 * np.arange(n_seq)),
    }
    time = _time_coord(time_kind, n_t, step)
    if time is not None:
        coords["t"] = time
    fmt = draw(st.sampled_from(["nc", "zarr"]))
    return xr.Dataset(data_vars, coords=coords), time_kind, fmt


@settings(max_examples=12)
@given(sources())
def test_field_store_round_trip(case):
    source, time_kind, fmt = case
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"src.{fmt}"
        with warnings.catch_warnings():  # zarr 3 on writing consolidated metadata (the source, not our store)
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            source.to_netcdf(src) if fmt == "nc" else source.to_zarr(src)
        out = import_fields(src, Path(tmp) / "f.zarr", test_fraction=0.4, progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            groups = {g: open_field_store(out, g, chunks=None).load() for g in ("train", "test")}
    seen = []
    for ds in groups.values():
        assert set(ds.data_vars) == set(source.data_vars)
        for name, da in source.data_vars.items():
            want_dtype = np.float32 if da.dtype.kind == "f" else da.dtype  # floats stored as float32
            assert ds[name].dtype == want_dtype
            assert ds[name].dims[:2] == ("sequence", "time") and ds[name].dims[-2:] == ("y", "x")
            assert ds[name].attrs["units"] == "m s-1" and ds[name].attrs["long_name"] == f"the {name}"
            for row, origin in enumerate(ds.source_sequence.values):
                np.testing.assert_array_equal(ds[name].values[row], da.values[origin].astype(want_dtype))
        np.testing.assert_array_equal(ds.reynolds.values, source.reynolds.values[ds.source_sequence.values])
        np.testing.assert_array_equal(ds.y.values, source.lat.values)
        np.testing.assert_array_equal(ds.x.values, source.lon.values)
        n_t = source.sizes["t"]
        steps = np.diff(source.t.values) if time_kind in ("regular", "irregular") else None
        if steps is not None and np.allclose(steps, steps[0]):  # regular (two frames always are): time since
            # the sequence's first frame, in the source's units
            np.testing.assert_allclose(ds.time.values, ds.time.values[1] * np.arange(n_t))
            assert ds.time.values[1] == source.t.values[1] - source.t.values[0]
            assert ds.time.attrs["units"] == "s"
        else:  # no numeric regular time: frame index
            np.testing.assert_array_equal(ds.time.values, np.arange(n_t))
        seen.extend(ds.source_sequence.values.tolist())
    assert sorted(seen) == list(range(source.sizes["sample"]))  # train and test split the sequences


@st.composite
def forecasts(draw):
    """A store group (sequence, time, [channel,] y, x) and the settings of a forecast made from it."""
    context, horizon = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    n_seq = draw(st.integers(1, 3))
    n_t = context + horizon + draw(st.integers(0, 3))
    ny, nx = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    channels = draw(st.sampled_from([None, 1, 3]))
    names = tuple(draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True)))
    frame_dims = (*(("channel",) if channels else ()), "y", "x")
    frame_shape = (*((channels,) if channels else ()), ny, nx)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    data_vars = {
        name: (("sequence", "time", *frame_dims), rng.normal(size=(n_seq, n_t, *frame_shape)).astype(np.float32),
               {"units": "K", "long_name": name})
        for name in names
    }  # fmt: skip
    coords = {
        "y": np.arange(ny) * 0.25,
        "x": np.arange(nx) * 0.5,
        "reynolds": ("sequence", 50.0 + np.arange(n_seq)),
    }
    time_kind = draw(st.sampled_from(TIME_KINDS))
    time = _time_coord(time_kind, n_t, 0.5)
    if time is not None:
        coords["time"] = ("time", *time[1:])
    source = xr.Dataset(data_vars, coords=coords)
    starts = st.tuples(st.integers(0, n_seq - 1), st.integers(0, n_t - context - horizon))
    inits = tuple(Init(s, t) for s, t in draw(st.lists(starts, min_size=1, max_size=4)))
    members = draw(st.integers(1, 3))
    settings_ = ForecastSettings(
        model="generated", variables=names, inits=inits, members=members, context=context, horizon=horizon,
        sampler="ddim", steps=None, sampling_steps=2, eta=0.0, seed=draw(st.integers(0, 9)), member_chunk=members,
        amp=False, capture="none", channels_last=False, starts="even",
    )  # fmt: skip
    return source, settings_, time_kind, draw(st.permutations(range(len(inits))))


@settings(max_examples=25)
@given(forecasts())
def test_forecast_file_round_trip(case):
    """Members, truth and context come back where written (inits written in any order); init/valid/lead times
    derive from the store's time as docs/formats.md says; the file opens without a warning."""
    source, fs, time_kind, order = case
    rng = np.random.default_rng(0)
    written = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "f.nc"
        writer = ForecastFileWriter(out, fs, source)
        for index in order:
            init = fs.inits[index]
            window = source.isel(
                sequence=init.sequence, time=slice(init.start, init.start + fs.context + fs.horizon)
            )
            writer.write_observed(index, window)
            fields = {
                v: rng.normal(size=(fs.members, fs.horizon, *source[v].shape[2:])).astype(np.float32)
                for v in fs.variables
            }
            writer.write_members(index, 0, fields)
            writer.finish_init(index)
            written[index] = (window, fields)
        assert writer.commit() == out and not writer.partial.exists()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ds = open_forecast(out).load()
    assert ds.sizes["init"] == len(fs.inits) and ds.sizes["member"] == fs.members
    assert ds.attrs["variables"] == " ".join(fs.variables) and ds.attrs["model"] == "generated"
    for index, (window, fields) in written.items():
        for v in fs.variables:
            np.testing.assert_array_equal(ds[v].values[index], fields[v])
            np.testing.assert_array_equal(ds[f"{v}_obs"].values[index], window[v].values[fs.context :])
            np.testing.assert_array_equal(ds[f"{v}_context"].values[index], window[v].values[: fs.context])
    first = np.array([i.start + fs.context for i in fs.inits])
    np.testing.assert_array_equal(ds.sequence.values, [i.sequence for i in fs.inits])
    np.testing.assert_array_equal(ds.reynolds.values, source.reynolds.values[[i.sequence for i in fs.inits]])
    valid = ds.valid_time.values
    if time_kind in ("none", "index"):
        np.testing.assert_array_equal(valid, first[:, None] + np.arange(fs.horizon))
        np.testing.assert_array_equal(ds.lead_time.values, np.arange(1, fs.horizon + 1))
    else:
        store_time = source.time.values
        want = store_time[first[:, None] + np.arange(fs.horizon)]
        if time_kind == "dates":  # written as seconds since the first frame, decoded back to the same dates
            np.testing.assert_array_equal(valid.astype("datetime64[s]"), want.astype("datetime64[s]"))
        else:
            np.testing.assert_allclose(valid, want)
        np.testing.assert_array_equal(ds.init_time.values, ds.valid_time.values[:, 0])
        np.testing.assert_array_equal(
            ds.forecast_reference_time.values, store_time[first - 1].astype(valid.dtype)
        )
        if time_kind != "irregular":  # a regular axis: lead = k frame steps
            lead = ds.lead_time.values
            step = lead[0]
            assert all(lead[k] == (k + 1) * step for k in range(fs.horizon))
    assert math.isclose(len(ds.context_time), fs.context)

"""Gridded fields from netCDF, zarr and plain HDF5 (PDEBench's 2-D CFD layout)."""

import numpy as np
import pytest
import xarray as xr

from forecast.cli import main
from forecast.data.importers.fields import import_fields
from forecast.errors import ForecastError
from forecast.field_store import open_field_store


@pytest.fixture
def source(rng):
    return xr.Dataset(
        {
            "u": (
                ("sample", "t", "lat", "lon"),
                rng.normal(size=(5, 12, 6, 7)),
                {"units": "m s-1", "long_name": "east"},
            ),
            "p": (("t", "lat", "lon"), rng.normal(size=(12, 6, 7))),
            "mask": (("lat", "lon"), np.ones((6, 7))),
        },
        coords={
            "t": ("t", np.arange(12) * 0.5, {"units": "s"}),
            "lat": np.linspace(-5, 5, 6),
            "reynolds": ("sample", np.arange(5) * 100.0),
        },
    )


@pytest.mark.parametrize("fmt", ["nc", "zarr"])
def test_split_by_sequence(tmp_path, source, fmt):
    src = tmp_path / f"src.{fmt}"
    source.to_netcdf(src) if fmt == "nc" else source.to_zarr(src)
    out = import_fields(src, tmp_path / "f.zarr", dims={"sequence": "sample"}, progress=False)
    train, test = open_field_store(out, "train", chunks=None), open_field_store(out, "test", chunks=None)
    assert set(train.data_vars) == {"u", "p"}  # `mask` lacks time
    assert train.u.dims == ("sequence", "time", "y", "x") and train.u.dtype == np.float32
    np.testing.assert_allclose(train.u.values, source.u.values[:4].astype(np.float32))
    np.testing.assert_allclose(test.u.values[0], source.u.values[4].astype(np.float32))
    np.testing.assert_allclose(test.p.values[0], source.p.values.astype(np.float32))  # broadcast over samples
    assert train.u.attrs["units"] == "m s-1" and train.p.attrs["units"] == "unknown"
    np.testing.assert_allclose(train.time.values, np.arange(12) * 0.5)
    np.testing.assert_allclose(test.y.values, source.lat.values)
    assert list(test.reynolds.values) == [400.0]


def test_split_by_time_in_windows(tmp_path, source):
    source.to_netcdf(tmp_path / "src.nc")
    out = import_fields(
        tmp_path / "src.nc",
        tmp_path / "f.zarr",
        variables=["u"],
        dims={"sequence": "sample"},
        by="time",
        test_fraction=0.25,
        length=3,
        progress=False,
    )
    train, test = open_field_store(out, "train", chunks=None), open_field_store(out, "test", chunks=None)
    assert train.sizes == {"sequence": 15, "time": 3, "y": 6, "x": 7}  # 5 samples x 9 frames / 3
    assert test.sizes["sequence"] == 5
    row = int(np.flatnonzero((train.source_sequence.values == 2) & (train.start_index.values == 6))[0])
    np.testing.assert_allclose(train.u.values[row], source.u.values[2, 6:9].astype(np.float32))
    np.testing.assert_allclose(test.u.values[4], source.u.values[4, 9:12].astype(np.float32))


def test_pdebench_style_hdf5(tmp_path, rng):
    h5py = pytest.importorskip("h5py")
    vx = rng.normal(size=(3, 5, 8, 6)).astype(np.float32)  # (sample, t, x, y) as in PDEBench 2-D CFD
    with h5py.File(tmp_path / "2D_CFD.hdf5", "w") as fh:
        fh["Vx"] = vx
        fh["density"] = vx + 1
        fh["t-coordinate"] = np.arange(6.0)
        fh["x-coordinate"] = np.arange(8.0)
    code = main(
        [
            "data",
            "import",
            "fields",
            str(tmp_path / "2D_CFD.hdf5"),
            str(tmp_path / "f.zarr"),
            "--dims",
            "sequence=phony_dim_0,time=phony_dim_1,x=phony_dim_2,y=phony_dim_3",
            "--rename",
            "Vx=u",
            "--test-fraction",
            "0.34",
            "--no-progress",
        ]
    )
    assert code == 0
    train = open_field_store(tmp_path / "f.zarr", "train", chunks=None)
    assert set(train.data_vars) == {"u", "density"}
    np.testing.assert_allclose(train.u.values, vx[:2].transpose(0, 1, 3, 2))  # to (y, x)


def test_errors_name_the_problem(tmp_path, source, capsys):
    source.to_netcdf(tmp_path / "src.nc")
    with pytest.raises(ForecastError, match="no dimension 'samples'"):
        import_fields(tmp_path / "src.nc", tmp_path / "a.zarr", dims={"sequence": "samples"}, progress=False)
    with pytest.raises(ForecastError, match=r"no variable\(s\) \['v'\]"):
        import_fields(tmp_path / "src.nc", tmp_path / "a.zarr", variables=["v"], progress=False)
    nan = source.copy(deep=True)
    nan["u"][1, 3, 2, 2] = np.nan
    nan.to_netcdf(tmp_path / "nan.nc")
    with pytest.raises(ForecastError, match="'u' has NaNs"):
        import_fields(tmp_path / "nan.nc", tmp_path / "b.zarr", dims={"sequence": "sample"}, progress=False)
    (tmp_path / "junk.nc").write_bytes(b"not a netcdf file")
    assert main(["data", "import", "fields", str(tmp_path / "junk.nc"), str(tmp_path / "c.zarr")]) == 2
    assert "junk.nc" in capsys.readouterr().err

"""The vortex-street generator's plumbing: store layout, resume, completeness, divergence, CLI."""

import numpy as np
import pytest
import zarr

from forecast.cli import main
from forecast.errors import ForecastError
from forecast.field_store import is_complete, open_field_store
from simulators.karman import KarmanConfig, SimulationDiverged, generate
from simulators.karman import parallel as karman_parallel
from simulators.karman import writer as karman_writer
from simulators.karman.analysis import shedding_frequency, williamson_strouhal

# A tiny channel (32x96 cells, D = 2): seconds per run, the kernels compile once per process.
TINY = dict(frames=6, test_frames=2, every=8, size=(32, 32), spinup=16, write_batch=4, time_chunk=2)


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("karman") / "tiny.zarr"
    config = KarmanConfig(reynolds=(100.0, 150.0), **TINY)
    generate(path, config, scheduler="synchronous", progress=False)
    return path, config


def test_store_layout_coordinates_and_attributes(tiny_store):
    path, config = tiny_store
    assert is_complete(path)
    train, test = open_field_store(path, "train"), open_field_store(path, "test")
    for ds, n_time in ((train, 6), (test, 2)):
        assert set(ds.data_vars) == {"u", "v", "rho", "vorticity"}
        for name in ds.data_vars:
            assert ds[name].dims == ("sequence", "time", "y", "x")
            assert ds[name].shape == (2, n_time, 32, 32)
            assert ds[name].attrs["units"] and ds[name].attrs["long_name"]
            assert ds[name].chunks[1][0] == 2  # a few frames per chunk along time
        np.testing.assert_allclose(ds["reynolds"].values, [100.0, 150.0])
        np.testing.assert_allclose(ds["viscosity"].values, 0.05 * 2.0 / np.array([100.0, 150.0]))
        assert float(ds["cylinder_diameter"][0]) == 2.0 and float(ds["inflow_velocity"][0]) == 0.05
        assert ds.attrs["frame_interval"] == 8 and ds.attrs["stencil"] == "D2Q9"
        assert "cumulant" in ds.attrs["collision"] and ds.attrs["lbmpy_version"]
        assert ds["x"].attrs["units"] == "1" and "lattice cells" in ds["x"].attrs["long_name"]
    # the test frames follow the train frames of the same run
    np.testing.assert_array_equal(test["time"].values, [6, 7])
    np.testing.assert_array_equal(train["lattice_step"].values, 16 + 8 * np.arange(1, 7))
    u = train["u"].values
    assert np.isfinite(u).all()
    # a real flow: near the inflow speed upstream, at rest inside the cylinder, and the frames change in time
    assert abs(float(train["u"].isel(sequence=0, time=-1, x=1).mean()) - 0.05) < 0.01
    assert float(train["u"].isel(sequence=0, time=-1).sel(x=8, y=15)) == 0.0
    assert np.abs(u[0, -1] - u[0, 0]).max() > 1e-4
    assert not np.allclose(u[0], u[1])  # the two Reynolds numbers differ


def test_frames_are_stored_with_the_writers_codec(tiny_store):
    path, _ = tiny_store
    root = zarr.open_group(str(path), mode="r")
    for group in ("train", "test"):
        for name in ("u", "v", "rho", "vorticity"):
            codecs = root[group][name].metadata.to_dict()["codecs"]
            assert codecs[-1]["name"] == "blosc"
            assert codecs[-1]["configuration"]["cname"] == "lz4"
            assert codecs[-1]["configuration"]["shuffle"] == "shuffle"


def test_vorticity_is_the_curl_of_the_stored_velocity(tiny_store):
    path, _ = tiny_store
    ds = open_field_store(path, "train").isel(sequence=1, time=-1).load()
    curl = np.gradient(ds["v"].values, axis=1) - np.gradient(ds["u"].values, axis=0)
    inner = (slice(2, -2), slice(12, -2))  # away from the cylinder (zeroed inside) and the window edges
    np.testing.assert_allclose(ds["vorticity"].values[inner], curl[inner], atol=1e-6)


def test_downsampling_keeps_lattice_coordinates(tmp_path):
    config = KarmanConfig(
        reynolds=(100.0,), **{**TINY, "size": (16, 16), "frames": 2, "test_frames": 1}, scale=2
    )
    generate(tmp_path / "s.zarr", config, scheduler="synchronous", progress=False)
    ds = open_field_store(tmp_path / "s.zarr", "train")
    assert ds["u"].shape == (1, 2, 16, 16)
    np.testing.assert_allclose(ds["x"].values[:3], [0.5, 2.5, 4.5])  # block centres on the 32-cell grid
    assert ds.attrs["downsampling"] == 2


def test_incomplete_store_is_refused_and_resume_skips_finished_runs(tmp_path, monkeypatch):
    path = tmp_path / "half.zarr"
    config = KarmanConfig(reynolds=(100.0, 150.0), **TINY)
    real_run = karman_parallel.simulate_run
    computed = []

    def interrupted(path_, config_, index):
        if index == 1:
            raise KeyboardInterrupt  # the user stops the generation during the second run
        computed.append(index)
        return real_run(path_, config_, index)

    monkeypatch.setattr(karman_parallel, "simulate_run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate(path, config, scheduler="synchronous", progress=False)
    assert not is_complete(path)
    with pytest.raises(ForecastError, match="incomplete"):
        open_field_store(path, "train")
    assert list(karman_writer.frames_written(path)) == [8, 0]
    first_run = zarr.open_group(str(path))["train"]["u"][0]

    # without --resume the store is not silently replaced
    with pytest.raises(ForecastError, match="--resume"):
        generate(path, config, scheduler="synchronous", progress=False)
    # resuming with other options is refused
    with pytest.raises(ForecastError, match="different options.*frames"):
        generate(
            path,
            KarmanConfig(reynolds=(100.0, 150.0), **{**TINY, "frames": 4}),
            resume=True,
            scheduler="synchronous",
            progress=False,
        )

    computed.clear()
    monkeypatch.setattr(
        karman_parallel, "simulate_run", lambda p, c, i: computed.append(i) or real_run(p, c, i)
    )
    result = generate(path, config, scheduler="synchronous", progress=False, resume=True)
    assert computed == [1] and result.skipped == [0]  # the finished run is not recomputed
    assert is_complete(path)
    ds = open_field_store(path, "train")
    np.testing.assert_array_equal(ds["u"].values[0], first_run)  # untouched
    assert np.isfinite(ds["u"].values[1]).all() and np.abs(ds["u"].values[1]).max() > 0


def test_divergence_is_a_one_line_error_naming_run_reynolds_and_step(tmp_path):
    # SRT at omega -> 2 on a coarse grid blows up within a few hundred steps
    config = KarmanConfig(
        reynolds=(5.0, 1e6), collision="srt", allow_underresolved=True, **{**TINY, "spinup": 2000}
    )
    with pytest.raises(SimulationDiverged) as info:
        generate(tmp_path / "bad.zarr", config, scheduler="synchronous", progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert "run 1" in message and "Re = 1e+06" in message and "lattice step" in message
    assert "--collision cumulant" in message
    assert not is_complete(tmp_path / "bad.zarr")


def test_cli_exit_codes_and_messages(tmp_path, capsys):
    out = tmp_path / "cli.zarr"
    args = [
        "simulate",
        "karman",
        str(out),
        "--reynolds",
        "120",
        "--frames",
        "2",
        "--test-frames",
        "1",
        "--every",
        "8",
        "--size",
        "32",
        "--spinup",
        "16",
        "--scheduler",
        "synchronous",
        "--quiet",
    ]
    assert main(args) == 0
    assert "wrote" in capsys.readouterr().out
    assert open_field_store(out, "test")["u"].shape == (1, 1, 32, 32)
    # existing store without --resume/--overwrite: one line, exit 2
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume" in err
    # a finished store resumes to a no-op
    assert main([*args, "--resume"]) == 0
    assert "skipped finished runs [0]" in capsys.readouterr().out
    # bad options
    assert main(["simulate", "karman", str(tmp_path / "x.zarr"), "--velocity", "0.9"]) == 2
    assert "Mach" in capsys.readouterr().err
    assert main(["simulate", "karman", str(tmp_path / "x.zarr"), "--size", "1", "2", "3"]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "karman", str(tmp_path / "x.zarr"), "--collision", "magic"])
    assert exit_info.value.code == 2


def test_shedding_frequency_of_a_known_signal():
    interval = 128.0
    t = np.arange(400)
    frequency = 1 / (9.37 * interval)  # ~9.4 frames per period, as in the default dataset
    signal = np.sin(2 * np.pi * frequency * interval * t + 0.3) + 0.05
    assert abs(shedding_frequency(signal, interval) / frequency - 1) < 2e-3
    with pytest.raises(ForecastError, match="cycles"):
        shedding_frequency(np.ones(50), interval)
    # Williamson (1988): St(100) = 0.1643, St(150) = 0.1834
    assert williamson_strouhal(100.0) == pytest.approx(0.164335)
    assert williamson_strouhal(150.0) == pytest.approx(0.183423, abs=1e-6)


@pytest.mark.slow
def test_local_processes_run_in_parallel_and_a_divergence_stops_the_other_run(tmp_path):
    config = KarmanConfig(reynolds=(100.0, 150.0), **TINY)
    result = generate(tmp_path / "pool.zarr", config, workers=2, progress=False)
    assert sorted(r.index for r in result.runs) == [0, 1]
    assert np.isfinite(open_field_store(tmp_path / "pool.zarr", "test")["u"].values).all()
    # run 1 diverges in its spin-up; run 0 would take minutes, and is stopped instead
    bad = KarmanConfig(
        reynolds=(5.0, 1e6),
        collision="srt",
        allow_underresolved=True,
        **{**TINY, "spinup": 2000, "frames": 200_000, "time_chunk": 500, "write_batch": 500},
    )
    with pytest.raises(SimulationDiverged, match="run 1 .Re = 1e\\+06. diverged at lattice step"):
        generate(tmp_path / "bad.zarr", bad, workers=2, progress=False)
    assert karman_writer.frames_written(tmp_path / "bad.zarr")[0] < bad.frames_per_run
    assert not is_complete(tmp_path / "bad.zarr")


def test_streaming_target_starts_initialised():
    # lbmpy allocates the second PDF array with np.empty; its ghost layers are read before they are written, so
    # recycled memory once diverged a healthy run depending on which tests ran before. It must start defined.
    from simulators.karman.lattice import build_lattice

    lattice = build_lattice(KarmanConfig(reynolds=(100.0,), **TINY), 100.0)
    arrays = lattice.step.data_handling.cpu_arrays
    np.testing.assert_array_equal(arrays["karman_pdfTmp"], arrays[lattice.step.pdf_array_name])


def test_store_opens_whole_without_warnings_and_carries_cf_metadata(tiny_store):
    import warnings

    import xarray as xr

    path, _ = tiny_store
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tree = xr.open_datatree(str(path), engine="zarr")
        root = xr.open_zarr(str(path))
        train = xr.open_zarr(str(path), group="train")
    assert root["frames_written"].dims == ("sequence",)
    assert set(tree.children) == {"train", "test"}
    for ds in (tree.to_dataset(), train):
        assert ds.attrs["Conventions"].startswith("CF-") and ds.attrs["title"]
        assert ds.attrs["history"] and "lbmpy" in ds.attrs["source"]
    assert {train[c].attrs.get("axis") for c in ("x", "y", "time")} == {"X", "Y", "T"}
    assert sorted(c for c in train.coords if "axis" in train[c].attrs) == ["time", "x", "y"]
    for name, da in {**train.coords, **train.data_vars}.items():
        assert da.attrs.get("long_name"), name
        # UDUNITS has no lattice units: dimensionless, and the long_name says "lattice"
        if "units" in da.attrs:
            assert da.attrs["units"] == "1", name
    assert "lattice units" in train["u"].attrs["long_name"]
    assert train.attrs["resolution_warning"].startswith("under-resolved")  # D = 2 at Re 150: flagged


def test_unresolvable_reynolds_number_is_refused_with_the_remedy(tmp_path, capsys):
    with pytest.raises(ForecastError, match="cells per diameter.*Re <=") as info:
        KarmanConfig(reynolds=(200_000.0,), diameter=2)
    assert "\n" not in str(info.value) and "--allow-underresolved" in str(info.value)
    assert KarmanConfig(reynolds=(400.0,)).resolution_issue() is None  # the paper's dataset (D = 8)
    assert KarmanConfig(reynolds=(200_000.0,), diameter=2, allow_underresolved=True).resolution_issue()
    assert (
        main(["simulate", "karman", str(tmp_path / "x.zarr"), "--reynolds", "200000", "--diameter", "2"]) == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "under-resolved" in err
    assert not (tmp_path / "x.zarr").exists()


def test_a_store_from_the_previous_version_is_upgraded_to_open_whole(tiny_store, tmp_path):
    import json
    import shutil
    import warnings

    import xarray as xr

    from forecast.field_store import upgrade_store

    old = tmp_path / "old.zarr"
    shutil.copytree(tiny_store[0], old)
    # what the previous version wrote: a root array without dimension names, no consolidated metadata
    for meta_file, drop in (
        (old / "frames_written" / "zarr.json", "dimension_names"),
        (old / "zarr.json", None),
    ):
        meta = json.loads(meta_file.read_text())
        meta.pop(drop or "consolidated_metadata", None)
        meta_file.write_text(json.dumps(meta))
    assert open_field_store(old, "train")["u"].shape[0] == 2  # the project's own reader never needed them
    with pytest.raises(KeyError, match="dimension_names"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # xarray also warns that there is no consolidated metadata
        xr.open_datatree(str(old), engine="zarr")
    assert upgrade_store(old) == ["frames_written"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tree = xr.open_datatree(str(old), engine="zarr")
    assert tree["frames_written"].dims == ("sequence",)
    assert upgrade_store(old) == []  # idempotent

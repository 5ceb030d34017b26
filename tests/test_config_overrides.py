"""Bringing your own data without writing YAML: `--set KEY=VALUE` and the store's variables by default.

The path a new user takes (docs/guide/your-own-data.md): a PDEBench-style HDF5 file imported with `forecast data
import fields`, then `forecast train STORE --config tiny`, whose variables are the vortex street's.
"""

import numpy as np
import pytest
import yaml
from training_helpers import karman_like_store, toy_config, toy_factory

import forecast.models
from forecast.cli import main
from forecast.errors import ForecastError
from forecast.training.config import override_config, parse_assignments, resolve_config
from forecast.training.trainer import with_store_variables


def test_assignments_are_read_as_yaml():
    parsed = parse_assignments(["data.variables=[u, v]", "training.steps=500", "training.lr=1e-4",
                                "data.channels=null", "model.kind=vd", "training.grad_clip="])  # fmt: skip
    assert parsed == {"data.variables": ["u", "v"], "training.steps": 500, "training.lr": "1e-4",
                      "data.channels": None, "model.kind": "vd", "training.grad_clip": None}  # fmt: skip
    for bad in ("training.steps", "=5", "data.variables=[u,"):
        with pytest.raises(ForecastError, match="--set"):
            parse_assignments([bad])


def test_overrides_set_any_key_and_are_checked_like_the_file():
    config = {"model": {"kind": "rvd", "dim": 16}, "data": {"variables": ["u"]}, "training": {"steps": 3}}
    out = override_config(config, {"data.variables": ["u", "v"], "training.steps": 500, "model.dim": 32,
                                   "diffusion.steps": 50})  # fmt: skip
    assert out["data"]["variables"] == ["u", "v"] and out["training"]["steps"] == 500
    assert out["model"]["dim"] == 32 and out["diffusion"] == {"steps": 50}
    assert config["training"]["steps"] == 3  # the original is left alone
    resolved = resolve_config(override_config(config, {"training.lr": "1e-4"}))
    assert resolved["training"]["lr"] == 1e-4
    with pytest.raises(ForecastError, match=r"unknown keys in 'training': \['stepz'\]"):
        resolve_config(override_config(config, {"training.stepz": 5}))
    with pytest.raises(ForecastError, match="training.steps must be int"):
        resolve_config(override_config(config, {"training.steps": "many"}))
    with pytest.raises(ForecastError, match="SECTION.KEY"):
        override_config(config, {"optimizer.lr": 1})
    with pytest.raises(ForecastError, match="model.dim is not a mapping"):
        override_config(config, {"model.dim.width": 1})


def test_a_config_without_variables_trains_on_the_stores(tmp_path):
    store = karman_like_store(tmp_path / "k.zarr")
    config = {"model": {"kind": "rvd"}, "data": {"variables": None}}
    assert with_store_variables(config, store)["data"]["variables"] == ["u", "v", "vorticity"]
    assert with_store_variables({"model": {}}, store)["data"]["variables"] == ["u", "v", "vorticity"]
    pinned = {"model": {}, "data": {"variables": ["v"]}}
    assert with_store_variables(pinned, store) is pinned
    with pytest.raises(ForecastError, match=r"\['rho'\] are not in .*--set data.variables=\[u,v,vorticity\]"):
        with_store_variables({"model": {}, "data": {"variables": ["u", "rho"]}}, store)


def test_data_group_is_honoured(tmp_path, monkeypatch):
    from forecast.training import Trainer

    store = karman_like_store(tmp_path / "k.zarr", n_seq=2, n_time=10)  # train: 2 sequences, test: 1
    config = toy_config(steps=1)
    trained = {}
    for group in ("train", "test"):
        trainer = Trainer(override_config(config, {"data.group": group}), store, tmp_path / group,
                          model_factory=toy_factory, device="cpu", progress=False, log=lambda m: None)  # fmt: skip
        trained[group] = (len(trainer.dataset), trainer.layout.mean)
        trainer.close()
    assert trained["train"][0] == 2 * trained["test"][0]  # windows come from the group named
    assert trained["train"][1] != trained["test"][1]  # and so do the normalisation statistics
    with pytest.raises(ForecastError, match="data.group must be one of"):
        resolve_config(override_config(config, {"data.group": "truth"}))


@pytest.fixture
def pdebench_store(tmp_path):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(0)
    vx = rng.normal(size=(3, 8, 32, 32)).astype(np.float32)  # (sample, t, x, y) as in PDEBench 2-D CFD
    with h5py.File(tmp_path / "2D_CFD.hdf5", "w") as fh:
        fh["Vx"], fh["Vy"], fh["density"] = vx, -vx, vx + 1
    store = tmp_path / "cfd.zarr"
    dims = "sequence=phony_dim_0,time=phony_dim_1,x=phony_dim_2,y=phony_dim_3"
    argv = ["data", "import", "fields", str(tmp_path / "2D_CFD.hdf5"), str(store), "--dims", dims,
            "--test-fraction", "0.34", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    return str(store)


def test_a_new_users_store_trains_with_set_and_the_run_records_it(
    pdebench_store, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(forecast.models, "build_model", toy_factory, raising=False)  # a small model, same CLI
    run = tmp_path / "run"
    base = [
        "train",
        pdebench_store,
        "--config",
        "tiny",
        "--out",
        str(run),
        "--device",
        "cpu",
        "--no-progress",
    ]
    # the shipped config names the vortex street's variables: one line saying how to choose the store's
    assert main([*base, "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--set data.variables=[Vx,Vy,density]" in err
    assert main([*base, "--set", "data.variables=[Vx,density]", "training.steps=2", "--set", "training.lr=1e-3",
                 "training.checkpoint_every=1"]) == 0  # fmt: skip
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["variables"] == ["Vx", "density"] and saved["training"]["steps"] == 2
    assert saved["training"]["lr"] == 1e-3 and saved["model"]["kind"] == "rvd"  # the rest is tiny's
    assert "trained to step 2" in capsys.readouterr().out
    # null: all of the store's variables, recorded by name
    assert main([*base, "--set", "data.variables=null", "training.steps=1", "--overwrite"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["variables"] == ["Vx", "Vy", "density"]
    # a --set of the steps applies on --resume, as --steps does
    assert main([*base, "--set", "data.variables=null", "training.steps=2", "--resume"]) == 0
    assert "trained to step 2" in capsys.readouterr().out
    # a typo is an error, as in the file
    assert main([*base, "--set", "training.stepz=3", "--overwrite", "--dry-run"]) == 2
    assert "unknown keys in 'training'" in capsys.readouterr().err

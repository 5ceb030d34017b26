"""`forecast train`: dry run, training, resume and one-line errors through the CLI."""

import pytest
import yaml
from training_helpers import karman_like_store, toy_config, toy_factory

import forecast.models
from forecast.cli import main


@pytest.fixture
def setup(tmp_path, monkeypatch):
    # the CLI builds models through forecast.models.build_model; train the test model instead
    monkeypatch.setattr(forecast.models, "build_model", toy_factory, raising=False)
    store = karman_like_store(tmp_path / "k.zarr", n_seq=2, n_time=10)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(toy_config(steps=4, checkpoint_every=2)))
    return store, str(config), tmp_path / "run"


def test_dry_run_prints_parameters_and_writes_nothing(setup, capsys):
    store, config, run = setup
    assert main(["train", store, "--config", config, "--out", str(run), "--dry-run", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    n = sum(p.numel() for p in toy_factory(toy_config(), 3).parameters())
    assert f"parameters: {n}\n" in out and "batch (2, 5, 3, 16, 24)" in out
    assert not run.exists()


def test_train_then_resume(setup, capsys):
    store, config, run = setup
    assert main(["train", store, "--config", config, "--out", str(run), "--no-progress"]) == 0
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "metrics.csv").is_file()
    assert "trained to step 4" in capsys.readouterr().out
    assert (
        main(
            [
                "train",
                store,
                "--config",
                config,
                "--out",
                str(run),
                "--resume",
                "--steps",
                "6",
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "resumed from step 4" in out and "trained to step 6" in out


def test_errors_are_one_line_with_exit_status_2(setup, capsys, tmp_path):
    store, config, run = setup
    run.mkdir()
    (run / "something").write_text("x")
    assert main(["train", store, "--config", config, "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists and is not empty; use --resume" in err
    assert (
        main(["train", str(tmp_path / "missing.zarr"), "--config", config, "--out", str(tmp_path / "r2")])
        == 2
    )
    assert "no field store" in capsys.readouterr().err
    assert main(["train", store, "--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "r3")]) == 2
    assert "cannot read config" in capsys.readouterr().err

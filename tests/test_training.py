"""The training loop: run directory, exact resume, checkpoints, load_run, refusals, schedule and EMA."""

import copy
import csv
import os
from dataclasses import replace

import pytest
import torch
import yaml
from training_helpers import ConvNextFrame, karman_like_store, toy_config, toy_factory, video_store

import forecast.device as device_module
from forecast.errors import ForecastError
from forecast.training import Trainer, learning_rate, load_run, resolve_config
from forecast.training.config import parse_training_config
from forecast.training.ema import EMA


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return karman_like_store(tmp_path_factory.mktemp("k") / "k.zarr", n_seq=2, n_time=12, ny=16, nx=24)


def _train(config, store, run_dir, max_steps=None, resume=False, **kw):
    trainer = Trainer(
        config,
        store,
        run_dir,
        model_factory=toy_factory,
        resume=resume,
        progress=False,
        log=lambda s: None,
        **kw,
    )
    trainer.run_loop(max_steps=max_steps)
    return trainer


def _metrics(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_run_directory_contents(store, tmp_path):
    run = tmp_path / "run"
    trainer = _train(toy_config(), store, run)
    assert trainer.step == 6
    assert {p.name for p in run.iterdir()} == {
        "config.yaml",
        "normalization.json",
        "metrics.csv",
        "checkpoints",
    }
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["last.pt"]  # no temp files left behind
    rows = _metrics(run)
    assert [int(r["step"]) for r in rows] == [2, 4, 6] and all(float(r["loss"]) > 0 for r in rows)
    saved = yaml.safe_load(open(run / "config.yaml"))
    assert (
        saved == trainer.config
        and saved["training"]["lr"] == 5e-5
        and saved["training"]["lr_decay_steps"] == 6
    )
    payload = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert payload["step"] == 6 and payload["data"]["position"] == 6 and payload["config"] == trainer.config
    assert set(payload) >= {"model", "ema", "optimizers", "rng", "elapsed_s", "metrics"}


def test_training_lowers_the_loss(store, tmp_path):
    config = toy_config(steps=60, lr=3e-3, lr_final=1e-3, log_every=10, checkpoint_every=60)
    rows = _metrics(_train(config, store, tmp_path / "run").run_dir)
    assert float(rows[-1]["loss"]) < 0.5 * float(rows[0]["loss"])


def _state(trainer):
    return (
        {k: v.clone() for k, v in trainer.model.state_dict().items()},
        {k: v.clone() for k, v in trainer.ema.state_dict().items()},
        copy.deepcopy(trainer.mode.optimizers["model"].state_dict()["state"]),
    )


@pytest.mark.parametrize("workers", [0, 2])
def test_interrupted_and_resumed_run_equals_straight_run(store, tmp_path, workers):
    config = toy_config(steps=8, checkpoint_every=2, num_workers=workers)
    straight = _train(config, store, tmp_path / "straight")
    _train(config, store, tmp_path / "resumed", max_steps=4)  # "interrupted" after the checkpoint at step 4
    messages = []
    resumed = Trainer(
        config,
        store,
        tmp_path / "resumed",
        model_factory=toy_factory,
        resume=True,
        progress=False,
        log=messages.append,
    )
    assert resumed.step == 4
    resumed.run_loop()
    assert "resumed from step 4" in messages
    for a, b in zip(_state(straight), _state(resumed)):
        for key in a:
            if isinstance(a[key], dict):
                for k in a[key]:
                    assert torch.equal(a[key][k], b[key][k]), (key, k)
            else:
                assert torch.equal(a[key], b[key]), key
    assert _metrics(tmp_path / "straight") == [
        {**r, "samples_per_s": s["samples_per_s"], "elapsed_s": s["elapsed_s"]}
        for r, s in zip(_metrics(tmp_path / "resumed"), _metrics(tmp_path / "straight"))
    ]


def test_resume_drops_metrics_rows_after_the_checkpoint(store, tmp_path):
    run = tmp_path / "run"
    _train(toy_config(steps=6, checkpoint_every=4, log_every=1), store, run)
    # pretend the run died at step 6 before its final checkpoint: rewind the checkpoint to step 4
    _train(toy_config(steps=4, checkpoint_every=4, log_every=1), store, tmp_path / "four")
    (run / "checkpoints" / "last.pt").write_bytes(
        (tmp_path / "four" / "checkpoints" / "last.pt").read_bytes()
    )
    config = toy_config(steps=6, checkpoint_every=4, log_every=1)
    config["training"]["lr_decay_steps"] = 6
    trainer = Trainer(
        config, store, run, model_factory=toy_factory, resume=True, progress=False, log=lambda s: None
    )
    trainer._prepare()
    assert [int(r["step"]) for r in _metrics(run)] == [1, 2, 3, 4]


def test_steps_can_be_extended_on_resume(store, tmp_path):
    run = tmp_path / "run"
    _train(toy_config(steps=4), store, run)
    trainer = _train(toy_config(steps=4), store, run, resume=True, steps=6)
    assert trainer.step == 6 and trainer.config["training"]["lr_decay_steps"] == 4


def test_existing_run_directory_is_refused_without_resume(store, tmp_path):
    run = tmp_path / "run"
    _train(toy_config(steps=2), store, run)
    with pytest.raises(ForecastError, match="exists and is not empty; use --resume"):
        Trainer(toy_config(), store, run, model_factory=toy_factory)


def test_resume_with_a_different_model_config_is_refused(store, tmp_path):
    run = tmp_path / "run"
    _train(toy_config(steps=2), store, run)
    config = toy_config()
    config["model"]["hidden"] = 4
    with pytest.raises(ForecastError, match="section 'model' differs"):
        Trainer(config, store, run, model_factory=toy_factory, resume=True)


def test_checkpoint_that_does_not_fit_its_config_is_refused(store, tmp_path):
    run = tmp_path / "run"
    _train(toy_config(steps=2), store, run)
    other = tmp_path / "other"
    config = toy_config(steps=2)
    config["model"]["hidden"] = 4
    _train(config, store, other)
    (run / "checkpoints" / "last.pt").write_bytes((other / "checkpoints" / "last.pt").read_bytes())
    with pytest.raises(ForecastError, match="does not match"):
        Trainer(toy_config(), store, run, model_factory=toy_factory, resume=True)
    with pytest.raises(ForecastError, match="does not match"):
        load_run(run, model_factory=toy_factory)


def test_load_run_gives_the_ema_model_in_eval_mode(store, tmp_path):
    run = tmp_path / "run"
    trainer = _train(toy_config(steps=4), store, run)
    loaded = load_run(run, model_factory=toy_factory)
    assert isinstance(loaded.model, ConvNextFrame) and not loaded.model.training
    assert loaded.step == 4 and loaded.checkpoint == run / "checkpoints" / "last.pt"
    assert loaded.layout == trainer.layout and loaded.config == trainer.config
    for k, v in loaded.model.state_dict().items():
        assert torch.equal(v, trainer.ema.state_dict()[k])
    raw = load_run(run, ema=False, model_factory=toy_factory)
    for k, v in raw.model.state_dict().items():
        assert torch.equal(v, trainer.model.state_dict()[k])
    assert any(not torch.equal(v, raw.model.state_dict()[k]) for k, v in loaded.model.state_dict().items())


def test_load_run_refuses_missing_or_corrupt_runs(store, tmp_path):
    with pytest.raises(ForecastError, match="no run directory"):
        load_run(tmp_path / "nothing", model_factory=toy_factory)
    run = tmp_path / "run"
    _train(toy_config(steps=2), store, run)
    (run / "checkpoints" / "last.pt").write_bytes(b"garbage")
    with pytest.raises(ForecastError, match="corrupt"):
        load_run(run, model_factory=toy_factory)
    (run / "checkpoints" / "last.pt").unlink()
    with pytest.raises(ForecastError, match="no checkpoint"):
        load_run(run, model_factory=toy_factory)


def test_checkpoint_with_code_is_refused(store, tmp_path):
    run = tmp_path / "run"
    _train(toy_config(steps=2), store, run)
    payload = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    payload["evil"] = ConvNextFrame  # a class: only a full unpickler would load it
    torch.save(payload, run / "checkpoints" / "last.pt")
    with pytest.raises(ForecastError, match="corrupt or not a checkpoint"):
        load_run(run, model_factory=toy_factory)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["model"].update(spatial_multiple=16), "divisible by 16"),
        (lambda c: c["data"].update(channels=2), "expects 2 channels"),
        (lambda c: c["data"].update(future_frames=11), "too few for a window of 13"),
        (lambda c: c["data"].update(variables=["pressure"]), "not in the store"),
        (lambda c: c["training"].update(bacth_size=2), "unknown keys in 'training'"),
        (lambda c: c["training"].update(lr="fast"), "training.lr must be float"),
        (lambda c: c["training"].update(lr_schedule="step"), "lr_schedule"),
    ],
)
def test_config_that_does_not_fit_is_refused_before_training(store, tmp_path, change, message):
    config = toy_config()
    change(config)
    with pytest.raises(ForecastError, match=message):
        Trainer(config, store, tmp_path / "run", model_factory=toy_factory)
    assert not (tmp_path / "run").exists()


def test_yaml_number_strings_are_accepted():
    config = toy_config(lr="5e-5", lr_final="2e-5")
    training = resolve_config(config)["training"]
    assert training["lr"] == 5e-5 and training["lr_final"] == 2e-5


def test_video_store_trains(tmp_path):
    store = video_store(tmp_path / "v.zarr", n_seq=2, n_time=8, size=16)
    trainer = _train(toy_config(variables=["frames"], steps=2), store, tmp_path / "run")
    assert trainer.layout.n_channels == 3 and trainer.model.net[0].in_channels == 3


def test_learning_rate_schedules():
    base = parse_training_config(toy_config(steps=100, lr=5e-5, lr_final=2e-5))
    assert learning_rate(0, base) == pytest.approx(5e-5)
    assert learning_rate(50, base) == pytest.approx(3.5e-5)
    assert learning_rate(100, base) == pytest.approx(2e-5) == learning_rate(500, base)
    cosine = replace(base, lr_schedule="cosine")
    assert learning_rate(0, cosine) == pytest.approx(5e-5)
    assert learning_rate(50, cosine) == pytest.approx(3.5e-5)
    assert learning_rate(100, cosine) == pytest.approx(2e-5)
    assert learning_rate(25, cosine) > learning_rate(25, base)
    warm = replace(base, warmup_steps=10)
    assert learning_rate(0, warm) == pytest.approx(5e-6) and learning_rate(9, warm) == pytest.approx(5e-5)
    assert learning_rate(50, replace(base, lr_schedule="constant")) == 5e-5


def test_ema_update_is_the_exponential_average():
    model = torch.nn.Linear(2, 1)
    start = model.weight.detach().clone()
    ema = EMA(model, decay=0.9, warmup=False)
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model, step=0)
    ema.update(model, step=1)
    # two steps toward start + 1: start + 1 - 0.9**2
    torch.testing.assert_close(ema.state_dict()["weight"], start + 1 - 0.81)
    assert EMA(model, decay=0.999, warmup=True).decay_at(0) == pytest.approx(0.1)


def test_bf16_autocast_path(store, tmp_path, monkeypatch):
    # the bf16 path with CPU autocast (whatever this CPU's flags: bf16 is emulated where not native): weights and
    # EMA stay float32
    monkeypatch.setattr(device_module, "cpu_supports_bf16", lambda: True)
    trainer = _train(toy_config(steps=2, precision="bf16"), store, tmp_path / "run")
    assert trainer.autocast_dtype == torch.bfloat16
    assert all(v.dtype == torch.float32 for v in trainer.ema.state_dict().values() if v.is_floating_point())
    assert all(float(r["loss"]) > 0 for r in _metrics(tmp_path / "run"))


def test_resume_without_a_run_starts_one(store, tmp_path):
    messages = []
    trainer = Trainer(
        toy_config(steps=2),
        store,
        tmp_path / "run",
        model_factory=toy_factory,
        resume=True,
        log=messages.append,
    )
    assert trainer.step == 0 and "holds no run to resume" in messages[0]


def test_resume_with_another_batch_size_is_refused(store, tmp_path):
    _train(toy_config(steps=2), store, tmp_path / "run")
    with pytest.raises(ForecastError, match="training.batch_size differs"):
        Trainer(toy_config(batch_size=3), store, tmp_path / "run", model_factory=toy_factory, resume=True)


def test_num_workers_auto_and_explicit(store, tmp_path):
    auto = Trainer(toy_config(), store, tmp_path / "a", model_factory=toy_factory, device="cpu")
    assert auto.training.num_workers == "auto" and auto.data_workers() == 0
    explicit = Trainer(
        toy_config(num_workers=2), store, tmp_path / "b", model_factory=toy_factory, device="cpu"
    )
    assert explicit.data_workers() == 2
    with pytest.raises(ForecastError, match="num_workers"):
        resolve_config(toy_config(num_workers=-1))


# ---------------------------------------------------------------------------------------- the loop's contract
def test_run_loop_returns_the_final_metrics(store, tmp_path):
    trainer = Trainer(toy_config(steps=4), store, tmp_path / "run", model_factory=toy_factory, progress=False)
    final = trainer.run_loop()
    assert trainer.run_loop() == final  # nothing left to train
    last = _metrics(tmp_path / "run")[-1]
    assert final["step"] == 4 and final["stopped"] == "steps"
    assert f"{final['loss']:.6g}" == last["loss"] and f"{final['lr']:.6g}" == last["lr"]
    # a finished run returns the same metrics without training (read from the checkpoint)
    again = _train(toy_config(steps=4), store, tmp_path / "run", resume=True)
    assert again.run_loop() == final
    assert len(_metrics(tmp_path / "run")) == 2


def test_time_budget_stops_the_run_and_counts_over_resumes(store, tmp_path):
    run = tmp_path / "run"
    config = toy_config(steps=1000, time_budget_s=0.0, checkpoint_every=100, log_every=100)
    final = _train(config, store, run).run_loop()
    # a spent budget still trains one step, so that every run has a checkpoint, and logs and saves where it stops
    assert final["step"] == 1 and final["stopped"] == "time_budget"
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"] == 1
    assert [int(r["step"]) for r in _metrics(run)] == [1]
    resumed = _train(config, store, run, resume=True)  # the budget is spent: nothing more
    assert resumed.step == 1
    # a larger budget (or none) on resume continues the run
    longer = _train(config, store, run, resume=True, steps=3, time_budget_s=1e9)
    assert longer.step == 3 and longer.config["training"]["time_budget_s"] == 1e9


class _NaNAfter(ConvNextFrame):
    def __init__(self, n_channels, bad_from):
        super().__init__(n_channels)
        self.calls, self.bad_from = 0, bad_from

    def loss(self, window, n_context):
        self.calls += 1
        loss = super().loss(window, n_context)
        return loss * float("nan") if self.calls > self.bad_from else loss


@pytest.mark.parametrize(("log_every", "caught_at"), [(2, "log"), (10, "save")])
def test_non_finite_loss_stops_before_a_checkpoint_is_written(store, tmp_path, log_every, caught_at):
    config = toy_config(steps=8, log_every=log_every, checkpoint_every=2)
    trainer = Trainer(
        config, store, tmp_path / "run", model_factory=lambda c, n: _NaNAfter(n, bad_from=2), progress=False
    )
    with pytest.raises(ForecastError, match=r"loss became nan between steps [02] and 4;.*step 2, is intact"):
        trainer.run_loop()
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)["step"] == 2


def test_a_step_does_not_wait_for_the_device(store, tmp_path, monkeypatch):
    """Host synchronisations (reading a float tensor's value) happen per log interval, not per step.

    Adam's step counters are read every step, but they live on the CPU by design (no device synchronisation).
    """
    import sys

    reads = []
    for name in ("item", "tolist", "__float__", "__bool__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if self.is_floating_point() and f"torch{os.sep}optim" not in caller:
                reads.append(1)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    counts = []
    for steps in (4, 12):
        reads.clear()
        config = toy_config(steps=steps, log_every=steps, checkpoint_every=steps)
        _train(config, store, tmp_path / f"run{steps}")
        counts.append(len(reads))
    assert counts[0] == counts[1]


def test_old_format_checkpoints_still_load_and_resume(store, tmp_path):
    run = tmp_path / "run"
    _train(toy_config(steps=2), store, run)
    payload = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    # format 1: one optimizer under "optimizer", no training time, metrics or mode state
    old = {k: v for k, v in payload.items() if k not in ("optimizers", "elapsed_s", "metrics", "mode")}
    old.update(format=1, optimizer=payload["optimizers"]["model"])
    torch.save(old, run / "checkpoints" / "last.pt")
    assert load_run(run, model_factory=toy_factory).step == 2
    assert _train(toy_config(steps=2), store, run, resume=True, steps=4).step == 4
    torch.save({**old, "format": 99}, run / "checkpoints" / "last.pt")
    with pytest.raises(ForecastError, match="has format 99, this version reads formats 1, 2"):
        load_run(run, model_factory=toy_factory)


def test_a_training_mode_can_bring_its_own_optimizers_and_metrics(store, tmp_path, monkeypatch):
    from forecast.training import mode_registry, modes

    class Alternating(modes.TrainingMode):
        """Two optimizers over two halves of the network, stepped in turn (as a GAN's two players are)."""

        name = "alternating"
        extra_metrics = ("turn",)

        def __init__(self, trainer):
            super().__init__(trainer)
            first, second = trainer.model.net[0], trainer.model.net[3]
            self.groups = {"first": list(first.parameters()), "second": list(second.parameters())}
            self.optimizers = {k: modes.adam(p, trainer.training) for k, p in self.groups.items()}
            self.turns = 0

        def step(self, window):
            name = ("first", "second")[self.turns % 2]
            self.turns += 1
            with self.trainer.autocast():
                loss = self.trainer.module(window, self.trainer.n_context)
            norm = modes.backward_and_step(loss, self.optimizers[name], self.groups[name], None)
            return {"loss": loss.detach(), "grad_norm": norm, "turn": torch.tensor(float(self.turns % 2))}

        def state_dict(self):
            return {"turns": self.turns}

        def load_state_dict(self, state):
            self.turns = state["turns"]

    monkeypatch.setitem(mode_registry.MODES, "alternating", Alternating)
    config = toy_config(steps=4, mode="alternating", log_every=1, checkpoint_every=2)
    straight = _train(config, store, tmp_path / "straight")
    assert [r["turn"] for r in _metrics(tmp_path / "straight")] == ["1", "0", "1", "0"]
    payload = torch.load(tmp_path / "straight" / "checkpoints" / "last.pt", weights_only=True)
    assert set(payload["optimizers"]) == {"first", "second"} and payload["mode"] == {"turns": 4}
    _train(config, store, tmp_path / "resumed", max_steps=2)
    resumed = _train(config, store, tmp_path / "resumed", resume=True)
    assert resumed.mode.turns == 4
    for k, v in straight.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    with pytest.raises(ForecastError, match="training.mode must be one of"):
        resolve_config(toy_config(mode="adversarial_typo"))


def test_channels_last_switch(store, tmp_path):
    trainer = _train(toy_config(steps=2, channels_last=True), store, tmp_path / "run")
    weight = trainer.model.net[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    assert all(float(r["loss"]) > 0 for r in _metrics(tmp_path / "run"))


@pytest.mark.slow  # torch.compile builds C++ kernels: tens of seconds on a CPU
def test_compiled_training_matches_eager(store, tmp_path, monkeypatch):
    import torch._inductor.config as inductor_config

    # inductor draws random numbers with its own generator unless told to fall back to eager's; the diffusion
    # step and noise of each window are random, so without this the two runs see different draws
    monkeypatch.setattr(inductor_config, "fallback_random", True)
    _train(toy_config(steps=2, log_every=1), store, tmp_path / "eager")
    compiled = _train(toy_config(steps=2, log_every=1, compile=True), store, tmp_path / "compiled")
    assert type(compiled.module).__name__ == "OptimizedModule"
    eager, compiled_rows = _metrics(tmp_path / "eager"), _metrics(tmp_path / "compiled")
    assert len(eager) == len(compiled_rows) == 2
    # the first step sees the same weights and batch: the compiled graph computes the same loss
    assert float(eager[0]["loss"]) == pytest.approx(float(compiled_rows[0]["loss"]), rel=1e-4)
    # after an Adam update float differences in near-zero gradients become whole steps (Adam divides by the
    # gradient's own scale), so later losses agree to a looser tolerance
    assert float(eager[1]["loss"]) == pytest.approx(float(compiled_rows[1]["loss"]), rel=1e-3)


def test_rvd_with_sigma_per_pixel_trains_resumes_and_loads_with_its_fitted_map(store, tmp_path):
    """sigma: auto_pixel's buffer takes the frames' size during training; the EMA, the checkpoint, an exact resume
    and load_run all carry that shape (a model built from the config alone has a buffer of 1 x 1)."""
    model = {
        "kind": "rvd",
        "dim": 8,
        "denoiser_mults": [1, 2],
        "transform_mults": [1, 2],
        "sigma": "auto_pixel",
    }
    config = {
        "model": model,
        "diffusion": {"steps": 10},
        "data": {"variables": ["u", "v"], "context_frames": 2, "future_frames": 1},
        "training": {"batch_size": 2, "steps": 2, "checkpoint_every": 1, "log_every": 1, "seed": 0},
    }

    def train(run, max_steps=None, resume=False):
        trainer = Trainer(config, store, tmp_path / run, resume=resume, progress=False, log=lambda s: None)
        trainer.run_loop(max_steps=max_steps)
        return trainer

    straight = train("straight")
    assert straight.model.residual_mean_square.shape == (1, 2, 16, 24)
    assert straight.ema.state_dict()["residual_mean_square"].shape == (1, 2, 16, 24)
    train("resumed", max_steps=1)
    resumed = train("resumed", resume=True)
    assert resumed.step == 2
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    loaded = load_run(tmp_path / "straight")
    torch.testing.assert_close(
        loaded.model.residual_mean_square, straight.ema.state_dict()["residual_mean_square"]
    )


def test_precision_bf16_autocasts_and_fp32_changes_nothing(monkeypatch):
    """bf16: the forward pass's matrix products run in bf16 inside the Trainer's autocast region; fp32 (and auto
    on a CPU) adds no region at all; bf16 on a CPU without AVX512-BF16 or AMX is one line."""
    cpu = torch.device("cpu")
    layer, x = torch.nn.Linear(4, 3), torch.randn(2, 4)
    monkeypatch.setattr(device_module, "cpu_supports_bf16", lambda: True)
    assert device_module.training_autocast_dtype("bf16", cpu) == torch.bfloat16
    with torch.autocast("cpu", dtype=device_module.training_autocast_dtype("bf16", cpu)):
        assert layer(x).dtype == torch.bfloat16
    for precision in ("fp32", "auto"):
        assert device_module.training_autocast_dtype(precision, cpu) is None
    monkeypatch.setattr(device_module, "cpu_supports_bf16", lambda: False)
    with pytest.raises(
        ForecastError, match="training.precision bf16 needs a CPU with avx512_bf16 or amx_bf16"
    ):
        device_module.training_autocast_dtype("bf16", cpu)
    assert device_module.training_autocast_dtype("fp32", cpu) is None
    with pytest.raises(ForecastError, match="training.precision must be"):
        parse_training_config({"training": {"precision": "fp16"}})


def test_cpu_bf16_support_is_read_from_the_cpu_flags(tmp_path):
    for flags, native in (
        ("fpu avx512f avx512_bf16", True),
        ("fpu amx_tile amx_bf16", True),
        ("fpu avx2", False),
    ):
        info = tmp_path / "cpuinfo"
        info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        assert device_module.cpu_supports_bf16(str(info)) is native

import gzip
import hashlib

import numpy as np
import pytest

from forecast.data.importers.smmnist import import_smmnist, load_digits_images, render_sequence, trajectory
from forecast.errors import ForecastError
from forecast.field_store import open_field_store


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


def test_cli_refuses_to_overwrite_and_resumes_a_complete_store(tmp_path, capsys):
    pytest.importorskip("sklearn")
    from forecast.cli import main

    args = ["data", "import", "smmnist", "builtin", str(tmp_path / "s.zarr"), "--length", "4"]
    args += ["--train-sequences", "2", "--test-sequences", "1", "--no-progress"]
    assert main(args) == 0
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0  # nothing left to do
    assert (
        main([*args[:-5], "--length", "5", "--train-sequences", "2", "--test-sequences", "1", "--resume"])
        == 2
    )
    assert "different sources or options" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--seed", "3"]) == 0
    assert open_field_store(tmp_path / "s.zarr").attrs["seed"] == 3


def test_builtin_digits_are_scikit_learns():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    from forecast.data.importers.smmnist import _builtin_digits

    expected = np.clip(np.rint(sklearn_datasets.load_digits().images * (255.0 / 16.0)), 0, 255).astype(
        np.uint8
    )
    np.testing.assert_array_equal(_builtin_digits(), expected)


# SHA-256 of the frames and the walk below, as the code before the fork points (662252d^, render_sequence and
# trajectory whole) wrote them; the code since gives the same bytes.
GOLDEN_FRAMES_SHA256 = "4e3388e057a97bb9b7f3dbfd7f82cb5f0e6e00ea315b094f6050c6fe67f15c92"
GOLDEN_WALK_SHA256 = "916134aeb7bebf89ea36fe1783fb978a3f3eb88a8129c8158afc9458e6785e41"


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def test_render_sequence_is_unchanged_by_the_fork_points():
    # digit_paths/render split render_sequence; the frames of a seed must stay what they were (the stored
    # datasets and their resume depend on it): the same random draws, in the same order
    from forecast.data.importers.smmnist import digit_paths, render

    digits = np.random.default_rng(1).integers(0, 255, (4, 8, 8)).astype(np.uint8)
    frames = render_sequence(np.random.default_rng([0, 1, 3]), digits, 20, size=32)
    assert frames.shape == (20, 32, 32) and frames.dtype == np.uint8 and frames.any()
    assert _sha256(frames) == GOLDEN_FRAMES_SHA256
    paths = digit_paths(np.random.default_rng([0, 1, 3]), digits, 20, size=32)
    np.testing.assert_array_equal(render(paths, 32), frames)
    # and the walk itself is the old trajectory(): first corner drawn, then the bounces
    walk = trajectory(np.random.default_rng(5), 50, 24)
    assert walk.shape == (50, 2) and walk.min() >= 0 and walk.max() <= 24
    assert _sha256(walk.astype(np.int64)) == GOLDEN_WALK_SHA256


def test_truth_futures_start_from_the_test_state_with_their_own_bounces(tmp_path):
    pytest.importorskip("sklearn")
    import xarray as xr

    out = import_smmnist(
        "builtin",
        tmp_path / "sm.zarr",
        size=32,
        digit_size=12,
        length=20,
        sequences={"train": 2, "test": 6},
        truth_members=6,
        truth_inits=4,
        truth_horizon=10,
        truth_context=3,
        progress=False,
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tree = xr.open_datatree(str(out), engine="zarr")  # every group, no warnings
    assert set(tree.children) == {"train", "test", "truth"} and tree.attrs["Conventions"].startswith("CF-")
    test = open_field_store(out, "test").load()
    truth = xr.open_zarr(str(out), group="truth").load()
    assert truth["frames"].dims == ("init", "member", "lead_time", "y", "x")
    assert truth["frames"].shape == (4, 6, 10, 32, 32) and truth["frames"].dtype == np.uint8
    np.testing.assert_array_equal(truth["sequence"].values, [0, 2, 3, 5])
    np.testing.assert_array_equal(truth["init_time"].values, [3, 5, 8, 10])  # context before, horizon after
    np.testing.assert_array_equal(truth["lead_time"].values, np.arange(1, 11))
    differ = 0
    for i in range(4):
        seq, t0 = int(truth["sequence"][i]), int(truth["init_time"][i])
        members = truth["frames"].isel(init=i).values
        verifying = test["frames"].isel(sequence=seq).sel(time=t0 + np.arange(10)).values
        # lead 1 is where the digits already were headed: every member shows the verifying frame
        for m in range(6):
            np.testing.assert_array_equal(members[m, 0], verifying[0])
        # until a digit reaches a wall the motion is deterministic, so members agree with the truth at first
        # and at least some leave it later (independent bounces)
        differ += int((members[:, -1] != verifying[-1]).any())
    assert differ >= 1
    # a member's future is a new draw: not all members equal each other at the last lead
    last = truth["frames"].isel(lead_time=-1).values
    assert any(len({m.tobytes() for m in last[i]}) > 1 for i in range(4))


def test_truth_starts_must_fit_the_sequences():
    from forecast.data.importers.smmnist import truth_starts

    with pytest.raises(ForecastError, match="--length"):
        truth_starts(10, 12, 2, 4, 10)
    with pytest.raises(ForecastError, match="--truth-inits"):
        truth_starts(1, 12, 5, 2, 8)


def test_cli_truth_options(tmp_path):
    pytest.importorskip("sklearn")
    import xarray as xr

    from forecast.cli import main

    args = ["data", "import", "smmnist", "builtin", str(tmp_path / "s.zarr"), "--length", "8", "--size", "32"]
    args += ["--digit-size", "12", "--train-sequences", "1", "--test-sequences", "2", "--no-progress"]
    args += ["--truth-members", "3", "--truth-inits", "2", "--truth-horizon", "4", "--truth-context", "2"]
    assert main(args) == 0
    truth = xr.open_zarr(str(tmp_path / "s.zarr"), group="truth")
    assert truth["frames"].shape == (2, 3, 4, 32, 32)
    np.testing.assert_array_equal(truth["init_time"].values, [2, 4])
    assert main([*args[:-1], "9", "--overwrite"]) == 2  # context 9 + horizon 4 do not fit 8 frames

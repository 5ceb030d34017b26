"""Training windows: what a window holds, that only its frames are read, and the seeded, resumable sampler."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from training_helpers import karman_like_dataset, karman_like_store, video_store

from forecast.data.channels import ChannelLayout
from forecast.data.windows import WindowDataset, WindowSampler
from forecast.errors import ForecastError
from forecast.field_store import open_field_store


@pytest.fixture(scope="module")
def karman(tmp_path_factory):
    return karman_like_store(tmp_path_factory.mktemp("k") / "k.zarr", n_seq=2, n_time=12)


def _layout(store, variables):
    return ChannelLayout.from_dataset(open_field_store(store, "train"), variables)


def test_window_holds_consecutive_frames_of_one_sequence_normalised(karman):
    layout = _layout(karman, ["u", "vorticity"])
    dataset = WindowDataset(karman, layout, n_frames=5)
    assert len(dataset) == 2 * (12 - 5 + 1)
    reference = karman_like_dataset(n_seq=2, n_time=12)
    for index in (0, 7, 8, 15):
        sequence, start = dataset.window(index)
        window = dataset[index]
        assert window.dtype == torch.float32 and window.shape == (5, 2, 16, 24)
        physical = layout.unstack(window.numpy())
        expected = reference["u"].values[sequence, start : start + 5]
        np.testing.assert_allclose(physical["u"], expected, rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(physical["vorticity"], 0.5 * expected + 3, rtol=1e-5, atol=1e-3)
    assert dataset.window(8) == (1, 0)
    # normalised with the train statistics of each channel
    u = reference["u"].values
    np.testing.assert_allclose(
        dataset[0][:, 0].numpy(), (u[0, :5] - u.mean()) / u.std(), rtol=1e-4, atol=1e-4
    )


def test_window_reads_only_its_own_chunks(tmp_path):
    store = karman_like_store(tmp_path / "k.zarr", n_seq=2, n_time=8)
    layout = _layout(store, ["u"])
    # corrupt every chunk of sequence 1: windows of sequence 0 must not touch them
    corrupted = list((tmp_path / "k.zarr" / "train" / "u" / "c" / "1").rglob("*"))
    files = [p for p in corrupted if p.is_file()]
    assert files
    for p in files:
        p.write_bytes(b"not a chunk")
    dataset = WindowDataset(store, layout, n_frames=3)
    assert dataset[0].shape == (3, 1, 16, 24)  # sequence 0 reads fine
    with pytest.raises(Exception):  # noqa: B017 - any codec error proves the chunk is read only when needed
        dataset[dataset.n_starts]  # first window of sequence 1


def test_video_store_uint8_with_channels(tmp_path):
    store = video_store(tmp_path / "v.zarr", n_seq=3, n_time=10, size=16)
    layout = _layout(store, ["frames"])
    assert layout.n_channels == 3
    dataset = WindowDataset(store, layout, n_frames=4)
    window = dataset[dataset.n_starts * 2 + 3]  # sequence 2, start 3
    assert window.shape == (4, 3, 16, 16) and window.dtype == torch.float32
    red = layout.unstack(window.numpy())["frames"][:, 0, 0, 0]
    np.testing.assert_allclose(red, 2 * 50 + np.arange(3, 7), atol=1e-3)


def test_too_few_frames_for_a_window_is_refused(karman):
    layout = _layout(karman, ["u"])
    with pytest.raises(ForecastError, match="too few for a window of 13"):
        WindowDataset(karman, layout, n_frames=13)


def test_incompatible_layout_is_refused(karman, tmp_path):
    other = video_store(tmp_path / "v.zarr")
    layout = _layout(other, ["frames"])
    with pytest.raises(ForecastError, match="lacks variables"):
        WindowDataset(karman, layout, n_frames=2)


def test_sampler_is_seeded_and_covers_each_epoch_once():
    a = WindowSampler(10, batch_size=5, seed=3)
    b = WindowSampler(10, batch_size=5, seed=3)
    c = WindowSampler(10, batch_size=5, seed=4)
    first = [a.batch(p) for p in range(6)]
    assert first == [b.batch(p) for p in range(6)]
    assert first != [c.batch(p) for p in range(6)]
    for epoch in range(3):
        assert sorted(first[2 * epoch] + first[2 * epoch + 1]) == list(range(10))
    assert first[:2] != first[2:4]  # a new permutation each epoch


def test_sampler_resumes_at_its_position():
    straight = iter(WindowSampler(7, batch_size=3, seed=1))
    batches = [next(straight) for _ in range(8)]  # crosses several epochs (7 is not a multiple of 3)
    resumed = iter(WindowSampler(7, batch_size=3, seed=1, position=5))
    assert [next(resumed) for _ in range(3)] == batches[5:8]


def test_sampler_shards_between_ranks_like_distributed_sampler():
    ranks = [WindowSampler(11, batch_size=2, seed=0, rank=r, world_size=2) for r in range(2)]
    epoch = [s.epoch_indices(0) for s in ranks]
    assert len(epoch[0]) == len(epoch[1]) == 6  # padded to equal length
    assert set(epoch[0]) | set(epoch[1]) == set(range(11))
    assert len(set(epoch[0]) & set(epoch[1])) <= 1  # only the padding repeats a window
    reference = list(torch.utils.data.DistributedSampler(range(11), num_replicas=2, rank=1, shuffle=False))
    assert len(reference) == len(epoch[1])


def test_loader_with_workers_delivers_the_same_batches(karman):
    layout = _layout(karman, ["u", "v"])
    dataset = WindowDataset(karman, layout, n_frames=3)

    def batches(workers):
        loader = DataLoader(
            dataset, batch_sampler=WindowSampler(len(dataset), 4, seed=2), num_workers=workers
        )
        it = iter(loader)
        return [next(it) for _ in range(3)]

    for x, y in zip(batches(0), batches(2)):
        assert torch.equal(x, y)

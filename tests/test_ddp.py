"""Distributed training on CPU: two processes, gloo backend, DistributedDataParallel (as torchrun runs it)."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from training_helpers import ConvNextFrame, karman_like_store, toy_config

from forecast.training import Trainer


class RecordingModel(ConvNextFrame):
    """Remembers a fingerprint of every window it is trained on (first pixel of u in the first frame)."""

    def __init__(self, n_channels):
        super().__init__(n_channels, spatial_multiple=4)
        self.seen = []

    def loss(self, window, n_context):
        self.seen.extend(window[:, 0, 0, 0, 0].tolist())
        return super().loss(window, n_context)


def _factory(config, n_channels):
    return RecordingModel(n_channels)


def _worker(rank, world_size, port, store, run_dir, out_dir):
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    config = toy_config(steps=4, checkpoint_every=2, log_every=2)
    trainer = Trainer(config, store, run_dir, model_factory=_factory, device="cpu", progress=False)
    trainer.run_loop()
    torch.save(
        {"seen": trainer.model.seen, "state": trainer.model.state_dict()},
        os.path.join(out_dir, f"rank{rank}.pt"),
    )
    trainer.close()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_gloo_training(tmp_path):
    store = karman_like_store(tmp_path / "k.zarr", n_seq=2, n_time=12)
    run = tmp_path / "run"
    mp.spawn(_worker, args=(2, _free_port(), store, str(run), str(tmp_path)), nprocs=2, join=True)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    # each rank trained on its own share of the windows ...
    seen = [r["seen"] for r in results]
    assert len(seen[0]) == len(seen[1]) == 4 * 2
    assert len(set(seen[0]) & set(seen[1])) == 0
    # ... and DDP kept the weights identical
    for key, value in results[0]["state"].items():
        assert torch.equal(value, results[1]["state"][key]), key
    # one run directory, written by rank 0, with the RNG state of both ranks
    payload = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert payload["step"] == 4 and len(payload["rng"]["torch"]) == 2
    assert not torch.equal(payload["rng"]["torch"][0], payload["rng"]["torch"][1])
    for key, value in payload["model"].items():
        assert torch.equal(value, results[0]["state"][key])

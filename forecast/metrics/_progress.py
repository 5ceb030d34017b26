"""A tqdm progress bar over the tasks of a dask computation."""

from __future__ import annotations

from dask.callbacks import Callback
from tqdm.auto import tqdm


class TqdmCallback(Callback):
    def __init__(self, desc: str = "computing"):
        super().__init__()
        self._desc = desc
        self._bar = None

    def _start_state(self, dsk, state):
        total = sum(len(state[key]) for key in ("ready", "waiting", "running", "finished"))
        self._bar = tqdm(total=total, desc=self._desc, unit="task", leave=False)

    def _posttask(self, key, result, dsk, state, worker_id):
        self._bar.update(1)

    def _finish(self, dsk, state, errored):
        if self._bar is not None:
            self._bar.close()

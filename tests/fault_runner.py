"""`python tests/fault_runner.py ARGS...`: the `forecast` command line in a process of its own, with the test
doubles of tests/test_rollout.py for a trained run (``forecast.training.load_run``), for the fault tests
(tests/test_faults.py) that need a separate process: two rollouts racing, a file-size limit, another user.

Environment: ``FAULT_SLEEP_S`` (seconds each sampled frame takes, so that two rollouts overlap), ``FAULT_NY`` and
``FAULT_NX`` (the frame size of the store the fake run's layout is fitted on).
"""

from __future__ import annotations

import os
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def load_run(run_dir, device="cpu", ema=True):
    """The test doubles of tests/test_rollout.py (imported here: torch only for a rollout)."""
    from test_rollout import FakeRun, RandomWalk, _dataset, _layout

    class SlowRandomWalk(RandomWalk):
        def sample_next(self, state, **kwargs):
            time.sleep(float(os.environ.get("FAULT_SLEEP_S", "0")))
            return super().sample_next(state, **kwargs)

    ny, nx = int(os.environ.get("FAULT_NY", "5")), int(os.environ.get("FAULT_NX", "4"))
    return FakeRun(SlowRandomWalk(), _layout(_dataset(ny=ny, nx=nx)))


if __name__ == "__main__":
    module = types.ModuleType("forecast.training")
    module.load_run = load_run
    sys.modules["forecast.training"] = module
    from forecast.cli import main

    sys.exit(main(sys.argv[1:]))

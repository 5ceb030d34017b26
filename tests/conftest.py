import os

import pytest

# Two cores on CI: keep torch from oversubscribing them when several things run at once.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(0)

import os

import pytest
from hypothesis import HealthCheck, settings

# Two cores on CI: keep torch from oversubscribing them when several things run at once.
os.environ.setdefault("OMP_NUM_THREADS", "2")

# Hypothesis profiles (the property tests, tests/test_properties_*.py; each states its max_examples):
# - "ci", the default: derandomized (the same examples on every run, so the suite cannot flake), no example
#   database, no deadline (a loaded 2-core machine times nothing reliably);
# - "dev" (HYPOTHESIS_PROFILE=dev pytest ...): fresh random examples each run and the local database that replays
#   a failure, for looking for new counterexamples.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(0)

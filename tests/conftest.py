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


# --- Scheduling the two-worker runs (`-n 2 --dist loadfile`; issue 35) ---
# xdist's loadfile sends a file's tests to one worker and, by default, sends the files with the most selected
# tests first. Under `-m slow` that put the files of one long check each (the full demo, the paper tables' smoke
# chain) last, behind everything else on the same worker: a 34-minute run where the busiest worker ran
# ~800 s more than the other. Here the files of the `long` checks go first, heaviest first (the sum of their
# checks' marker `seconds`: wall seconds measured in a CI run, docs/results/ci-speed.md, used only for this
# order), the two heaviest on one worker each at once; the other files follow in xdist's own order (most tests
# first), so that the last files to start are short ones and neither worker waits long for the other at the
# end. Without long tests (the default suite) the order is xdist's.
LONG_DEFAULT_SECONDS = 60


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):  # pytest-xdist: keep the order given below
        config.option.loadscopereorder = False


def _long_seconds(item) -> float:
    marker = item.get_closest_marker("long")
    return marker.kwargs.get("seconds", LONG_DEFAULT_SECONDS) if marker else 0


@pytest.hookimpl(trylast=True)  # after `-m`/`-k` deselection: order what runs
def pytest_collection_modifyitems(config, items):
    files: dict[str, list] = {}  # file -> [first index, tests, seconds of its long checks]
    for index, item in enumerate(items):
        entry = files.setdefault(item.nodeid.split("::")[0], [index, 0, 0])
        entry[1] += 1
        entry[2] += _long_seconds(item)
    heavy = sorted((f for f, e in files.items() if e[2]), key=lambda f: -files[f][2])

    def key(item):
        name = item.nodeid.split("::")[0]
        if name in heavy:
            return (0, heavy.index(name), 0)
        return (1, -files[name][1], files[name][0])

    items.sort(key=key)  # stable: a file's tests keep their order

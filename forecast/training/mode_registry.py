"""The training modes by name: what ``training.mode`` may say (``forecast.training.modes`` explains a mode).

The one list of modes: config validation and the Trainer read ``MODES``. It sits above the modules that define
the modes, so they never import each other back (no import cycle in ``forecast.training``).
"""

from __future__ import annotations

from forecast.training.adversarial import AdversarialMode
from forecast.training.modes import StandardMode, TrainingMode

MODES: dict[str, type[TrainingMode]] = {cls.name: cls for cls in (StandardMode, AdversarialMode)}


def register_mode(cls: type[TrainingMode]) -> type[TrainingMode]:
    """Add a mode defined outside this package (a user's, a test's) under ``cls.name``."""
    MODES[cls.name] = cls
    return cls

"""Training: the ``Trainer`` loop (algorithm 1), its modes, run directories and checkpoints, ``load_run``."""

from forecast.training.config import DataConfig, TrainingConfig, load_config, resolve_config
from forecast.training.run_dir import LoadedRun, load_run
from forecast.training.trainer import Trainer, learning_rate

__all__ = [
    "DataConfig",
    "LoadedRun",
    "Trainer",
    "TrainingConfig",
    "learning_rate",
    "load_config",
    "load_run",
    "resolve_config",
]

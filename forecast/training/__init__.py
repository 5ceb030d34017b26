"""Training: the ``Trainer`` loop (algorithm 1), run directories and checkpoints, ``load_run`` for rollout."""

from forecast.training.checkpoint import LoadedRun, load_run
from forecast.training.config import load_config, resolve_config
from forecast.training.trainer import Trainer, learning_rate

__all__ = ["LoadedRun", "Trainer", "learning_rate", "load_config", "load_run", "resolve_config"]

"""Networks: RVD (with its VD and SimpleRVD switches) and the baselines, all behind ``SequenceModel``."""

from forecast.models.base import SequenceModel

__all__ = ["SequenceModel"]

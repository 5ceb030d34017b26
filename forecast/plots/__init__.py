"""Matplotlib figures of scores and forecasts (Agg backend: files only, no display needed).

``scores`` draws from scores files (CRPS against lead time, CRPS maps, rank histograms, spread-skill, KE
spectra, scores against a known answer); ``samples`` draws from forecast files (context/truth/member grids, rollout animations); ``report``
turns a list of files into a folder of figures (what ``forecast plot`` does).
"""

import matplotlib

matplotlib.use("Agg")

from forecast.plots.report import plot_files  # noqa: E402
from forecast.plots.samples import animate_rollout, plot_sample_grid  # noqa: E402
from forecast.plots.scores import (  # noqa: E402
    plot_crps_maps,
    plot_crps_vs_lead,
    plot_ke_spectra,
    plot_rank_histograms,
    plot_spread_skill,
    plot_truth_scores,
)

__all__ = [
    "animate_rollout",
    "plot_crps_maps",
    "plot_crps_vs_lead",
    "plot_files",
    "plot_ke_spectra",
    "plot_rank_histograms",
    "plot_sample_grid",
    "plot_spread_skill",
    "plot_truth_scores",
]

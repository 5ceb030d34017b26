"""The scores file of docs/formats.md ("Scores file"): a registry of metrics applied to a forecast Dataset.

Each score is one :class:`Metric` in :data:`METRICS` (per forecast variable V) or :data:`FLOW_METRICS` (of the
velocity pair u, v), in the spirit of WeatherBench2's metric classes: adding a score means adding one object.
A metric computes its DataArray from the :class:`Inputs` of one variable by calling the function that defines
the score (``crps_ensemble``, ``spread_skill_ratio``, ``skill_score``, ...); a derived score reads the scores
already computed for V. Averages are over ``init`` (and ``channel``), and over space where the dims say so:

==============================  =====================  =====================================================
variable                        dims                   meaning
==============================  =====================  =====================================================
``crps_V``                      lead_time, y, x        CRPS per pixel and lead time
``crps_mean_V``                 lead_time              the same averaged over space too
``rmse_V``                      lead_time              RMSE of the ensemble mean
``spread_V``                    lead_time              ensemble spread (sqrt of the mean unbiased variance)
``spread_skill_V``              lead_time              sqrt((m+1)/m) spread / RMSE (1 = calibrated)
``rank_histogram_V``            lead_time, rank        counts of the truth's rank among the members
``pit_histogram_V``             lead_time, pit_bin     counts of the randomised PIT
``crps_reference_mean_V``       lead_time              (with a reference) the reference's ``crps_mean_V``
``crps_skill_V``                lead_time              (with a reference) 1 - crps_mean_V / crps_reference_mean_V
``crps_oracle_mean_V``          lead_time              (with a truth ensemble) its CRPS: the oracle CRPS
``crps_oracle_ratio_V``         lead_time              (with a truth ensemble) crps_mean_V / crps_oracle_mean_V
``spread_truth_V``              lead_time              (with a truth ensemble) the truth ensemble's spread
``spread_ratio_truth_V``        lead_time              (with a truth ensemble) spread_V / spread_truth_V
``spread_skill_truth_V``        lead_time              (with a truth ensemble) its spread-skill ratio
``energy_distance_V``           lead_time              (with a truth ensemble) energy distance to it per pixel
``rank_histogram_truth_V``      lead_time, truth_rank  (with a truth ensemble) rank of the verifying truth in it
``ke_spectrum``                 lead_time, wavenumber  (when u and v exist) members' kinetic-energy spectrum
``ke_spectrum_obs``             lead_time, wavenumber  the truth's
``divergence_rms``              lead_time              (when u and v exist) RMS divergence of the members
``divergence_rms_obs``          lead_time              the truth's
``stable_fraction_V``           lead_time              share of the rollouts still finite and in the data's range
``stability_horizon_V``         (scalar)               first lead at which a rollout left it (NaN: none)
``ke_spectrum_truth``           lead_time, wavenumber  (with a truth ensemble) its kinetic-energy spectrum
``ke_band_error``               lead_time, band        ln of the members' energy over the truth's per octave band
``strouhal_number``             init, member           (a vortex street, >= 64 leads) St of each member at the probe
``strouhal_number_obs``         init                   the verifying truth's
``strouhal_relative_error``     init, member           strouhal_number / strouhal_number_obs - 1
==============================  =====================  =====================================================

Attributes name the estimator (``ensemble`` or ``fair``), the ensemble size, the model, the tie-breaking seed,
and why a score is not there (``strouhal_not_computed``) or NaN (``stability_note``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import dask
import numpy as np
import xarray as xr

from forecast.errors import ForecastError
from forecast.forecast_file import CONVENTIONS, OBS_SUFFIX, forecast_variables, history_entry, model_name
from forecast.metrics import shedding, stability, streaming
from forecast.metrics.calibration import (
    ensemble_mean_rmse,
    ensemble_spread,
    pit_histogram,
    rank_histogram,
    spread_skill_ratio,
)
from forecast.metrics.crps import crps_ensemble
from forecast.metrics.distance import energy_distance
from forecast.metrics.physics import divergence, kinetic_energy_spectrum
from forecast.metrics.skill import score_ratio, skill_score
from forecast.metrics.spectral_bands import band_error
from forecast.metrics.truth import match_truth
from forecast.scores_file import SCORES_FILE_TYPE, score_name

API_COMMAND = "forecast.metrics.score_forecast (Python API)"  # the history entry of scores made from Python


@dataclass(frozen=True)
class Options:
    """How to score: CRPS estimator, missing values, tie-breaking seed, PIT bins, name of the member dim."""

    fair: bool = False
    skipna: bool = False
    seed: int = 0
    pit_bins: int = 10
    member_dim: str = "member"


@dataclass(frozen=True)
class Inputs:
    """What a metric of one forecast variable V sees: its ensemble, verifying truth and optional comparisons."""

    var: str
    ens: xr.DataArray
    obs: xr.DataArray
    options: Options
    reference: xr.DataArray | None = None  # another forecast's ensemble of V (same verifying truth)
    truth: xr.DataArray | None = None  # the truth ensemble of V at the forecast's inits and leads

    @property
    def per_lead(self) -> list[str]:
        """The dims averaged over for a per-lead-time score: all but ``lead_time``."""
        return _mean_dims(self.obs, ("lead_time",))

    def mean_per_lead(self, field: xr.DataArray) -> xr.DataArray:
        return field.mean(_mean_dims(field, ("lead_time",)), skipna=self.options.skipna)


@dataclass(frozen=True)
class Metric:
    """One score of a forecast variable V, stored as ``{key}_{V}``.

    ``compute(inputs, done)`` returns the lazy DataArray; ``done`` maps the keys of the scores of V computed
    before (in registry order) to their values, for derived scores. ``needs`` names the optional input
    (``"reference"`` or ``"truth"``) without which the metric is skipped.
    """

    key: str
    long_name: str
    compute: Callable[[Inputs, Mapping[str, xr.DataArray]], xr.DataArray]
    needs: str | None = None

    def applies(self, inputs: Inputs) -> bool:
        return self.needs is None or getattr(inputs, self.needs) is not None


def _mean_dims(da: xr.DataArray, keep: tuple[str, ...]) -> list[str]:
    return [d for d in da.dims if d not in keep]


def _units(da: xr.DataArray) -> dict:
    return {"units": da.attrs["units"]} if "units" in da.attrs else {}


def _over_members(score: Callable, *fields: str, options: tuple[str, ...] = ()) -> Callable:
    """A metric computed by ``score(*fields of the Inputs, member_dim, per_lead, *options, skipna)``: the
    calling convention of the ensemble reductions of ``forecast.metrics.calibration``."""

    def compute(x: Inputs, done) -> xr.DataArray:
        o = x.options
        values = (getattr(o, name) for name in options)
        return score(*(getattr(x, f) for f in fields), o.member_dim, x.per_lead, *values, o.skipna)

    return compute


def _of_scores(combine: Callable, *keys: str) -> Callable:
    """A derived metric: ``combine`` of the scores of V computed before (``keys``)."""
    return lambda x, done: combine(*(done[key] for key in keys))


def _crps_map(x: Inputs, done) -> xr.DataArray:
    o = x.options
    crps = crps_ensemble(x.obs, x.ens, o.member_dim, fair=o.fair, skipna=o.skipna)
    return crps.mean(_mean_dims(crps, ("lead_time", "y", "x")), skipna=o.skipna).assign_attrs(_units(x.ens))


def _reference_crps(x: Inputs, done) -> xr.DataArray:
    o = x.options
    fair = o.fair and x.reference.sizes.get(o.member_dim, 0) > 1  # a one-member reference is a point forecast
    crps = crps_ensemble(
        x.obs.drop_vars(list(x.obs.coords)),
        x.reference.drop_vars(list(x.reference.coords)),
        o.member_dim,
        fair=fair,
        skipna=o.skipna,
    )
    mean = x.mean_per_lead(crps)
    mean = mean.assign_coords(lead_time=x.obs["lead_time"]) if "lead_time" in x.obs.coords else mean
    return mean.assign_attrs(_units(x.ens))


def _oracle_crps(x: Inputs, done) -> xr.DataArray:
    o = x.options
    crps = crps_ensemble(x.obs, x.truth, o.member_dim, fair=o.fair, skipna=o.skipna)
    return x.mean_per_lead(crps).assign_attrs(_units(x.ens))


def _truth_rank_histogram(x: Inputs, done) -> xr.DataArray:
    hist = _over_members(rank_histogram, "obs", "truth", options=("seed",))(x, done).rename(rank="truth_rank")
    hist["truth_rank"].attrs = {
        "long_name": "number of truth-ensemble members below the verifying truth",
        "units": "1",
    }
    return hist


def _departed(x: Inputs) -> xr.DataArray:
    """Per (init, member, lead_time): whether the member has left the data's range (``stability``)."""
    extremes = stability.frame_extremes(x.ens, x.options.member_dim)
    return stability.departed(extremes, *stability.data_range(x.obs))


def _energy_distance(x: Inputs, done) -> xr.DataArray:
    distance = energy_distance(x.ens, x.truth, x.options.member_dim, skipna=x.options.skipna)
    return x.mean_per_lead(distance).assign_attrs(distance.attrs)


#: The per-variable scores, in the order they are computed and written.
METRICS: tuple[Metric, ...] = (
    Metric("crps", "CRPS of {v} per pixel and lead time", _crps_map),
    Metric(
        "crps_mean",
        "CRPS of {v} per lead time",
        lambda x, done: done["crps"].mean(["y", "x"], skipna=x.options.skipna),
    ),
    Metric("rmse", "RMSE of the ensemble mean of {v}", _over_members(ensemble_mean_rmse, "obs", "ens")),
    Metric("spread", "ensemble spread of {v}", _over_members(ensemble_spread, "ens")),
    Metric("spread_skill", "spread-skill ratio of {v}", _over_members(spread_skill_ratio, "obs", "ens")),
    Metric(
        "rank_histogram",
        "rank histogram of {v}",
        _over_members(rank_histogram, "obs", "ens", options=("seed",)),
    ),
    Metric(
        "pit_histogram",
        "PIT histogram of {v}",
        _over_members(pit_histogram, "obs", "ens", options=("pit_bins", "seed")),
    ),
    Metric(
        "crps_reference_mean",
        "CRPS of the reference forecast of {v} per lead time",
        _reference_crps,
        needs="reference",
    ),
    Metric(
        "crps_skill",
        "CRPS skill score of {v} against the reference",
        _of_scores(skill_score, "crps_mean", "crps_reference_mean"),
        needs="reference",
    ),
    Metric(
        "crps_oracle_mean",
        "oracle CRPS of {v} per lead time: the truth ensemble's CRPS against the verifying truth",
        _oracle_crps,
        needs="truth",
    ),
    Metric(
        "crps_oracle_ratio",
        "CRPS of {v} over the oracle CRPS (1 = as good as the perfect model)",
        _of_scores(score_ratio, "crps_mean", "crps_oracle_mean"),
        needs="truth",
    ),
    Metric(
        "spread_truth",
        "spread of the truth ensemble of {v}",
        _over_members(ensemble_spread, "truth"),
        needs="truth",
    ),
    Metric(
        "spread_ratio_truth",
        "ensemble spread of {v} over the truth ensemble's spread (1 = the right uncertainty)",
        _of_scores(score_ratio, "spread", "spread_truth"),
        needs="truth",
    ),
    Metric(
        "spread_skill_truth",
        "spread-skill ratio of the truth ensemble of {v} (1 for a calibrated truth ensemble)",
        _over_members(spread_skill_ratio, "obs", "truth"),
        needs="truth",
    ),
    Metric(
        "energy_distance",
        "energy distance between the ensemble and the truth ensemble of {v}, per pixel (0 = same distribution)",
        _energy_distance,
        needs="truth",
    ),
    Metric(
        "rank_histogram_truth",
        "rank histogram of the verifying truth of {v} within the truth ensemble (flat = calibrated benchmark)",
        _truth_rank_histogram,
        needs="truth",
    ),
    Metric(
        "stable_fraction",
        "share of the rollouts of {v} still finite and within the data's range",
        lambda x, done: stability.stable_fraction(_departed(x)),
    ),
    Metric(
        "stability_horizon",
        "first lead time at which a member of {v} is not finite or outside the data's range (NaN: none)",
        _of_scores(stability.stability_horizon, "stable_fraction"),
    ),
)


@dataclass(frozen=True)
class FlowInputs:
    """What a score of the velocity pair sees: the forecast, the options and the matched truth ensemble."""

    ds: xr.Dataset
    options: Options
    truth: xr.Dataset | None = None  # the truth ensemble (``match_truth``), with u and v


@dataclass(frozen=True)
class FlowMetric:
    """A score of the velocity pair (``u``, ``v`` without channels), stored under ``name``.

    ``compute(inputs, done)``: ``done`` maps the names of the pair's scores computed before to their values.
    ``needs``: ``"truth"`` (a truth ensemble) or ``"street"`` (a vortex street long enough for its shedding,
    ``shedding.unavailable``), without which the metric is skipped.
    """

    name: str
    long_name: str
    compute: Callable[[FlowInputs, Mapping[str, xr.DataArray]], xr.DataArray]
    needs: str | None = None

    def applies(self, inputs: FlowInputs) -> bool:
        if self.needs == "street":
            return shedding.unavailable(inputs.ds) is None
        return self.needs is None or getattr(inputs, self.needs) is not None


def _spectrum(u: xr.DataArray, v: xr.DataArray, o: Options) -> xr.DataArray:
    spectrum = kinetic_energy_spectrum(u, v)
    return spectrum.mean(_mean_dims(spectrum, ("lead_time", "wavenumber")), skipna=o.skipna).assign_attrs(
        spectrum.attrs
    )


def _divergence_rms(u: xr.DataArray, v: xr.DataArray, o: Options) -> xr.DataArray:
    div = divergence(u, v)
    return np.sqrt((div**2).mean(_mean_dims(div, ("lead_time",)), skipna=o.skipna)).assign_attrs(div.attrs)


def _band_error(f: FlowInputs, done) -> xr.DataArray:
    """The members' spectrum by octave band against the truth ensemble's, or the verifying truth's without one."""
    against = "truth ensemble" if "ke_spectrum_truth" in done else "verifying truth"
    reference = done["ke_spectrum_truth" if against == "truth ensemble" else "ke_spectrum_obs"]
    return band_error(done["ke_spectrum"], reference).assign_attrs(reference=against)


def _relative_error(value: xr.DataArray, truth: xr.DataArray) -> xr.DataArray:
    return ((value - truth) / truth).assign_attrs(units="1")


_OBS = ("u" + OBS_SUFFIX, "v" + OBS_SUFFIX)

#: Scores of the velocity field (u, v), written when the forecast has both.
FLOW_METRICS: tuple[FlowMetric, ...] = (
    FlowMetric(
        "ke_spectrum",
        "kinetic energy spectrum of the members",
        lambda f, done: _spectrum(f.ds["u"], f.ds["v"], f.options),
    ),
    FlowMetric(
        "ke_spectrum_obs",
        "kinetic energy spectrum of the truth",
        lambda f, done: _spectrum(f.ds[_OBS[0]], f.ds[_OBS[1]], f.options),
    ),
    FlowMetric(
        "ke_spectrum_truth",
        "kinetic energy spectrum of the truth ensemble",
        lambda f, done: _spectrum(f.truth["u"], f.truth["v"], f.options),
        needs="truth",
    ),
    FlowMetric(
        "ke_band_error",
        "ln of the members' kinetic energy over the reference's, per octave band of wave numbers",
        _band_error,
    ),
    FlowMetric(
        "divergence_rms",
        "RMS velocity divergence of the members",
        lambda f, done: _divergence_rms(f.ds["u"], f.ds["v"], f.options),
    ),
    FlowMetric(
        "divergence_rms_obs",
        "RMS velocity divergence of the truth",
        lambda f, done: _divergence_rms(f.ds[_OBS[0]], f.ds[_OBS[1]], f.options),
    ),
    FlowMetric(
        "strouhal_number",
        "Strouhal number of each member's shedding at the probe",
        lambda f, done: shedding.strouhal_numbers(f.ds["v"], f.ds),
        needs="street",
    ),
    FlowMetric(
        "strouhal_number_obs",
        "Strouhal number of the verifying truth's shedding at the probe",
        lambda f, done: shedding.strouhal_numbers(f.ds[_OBS[1]], f.ds),
        needs="street",
    ),
    FlowMetric(
        "strouhal_relative_error",
        "each member's Strouhal number over the verifying truth's, minus 1",
        lambda f, done: _relative_error(done["strouhal_number"], done["strouhal_number_obs"]),
        needs="street",
    ),
)


def _check_reference(ds: xr.Dataset, reference: xr.Dataset, names: list[str]) -> None:
    missing = [v for v in names if v not in reference.data_vars or f"{v}{OBS_SUFFIX}" not in reference]
    if missing:
        raise ForecastError(f"the reference forecast lacks the variables {missing}")
    for v in names:
        ref_obs, obs = reference[f"{v}{OBS_SUFFIX}"], ds[f"{v}{OBS_SUFFIX}"]
        if ref_obs.dims != obs.dims or ref_obs.shape != obs.shape:
            raise ForecastError(
                f"the reference's {v}{OBS_SUFFIX} has dims {dict(ref_obs.sizes)}, the forecast's {dict(obs.sizes)}"
            )


def build_scores(
    ds: xr.Dataset,
    fair: bool = False,
    skipna: bool = False,
    seed: int = 0,
    pit_bins: int = 10,
    reference: xr.Dataset | None = None,
    member_dim: str = "member",
    truth: xr.Dataset | None = None,
    command: str = API_COMMAND,
) -> xr.Dataset:
    """The scores of a forecast Dataset as a lazy Dataset: every metric of the registries that applies.

    ``reference``: another forecast Dataset of the same truth (adds CRPS skill scores). ``truth``: the truth
    group of a known-answer store (``forecast.metrics.open_truth``), matched to the forecast by (sequence,
    init_time) and lead time (adds the oracle scores). ``command`` is what the ``history`` attribute records.
    """
    names = forecast_variables(ds, member_dim)
    options = Options(fair, skipna, seed, pit_bins, member_dim)
    if reference is not None:
        _check_reference(ds, reference, names)
    truth_ens = match_truth(ds, truth, names, member_dim) if truth is not None else None
    out = {}
    for v in names:
        ens = ds[v]
        if fair and ens.sizes[member_dim] < 2:
            raise ForecastError(
                f"forecast variable {v!r} has {ens.sizes[member_dim]} member; the fair CRPS needs >= 2 "
                "(a one-member, deterministic forecast is scored with the ensemble estimator: its absolute error)"
            )
        inputs = Inputs(
            v,
            ens,
            ds[f"{v}{OBS_SUFFIX}"],
            options,
            reference=None if reference is None else reference[v],
            truth=None if truth_ens is None else truth_ens[v],
        )
        done: dict[str, xr.DataArray] = {}
        for metric in METRICS:
            if metric.applies(inputs):
                done[metric.key] = metric.compute(inputs, done)
                out[score_name(metric.key, v)] = done[metric.key].assign_attrs(
                    long_name=metric.long_name.format(v=v)
                )
    if "u" in names and "v" in names and "channel" not in ds["u"].dims:
        flow, done_flow = FlowInputs(ds, options, truth_ens), {}
        for metric in FLOW_METRICS:
            if metric.applies(flow):
                done_flow[metric.name] = metric.compute(flow, done_flow)
                out[metric.name] = done_flow[metric.name].assign_attrs(long_name=metric.long_name)
    scores = xr.Dataset(out)
    scores.attrs = _attributes(ds, names, options, reference, truth_ens, command)
    return scores


def _attributes(
    ds: xr.Dataset,
    names: list[str],
    o: Options,
    reference: xr.Dataset | None,
    truth: xr.Dataset | None,
    command: str,
) -> dict:
    from forecast import __version__

    model = model_name(ds)
    made = history_entry(command)
    attrs = {
        "Conventions": CONVENTIONS,
        "title": f"scores of the {model} ensemble forecast",
        # CF history is an audit trail: the forecast's own lines, then this one
        "history": "\n".join(filter(None, [str(ds.attrs.get("history", "")), made])),
        "source": f"forecast {__version__} (forecast.metrics) from: {ds.attrs.get('source', 'a forecast file')}",
        "file_type": SCORES_FILE_TYPE,
        "model_name": model,
        "estimator": "fair" if o.fair else "ensemble",
        "estimator_description": (
            "fair (unbiased) ensemble CRPS, E|X-y| - sum|x_i-x_j| / (2m(m-1))"
            if o.fair
            else "ensemble (empirical CDF) CRPS, E|X-y| - sum|x_i-x_j| / (2m^2), as properscoring.crps_ensemble"
        ),
        "ensemble_size": int(ds[names[0]].sizes[o.member_dim]),
        "skipna": int(o.skipna),
        "rank_tie_break_seed": int(o.seed),
        "spread_skill_correction": "sqrt((m+1)/m)",
        "averaged_over": "init" + (", channel" if "channel" in ds[names[0]].dims else ""),
        "n_init": int(ds.sizes["init"]),
        # how figures orient the maps: video frames (with channels) have row 0 at the top
        "image_origin": "upper" if "channel" in ds[names[0]].dims else "lower",
    }
    attrs["stability_range"] = (
        f"the verifying truth's range of each variable (all inits and leads), widened by {stability.RANGE_MARGIN:g} "
        "of its span on each side"
    )
    street = shedding.unavailable(ds)
    if street is not None:
        attrs["strouhal_not_computed"] = street
    else:
        attrs["strouhal_probe"] = f"v at {shedding.PROBE_DIAMETERS:g} D behind the cylinder, on its axis"
        attrs["strouhal_estimator"] = (
            f"peak of the Hann-windowed periodogram, zero-padded {shedding.ZERO_PADDING}x, parabolic refinement; "
            "NaN for a constant or non-finite probe series"
        )
    if reference is not None:
        attrs["reference_model_name"] = model_name(reference, "reference")
    if truth is not None:
        attrs["truth_ensemble_size"] = int(truth[names[0]].sizes[o.member_dim])
        attrs["energy_distance_estimator"] = "2 E|X-Y| - E|X-X'| - E|Y-Y'|, U-statistics within each ensemble"
    return attrs


@dataclass(frozen=True)
class Check:
    """A condition on the input, computed in the same pass as the scores: ``fails(value)`` gives the message."""

    value: xr.DataArray
    fails: Callable[[float], str | None]


def _same_truth(obs: xr.DataArray, other: xr.DataArray) -> xr.DataArray:
    """Relative max difference of two verifying truths (0 when they are the same frames)."""
    return abs(obs.variable - other.variable).max() / (1 + abs(obs.variable).max())


def input_checks(
    ds: xr.Dataset,
    skipna: bool = False,
    reference: xr.Dataset | None = None,
    member_dim: str = "member",
    verifying: xr.Dataset | None = None,
) -> list[Check]:
    """Lazy checks of a forecast (and reference) that :func:`score_forecast` evaluates with the scores."""
    checks = []
    for v in forecast_variables(ds, member_dim):
        obs = ds[f"{v}{OBS_SUFFIX}"]
        if verifying is not None:
            checks.append(
                Check(
                    _same_truth(obs, verifying[v].transpose(*obs.dims)),
                    lambda d, v=v: (
                        None
                        if d <= 1e-6
                        else f"the forecast's {v}{OBS_SUFFIX} is not the store's test frames at its (sequence, "
                        f"valid_time) (relative max difference {d:.3g}): it was made from another store"
                    ),
                )
            )
        if not skipna:
            checks.append(
                Check(
                    ds[v].isnull().sum() + obs.isnull().sum(),
                    lambda n, v=v: (
                        (
                            f"forecast variable {v!r} has {int(n)} missing values (NaN); pass skipna (--skipna) to "
                            "score without them"
                        )
                        if n > 0
                        else None
                    ),
                )
            )
        if reference is not None:
            ref_obs = reference[f"{v}{OBS_SUFFIX}"]
            checks.append(
                Check(
                    _same_truth(obs, ref_obs),
                    lambda d, v=v: (
                        None
                        if d <= 1e-6
                        else f"the reference forecast verifies {v!r} against a different truth (relative max "
                        f"difference {d:.3g})"
                    ),
                )
            )
    return checks


def _first_init(ds: xr.Dataset | None) -> xr.Dataset | None:
    """The first init of ``ds``, lazy (dask-backed): what the registry's graph is built on for the metadata."""
    if ds is None:
        return None
    first = ds.isel(init=slice(0, 1))
    return first if first.chunks else first.chunk()


def score_forecast(
    ds: xr.Dataset,
    fair: bool = False,
    skipna: bool = False,
    seed: int = 0,
    pit_bins: int = 10,
    reference: xr.Dataset | None = None,
    member_dim: str = "member",
    progress: bool = False,
    truth: xr.Dataset | None = None,
    command: str = API_COMMAND,
    verifying: xr.Dataset | None = None,
    block_inits: int | None = None,
) -> xr.Dataset:
    """Compute the scores of a forecast Dataset in one streamed pass (``forecast.metrics.streaming``).

    ``ds`` may be in memory, lazily opened or dask-backed; it is read in blocks of ``block_inits`` inits
    (default: ``streaming.default_block_inits``), so a file larger than memory is scored. The result equals
    ``build_scores(...)`` computed by dask, to float rounding. Raises ForecastError on NaNs without ``skipna``,
    on a reference verifying against another truth, on a forecast whose starts or lead times the ``truth``
    group lacks, and on ``V_obs`` that differ from ``verifying`` (the store's test frames at the forecast's
    valid times, ``truth.verifying_truth``). See :func:`build_scores`.
    """
    names = forecast_variables(ds, member_dim)
    options = Options(fair, skipna, seed, pit_bins, member_dim)
    if reference is not None:
        _check_reference(ds, reference, names)
    truth_ens = match_truth(ds, truth, names, member_dim) if truth is not None else None
    # the scores file's variables, dims, coordinates, attributes and dtypes: the registry's, never computed
    template = build_scores(
        _first_init(ds), fair, skipna, seed, pit_bins, _first_init(reference), member_dim, truth, command
    )
    plan = streaming.Plan(
        names=tuple(names),
        fair=fair,
        skipna=skipna,
        seed=int(seed),
        pit_bins=int(pit_bins),
        member_dim=member_dim,
        obs_dims={v: ds[f"{v}{OBS_SUFFIX}"].dims for v in names},
        obs_shape={v: ds[f"{v}{OBS_SUFFIX}"].shape for v in names},
        reference_fair=fair and reference is not None and reference.sizes.get(member_dim, 0) > 1,
        reference=reference is not None,
        truth=truth is not None,
        verifying=verifying is not None,
        flow=FLOW_METRICS[0].name in template,
        street="strouhal_number" in template,
    )
    sums = _stream(ds, plan, reference, truth_ens, verifying, block_inits, progress)
    _raise_failed_checks(ds, plan, sums, reference, verifying)
    out = {}
    for v in names:
        values = streaming.streamed_values(sums, plan, v, ds["lead_time"])
        out.update({f"{k}_{v}": value for k, value in values.items() if f"{k}_{v}" in template})
    if plan.flow:
        out.update(streaming.flow_values(sums))
    scores = {name: _filled(template[name], out[name], ds) for name in template.data_vars if name in out}
    unstreamed = [name for name in template.data_vars if name not in out]
    if unstreamed:  # a registry metric without a streamed form: the registry's lazy graph, chunked in blocks
        blocks = {"init": block_inits or streaming.default_block_inits(ds, names, member_dim)}
        chunked = [None if d is None else d.chunk(blocks) for d in (ds, reference)]
        lazy = build_scores(chunked[0], fair, skipna, seed, pit_bins, chunked[1], member_dim, truth, command)
        scores.update(dask.compute({name: lazy[name] for name in unstreamed})[0])
    attrs = _attributes(ds, names, options, reference, truth_ens, command)
    stayed = [v for v in names if np.isnan(scores[score_name("stability_horizon", v)].values)]
    if stayed:  # say what a NaN horizon means here, rather than leave a bare NaN
        attrs["stability_note"] = (
            f"no member of {', '.join(stayed)} left the data's range within the forecast's "
            f"{ds.sizes['lead_time']} lead times: stability_horizon is NaN there"
        )
    return xr.Dataset({name: scores[name] for name in template.data_vars}, attrs=attrs)


def _filled(template: xr.DataArray, value: Callable, ds: xr.Dataset) -> xr.DataArray:
    """``template`` (metadata of a score, built on the first init) holding the streamed ``value()``; a score per
    init gets every init of ``ds`` and the coordinates along it."""
    value = value()
    data = value.transpose(*template.dims).values if isinstance(value, xr.DataArray) else np.asarray(value)
    if "init" not in template.dims:
        return template.copy(data=data.astype(template.dtype))
    coords = {name: ds[name].variable.load() for name in template.coords}
    return xr.DataArray(data.astype(template.dtype), dims=template.dims, coords=coords, attrs=template.attrs)


def _stream(ds, plan, reference, truth_ens, verifying, block_inits, progress) -> dict:
    """The streamed sums of every block of inits (``streaming.block_sums``)."""
    step = block_inits or streaming.default_block_inits(ds, list(plan.names), plan.member_dim)
    wanted = [name for v in plan.names for name in (v, f"{v}{OBS_SUFFIX}")]
    if plan.flow:
        wanted += [name for name in ("u", "v", "u" + OBS_SUFFIX, "v" + OBS_SUFFIX) if name not in wanted]
    forecast = ds[wanted]
    jobs, sizes = [], []
    for start in range(0, ds.sizes["init"], step):
        inits = {"init": slice(start, start + step)}
        parts = [None if d is None else d.isel(inits) for d in (forecast, reference, truth_ens, verifying)]
        jobs.append((plan, start, *parts))
        sizes.append(parts[0].sizes["init"])
    return streaming.run_blocks(streaming.block_sums, jobs, sizes, progress)


def _raise_failed_checks(ds, plan, sums, reference, verifying) -> None:
    """The conditions of :func:`input_checks` (their messages), on the values the blocks measured."""
    values = []
    for v in plan.names:  # the order of input_checks
        for condition, key in ((plan.verifying, "verifying_difference"), (not plan.skipna, "nan"),
                               (plan.reference, "reference_difference")):  # fmt: skip
            if condition:
                d = sums[f"{v}:{key}"]
                values.append(d if key == "nan" else d[0] / (1 + d[1]))
    checks = input_checks(
        _first_init(ds), plan.skipna, _first_init(reference), plan.member_dim, _first_init(verifying)
    )
    assert len(checks) == len(values)
    for check, value in zip(checks, values):
        message = check.fails(float(value))
        if message:
            raise ForecastError(message)

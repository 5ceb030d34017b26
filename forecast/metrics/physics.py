"""Physical plausibility of generated velocity fields: kinetic-energy spectra and divergence.

A sample can score well in CRPS while being unphysical (too smooth, spurious small scales, sources and sinks).
These diagnostics compare the members with the truth on physical grounds.

* ``kinetic_energy_spectrum(u, v)``: the isotropic spectrum of ``(u^2 + v^2) / 2`` over the (y, x) plane.
  With ``U = FFT2(u)`` (unnormalised) on an ny x nx grid, the shell ``k`` holds
  ``E(k) = sum_{k - 1/2 <= |kappa| < k + 1/2} (|U|^2 + |V|^2) / (2 (nx ny)^2)`` where ``|kappa|`` is the wave
  number in cycles per domain length, scaled to the shorter side for non-square grids. By Parseval the shells
  sum to the spatial mean kinetic energy, so spectra of different models are directly comparable. The FFT
  treats the field as periodic: for open-boundary flows (the vortex street) the highest shells carry some
  leakage from the boundaries, the same for members and truth.
* ``divergence(u, v)``: ``du/dx + dv/dy`` by second-order centred differences (second-order one-sided at the edges),
  using the ``x``/``y`` coordinates as spacing when present (else unit spacing).
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft
import xarray as xr

from forecast.errors import ForecastError


def _check_plane(u: xr.DataArray, v: xr.DataArray, y_dim: str, x_dim: str) -> None:
    for name, field in (("u", u), ("v", v)):
        if y_dim not in field.dims or x_dim not in field.dims:
            raise ForecastError(
                f"{name} lacks the plane dims ({y_dim!r}, {x_dim!r}); its dims are {field.dims}"
            )
    if u.dims != v.dims or u.shape != v.shape:
        raise ForecastError(f"u {dict(u.sizes)} and v {dict(v.sizes)} differ in dims or sizes")


@functools.lru_cache(maxsize=16)
def _shell_matrix(ny: int, nx: int, dtype: str) -> np.ndarray:
    """``(ny * (nx // 2 + 1), n_shells)``: which shell each coefficient of a real FFT falls in, with the weight 2
    of the columns that stand for their mirror image too (every column but 0 and, for even nx, nx / 2)."""
    side = min(nx, ny)
    ky = np.fft.fftfreq(ny) * side  # cycles per shorter side
    kx = np.abs(np.fft.fftfreq(nx)[: nx // 2 + 1]) * side
    shell = np.rint(np.hypot(ky[:, None], kx[None, :])).astype(np.int64)
    weight = np.full(nx // 2 + 1, 2.0)
    weight[0] = 1.0
    if nx % 2 == 0:
        weight[-1] = 1.0
    n_shells = side // 2 + 1
    matrix = np.zeros((ny, nx // 2 + 1, n_shells), dtype=dtype)
    rows, cols = np.nonzero(shell < n_shells)  # the corners beyond the Nyquist circle are incomplete shells
    matrix[rows, cols, shell[rows, cols]] = weight[cols]
    return matrix.reshape(-1, n_shells)


def _spectrum_array(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    ny, nx = u.shape[-2:]
    energy = None
    for field in (
        u,
        v,
    ):  # real FFTs: half the work of full ones, the mirror half weighted in the shell matrix
        coefficients = scipy.fft.rfft2(field)
        power = coefficients.real**2 + coefficients.imag**2
        energy = power if energy is None else energy + power
    matrix = _shell_matrix(ny, nx, energy.dtype.str)
    shells = energy.reshape(-1, matrix.shape[0]) @ matrix  # one 2-D product: far faster than a stack of them
    return shells.reshape(*energy.shape[:-2], -1).astype(np.float64) / (2.0 * (nx * ny) ** 2)


def kinetic_energy_spectrum(
    u: xr.DataArray, v: xr.DataArray, y_dim: str = "y", x_dim: str = "x"
) -> xr.DataArray:
    """Isotropic kinetic-energy spectrum per (y, x) plane: dim ``wavenumber`` (cycles per domain, 0..N/2)."""
    _check_plane(u, v, y_dim, x_dim)
    if u.chunks is not None:
        u, v = u.chunk({y_dim: -1, x_dim: -1}), v.chunk({y_dim: -1, x_dim: -1})
    n_shells = min(u.sizes[y_dim], u.sizes[x_dim]) // 2 + 1
    spectrum = xr.apply_ufunc(
        _spectrum_array,
        u,
        v,
        input_core_dims=[[y_dim, x_dim], [y_dim, x_dim]],
        output_core_dims=[["wavenumber"]],
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"wavenumber": n_shells}},
    )
    spectrum = spectrum.assign_coords(wavenumber=np.arange(n_shells))
    spectrum["wavenumber"].attrs = {
        "long_name": "wave number in cycles per domain length (the shorter side)",
        "units": "1",
    }
    units = u.attrs.get("units")
    return spectrum.assign_attrs(
        long_name="kinetic energy per wave-number shell", **({"units": _power(units, 2)} if units else {})
    )


def _power(units: str, exponent: int) -> str:
    """``units`` raised to ``exponent`` in UDUNITS syntax ("1" stays "1")."""
    return "1" if str(units).strip() == "1" else f"({units})^{exponent}"


def _quotient(numerator: str, denominator: str | None) -> str:
    """``numerator / denominator`` in UDUNITS syntax; a missing or dimensionless denominator drops out."""
    if denominator is None or str(denominator).strip() == "1":
        return numerator
    return f"({denominator})^-1" if str(numerator).strip() == "1" else f"({numerator})/({denominator})"


def divergence(u: xr.DataArray, v: xr.DataArray, y_dim: str = "y", x_dim: str = "x") -> xr.DataArray:
    """``du/dx + dv/dy`` (centred differences; coordinate spacing if ``x``/``y`` coordinates exist)."""
    _check_plane(u, v, y_dim, x_dim)
    coords = {
        d: u[d] if d in u.coords else xr.DataArray(np.arange(u.sizes[d]), dims=d) for d in (y_dim, x_dim)
    }
    u = u.assign_coords({x_dim: coords[x_dim].values})
    v = v.assign_coords({y_dim: coords[y_dim].values})
    div = u.differentiate(x_dim, edge_order=2) + v.differentiate(y_dim, edge_order=2)
    units = u.attrs.get("units")
    x_units = coords[x_dim].attrs.get("units")  # of the spacing (none for unit spacing without a coordinate)
    return div.assign_attrs(
        long_name="velocity divergence", **({"units": _quotient(units, x_units)} if units else {})
    )

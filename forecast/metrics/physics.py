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

import numpy as np
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


def _spectrum_array(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    ny, nx = u.shape[-2:]
    energy = (np.abs(np.fft.fft2(u)) ** 2 + np.abs(np.fft.fft2(v)) ** 2) / (2.0 * (nx * ny) ** 2)
    side = min(nx, ny)
    ky = np.fft.fftfreq(ny) * side  # cycles per shorter side
    kx = np.fft.fftfreq(nx) * side
    shell = np.rint(np.hypot(ky[:, None], kx[None, :])).astype(np.int64).ravel()
    n_shells = side // 2 + 1
    flat = energy.reshape(*energy.shape[:-2], -1)
    out = np.zeros((*energy.shape[:-2], n_shells), dtype=np.float64)
    keep = shell < n_shells  # the corners beyond the Nyquist circle are incomplete shells
    for k in range(n_shells):
        out[..., k] = flat[..., (shell == k) & keep].sum(axis=-1)
    return out


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

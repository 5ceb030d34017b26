"""Kinetic-energy spectra by wave-number band: octave bands, and the error of one spectrum against another.

A spectrum per shell (``physics.kinetic_energy_spectrum``: dim ``wavenumber``, cycles per domain length, 0..N/2)
is summed over octave bands: band ``j`` holds the shells ``2^j <= k < 2^(j+1)``, and the last band also holds the
Nyquist shell ``N/2`` where that is a power of two (16 x 16 frames: k = 1, 2-3, 4-8; 32 x 32: 1, 2-3, 4-7,
8-16). Octaves need no knowledge of the flow, so every store gets the same bands; Kolmogorov flow's forcing
(k = 4 at the benchmark's settings) opens the third band. The mean flow (k = 0) is no scale and is left out:
the RMSE scores it.

``band_error(spectrum, reference)`` is ``ln(E_band / E_ref_band)``: 0 where the energies agree, ``2 ln c`` for a
velocity field scaled by ``c``, negative where the forecast has too little energy at those scales (too smooth),
positive where too much (spurious small scales, noise).
"""

from __future__ import annotations

import numpy as np
import xarray as xr


def octave_bands(n_shells: int) -> list[tuple[int, int]]:
    """The octave bands ``(first, last)`` shell of a spectrum with shells ``0 .. n_shells - 1`` (k = 0 left out)."""
    k_max = n_shells - 1
    bands = []
    low = 1
    while low <= k_max:
        high = min(2 * low - 1, k_max)
        bands.append((low, high))
        low *= 2
    if (
        len(bands) > 1 and bands[-1][0] == bands[-1][1] == k_max
    ):  # a lone Nyquist shell joins the octave below
        bands[-2:] = [(bands[-2][0], k_max)]
    return bands


def band_energy(spectrum: xr.DataArray) -> xr.DataArray:
    """``spectrum`` (dim ``wavenumber``) summed over :func:`octave_bands`: dim ``band``, with the coordinates
    ``band_first`` and ``band_last`` (the first and last shell of each band)."""
    bands = octave_bands(spectrum.sizes["wavenumber"])
    sums = [spectrum.isel(wavenumber=slice(first, last + 1)).sum("wavenumber") for first, last in bands]
    energy = xr.concat(sums, dim="band", coords="minimal", compat="override").transpose(..., "band")
    first, last = np.array(bands, dtype=np.int64).T.reshape(2, -1)
    energy = energy.assign_coords(
        band=np.arange(len(bands)),
        band_first=("band", first, {"long_name": "first wave-number shell of the band", "units": "1"}),
        band_last=("band", last, {"long_name": "last wave-number shell of the band", "units": "1"}),
    )
    energy["band"].attrs = {"long_name": "octave band of wave numbers (2^j <= k < 2^(j+1))", "units": "1"}
    return energy.assign_attrs(spectrum.attrs)


def band_error(spectrum: xr.DataArray, reference: xr.DataArray) -> xr.DataArray:
    """``ln(E_band / E_ref_band)`` per octave band (dim ``band``) of two spectra with the same shells."""
    with np.errstate(divide="ignore", invalid="ignore"):
        error = np.log(band_energy(spectrum) / band_energy(reference))
    return error.assign_attrs(
        long_name="log ratio of band energies: ln(E_band / E_reference_band)", units="1"
    )

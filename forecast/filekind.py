"""What a file is, in a few words, for one-line errors when a command is given a file of the wrong kind.

``describe(path)`` sniffs the first bytes (and, for netCDF, the ``file_type`` and variable names) and returns a
short phrase such as "a PNG image" or "a scores file", so a message can say what was given and what was expected.
"""

from __future__ import annotations

import os
from pathlib import Path

# magic bytes -> what the file is
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x89HDF\r\n\x1a\n", "a netCDF4/HDF5 file"),
    (b"CDF\x01", "a netCDF3 file"),
    (b"CDF\x02", "a netCDF3 file"),
    (b"PK\x03\x04", "a zip archive (e.g. a torch checkpoint)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"RIFF", "a RIFF file (AVI/WAV)"),
)


def describe(path: str | os.PathLike) -> str:
    """A short phrase naming what ``path`` is: "a PNG image", "a directory", "a zarr store", "a text file", ..."""
    path = Path(path)
    if not path.exists():
        return "missing"
    if path.is_dir():
        if (path / ".zgroup").exists() or (path / "zarr.json").exists():
            return "a zarr store"
        if (path / "config.yaml").exists() and (path / "checkpoints").is_dir():
            return "a run directory"
        return "a directory"
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if not head:
        return "an empty file"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return _netcdf_kind(path) if what.startswith("a netCDF") else what
    if b"\x00" in head:
        return "a binary file"
    return "a text file"


def _netcdf_kind(path: Path) -> str:
    """ "a forecast file", "a scores file" or "a netCDF file", from the header (no data are read)."""
    import netCDF4

    from forecast.forecast_file import OBS_SUFFIX
    from forecast.scores_file import looks_like_scores

    try:
        with netCDF4.Dataset(path) as nc:
            file_type = getattr(nc, "file_type", "")
            dims = set(nc.dimensions)
            names = set(nc.variables)
    except OSError:
        return "an HDF5 file that is not netCDF"
    if looks_like_scores(file_type, names):
        return "a scores file"
    if {"init", "member", "lead_time"} <= dims and any(n.endswith(OBS_SUFFIX) for n in names):
        return "a forecast file"
    return "a netCDF file"


def is_binary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file that is not text (an image, an archive, netCDF, ...)."""
    return describe(path) not in ("a text file", "an empty file", "missing", "a directory", "a zarr store")

"""Write failures as one line: a full disk, a quota, the file-size limit, no permission, a read-only disk.

``writing(path)`` wraps a write and turns an ``OSError`` with one of those causes (ENOSPC, EDQUOT, EFBIG, EACCES,
EPERM, EROFS) into a ``ForecastError`` that names the file, the cause and what to do. The netCDF library reports
every failed write as a bare ``RuntimeError: NetCDF: HDF error``; its cause is read from the C library's
``errno`` (left by the failed ``write``), or failing that from the disk's state. ``check_headroom`` refuses a
write that cannot fit before it starts, so an HDF5 file is never left damaged by a half-done write.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import resource
from collections.abc import Iterator
from pathlib import Path

from forecast.errors import ForecastError

#: the write failures a user can act on: errno -> (what happened, what to do)
CAUSES = {
    errno.ENOSPC: ("no space left on the device", "free some space or write elsewhere"),
    errno.EDQUOT: ("disk quota exceeded", "free some space, raise the quota or write elsewhere"),
    errno.EFBIG: (
        "file too large (over the file-size limit: ulimit -f, or the file system's)",
        "raise the limit or write elsewhere",
    ),
    errno.EACCES: ("permission denied", "write to a folder you may write to"),
    errno.EPERM: ("operation not permitted", "write to a folder you may write to"),
    errno.EROFS: ("read-only file system", "write to a writable file system"),
}
#: what libraries that drop the errno say when a write fails (netCDF/HDF5, torch.save)
_SILENT_FAILURES = ("HDF error", "NetCDF:", "PytorchStreamWriter", "file write failed")
#: free bytes below which a disk counts as full when the netCDF library does not say why a write failed
_FULL_BYTES = 1 << 20


def _c_errno() -> int:
    """The C library's ``errno`` of this thread (what the netCDF/HDF5 library's failed ``write`` left)."""
    try:
        location = ctypes.CDLL(None).__errno_location
    except (OSError, AttributeError):  # not glibc/musl
        return 0
    location.restype = ctypes.POINTER(ctypes.c_int)
    return int(location()[0])


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing ancestor."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _file_size_limit() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _probe(path: Path) -> int | None:
    """The likely cause of a failed write to ``path`` from the disk's state (None: none found)."""
    here = _existing(path)
    folder = here if here.is_dir() else here.parent
    try:
        disk = os.statvfs(folder)
    except OSError:
        return None
    if disk.f_flag & os.ST_RDONLY:
        return errno.EROFS
    if disk.f_bavail * disk.f_frsize < _FULL_BYTES:
        return errno.ENOSPC
    limit = _file_size_limit()
    if limit is not None and here.is_file() and here.stat().st_size + _FULL_BYTES >= limit:
        return errno.EFBIG
    if not os.access(folder, os.W_OK):
        return errno.EACCES
    return None


def failure_errno(exc: BaseException, path: str | os.PathLike) -> int | None:
    """The errno of a failed write to ``path`` when it is one of ``CAUSES`` (None: another kind of error)."""
    if isinstance(exc, OSError) and exc.errno in CAUSES:
        return exc.errno
    if isinstance(exc, RuntimeError | OSError) and any(m in str(exc) for m in _SILENT_FAILURES):
        code = _c_errno()
        return code if code in CAUSES and _plausible(code, Path(path)) else _probe(Path(path))
    return None


def _plausible(code: int, path: Path) -> bool:
    """Whether the disk's state bears out an errno read back from the C library (it may be left over from an
    earlier call that failed harmlessly): a file-size limit for EFBIG, the folder's state for EACCES, EPERM and
    EROFS. A full disk or quota is taken at its word (the space may be back by the time it is looked at)."""
    if code in (errno.ENOSPC, errno.EDQUOT):
        return True
    if code == errno.EFBIG:
        here = _existing(path)
        return _file_size_limit() is not None or (here.is_file() and here.stat().st_size >= 2**31 - 1)
    return _probe(path) == code


def write_failure(
    path: str | os.PathLike, exc: BaseException, note: str = "", what: str = "write"
) -> ForecastError | None:
    """The one-line error for a failed write to ``path`` (None when ``exc`` is not a write failure)."""
    code = failure_errno(exc, path)
    if code is None:
        return None
    cause, remedy = CAUSES[code]
    filename = getattr(exc, "filename", None)
    detail = f" ({filename})" if filename and Path(filename) != Path(path) else ""
    return ForecastError(f"cannot {what} {path}{detail}: {cause} ({errno.errorcode[code]}); {remedy}{note}")


@contextlib.contextmanager
def writing(path: str | os.PathLike, note: str = "", what: str = "write") -> Iterator[None]:
    """Turn a write failure inside the block into a one-line ForecastError naming ``path`` (plus ``note``)."""
    try:
        yield
    except ForecastError:
        raise
    except (OSError, RuntimeError) as exc:
        filename = getattr(exc, "filename", None)
        error = write_failure(path, exc, note, what) if concerns(path, filename) else None
        if error is None:
            raise
        raise error from None


def concerns(path: str | os.PathLike, filename: str | os.PathLike | None) -> bool:
    """Whether an error about ``filename`` is one about writing ``path``: the file itself, something inside
    it (a store's chunk) or a hidden sibling named after it (its partial file, its lock). Unknown: yes."""
    if filename is None:
        return True
    output, file = Path(os.path.abspath(path)), Path(os.path.abspath(filename))
    if file == output or output in file.parents:
        return True
    return file.parent == output.parent and file.name.startswith(f".{output.stem}")


def check_headroom(
    path: str | os.PathLike, needed: int, note: str = "", output: str | os.PathLike | None = None
) -> None:
    """Refuse (one line) to grow the file ``path`` by ``needed`` bytes when the disk's free space or the
    file-size limit cannot hold them: a write refused before it starts leaves the file whole. ``output`` is
    what the message names (the final file ``path`` is the partial file of), with ``path`` in brackets."""
    path = Path(path)
    named = f"{output} ({path.name})" if output is not None and Path(output) != path else str(path)
    folder = _existing(path.parent)
    size = path.stat().st_size if path.is_file() else 0
    try:
        disk = os.statvfs(folder)
    except OSError:
        return
    free = disk.f_bavail * disk.f_frsize
    limit = _file_size_limit()
    if free < needed:
        code, have = errno.ENOSPC, f"{free / 2**20:.1f} MiB free"
    elif limit is not None and size + needed > limit:
        code, have = errno.EFBIG, f"limit {limit / 2**20:.1f} MiB, the file is {size / 2**20:.1f} MiB"
    else:
        return
    cause, remedy = CAUSES[code]
    raise ForecastError(
        f"cannot write {named}: {cause} ({errno.errorcode[code]}): the next part needs up to "
        f"{needed / 2**20:.1f} MiB ({have}); {remedy}{note}"
    )

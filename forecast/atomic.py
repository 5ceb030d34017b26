"""Write outputs so that nothing half-written ever sits under its final name."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


def temporary_sibling(path: str | os.PathLike) -> Path:
    """A fresh path next to ``path`` (same directory, so the final rename is atomic on one filesystem).

    It keeps ``path``'s suffix, since writers such as matplotlib infer the format from it.
    """
    path = Path(path)
    return path.with_name(f".{path.stem}.partial-{uuid.uuid4().hex[:8]}{path.suffix}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write to; on success move it to ``path``, on failure delete it.

    Works for files and for directories (a zarr store, a figure folder). With ``overwrite`` an existing
    output is replaced only once the new one is complete.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(final)
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if final.exists():
        if not overwrite:
            _remove(tmp)
            raise FileExistsError(final)
        if final.is_dir():
            # os.replace cannot replace a non-empty directory: move the old one aside first.
            old = temporary_sibling(final)
            os.replace(final, old)
            os.replace(tmp, final)
            _remove(old)
            return
    os.replace(tmp, final)

"""Output claims: one writer per output at a time, across processes.

Every command that writes claims its output first: an exclusive ``fcntl.flock`` on a lock file beside it,
``.NAME.lock``, holding the writer's pid. A second writer to the same output gets one line, "OUT is being
written by another process (pid N)", instead of two processes writing the same partial file. The operating
system drops the lock when its process ends, however it ends, so a ``kill -9`` leaves no stale claim: the lock
file may remain, but the next writer takes it over (and ``--resume`` then continues the partial output).

Claims are re-entrant within a process (the command line claims an output, the library writer it calls claims
it again). They need a file system with working ``flock`` (local disks; NFS v4 emulates it with POSIX locks).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from forecast.errors import ForecastError
from forecast.io_errors import writing

#: how long a refused writer waits for the holder to record its pid (the holder writes it right after locking)
_PID_WAIT_S = 1.0

# output (absolute path) -> [lock file descriptor, depth] of the claims this process holds
_held: dict[Path, list[int]] = {}


def claim_path(path: str | os.PathLike) -> Path:
    """The lock file of an output: hidden, beside it (``dir/.NAME.lock``)."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


def _key(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(path))


def is_claimed_here(path: str | os.PathLike) -> bool:
    """Whether this process holds the claim on ``path``."""
    return _key(path) in _held


@contextlib.contextmanager
def claim_output(path: str | os.PathLike) -> Iterator[Path]:
    """Hold the claim on the output ``path`` for the ``with`` block; ForecastError if another process holds it.

    The lock file's directory is created if needed; a failure to create the lock file (a read-only or full
    disk, no permission) is a one-line ForecastError naming the output.
    """
    key = _key(path)
    if key in _held:
        _held[key][1] += 1
        try:
            yield key
        finally:
            _held[key][1] -= 1
        return
    fd = _acquire(key)
    _held[key] = [fd, 1]
    try:
        yield key
    finally:
        del _held[key]
        _release(key, fd)


def _acquire(output: Path) -> int:
    lock = claim_path(output)
    with writing(output, what="claim"):
        lock.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _holder(fd)
                os.close(fd)
                raise ForecastError(
                    f"{output} is being written by another process (pid {pid}); wait for it to finish or "
                    "choose another output"
                ) from None
            except BaseException:
                os.close(fd)
                raise
            # the previous holder removes the lock file as it lets go: if it did so between our open and our
            # lock, we hold a file nobody else will see; take the one now at that path instead
            try:
                current = os.stat(lock).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(fd).st_ino:
                break
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            os.close(fd)
            raise
    return fd


def _holder(fd: int) -> str:
    """The pid written in a lock file held by another process (it writes it right after locking)."""
    deadline = time.monotonic() + _PID_WAIT_S
    while True:
        text = os.pread(fd, 64, 0).decode(errors="replace").strip()
        if text or time.monotonic() > deadline:
            return text or "unknown"
        time.sleep(0.02)


def _release(output: Path, fd: int) -> None:
    """Remove the lock file (while still holding it, so no one else can be holding it) and let go."""
    try:
        claim_path(output).unlink(missing_ok=True)
    except OSError:
        pass  # e.g. the folder became read-only: the lock file stays, harmless (the claim ends with the fd)
    finally:
        os.close(fd)

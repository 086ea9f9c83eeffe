"""Advisory file locks that serialize builds of the same commit across processes.

`flock` locks belong to an open file description, so they work between processes and between
threads that open the lock file separately, and the kernel drops them when the holder dies: a
crashed `dot` never leaves a stale lock behind. The lock file itself is never deleted, because
deleting it would let a second process lock a fresh file while a third still holds the old one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from datum_dot.errors import LockTimeoutError
from datum_dot.home.privatefiles import make_private_dirs

# Short first polls keep an uncontended hand-over quick; the cap keeps a long wait cheap.
_FIRST_POLL = 0.01
_MAX_POLL = 0.25


@contextmanager
def file_lock(
    path: Path, *, timeout: float, on_wait: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold an exclusive lock on `path` for the duration of the `with` block.

    The lock file and its missing parent folders are created (folders with mode 0700). While
    held, the file records the holder's process id, which the timeout message names.

    Args:
        path: The lock file.
        timeout: Seconds to wait for another holder to let go; 0 tries once.
        on_wait: Called once, before waiting, if the lock is held by someone else (so the CLI
            can say "waiting for another dot process building ...").

    Yields:
        Nothing; the lock is held inside the block and released after it.

    Raises:
        LockTimeoutError: Another process still held the lock after `timeout` seconds.
        OSError: The lock file or its folders could not be created.
    """
    make_private_dirs(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        _acquire(fd, path, timeout=timeout, on_wait=on_wait)
        try:
            _record_holder(fd)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, *, timeout: float, on_wait: Callable[[], None] | None) -> None:
    deadline = time.monotonic() + max(timeout, 0.0)
    poll = _FIRST_POLL
    waited = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _timeout_error(path, timeout)
        if not waited and on_wait is not None:
            on_wait()
        waited = True
        time.sleep(min(poll, remaining))
        poll = min(poll * 2, _MAX_POLL)


def _record_holder(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def _timeout_error(path: Path, timeout: float) -> LockTimeoutError:
    holder = ""
    with contextlib.suppress(OSError, ValueError):
        holder = f" (process {int(path.read_text().strip())}, by its own record)"
    return LockTimeoutError(
        f"timed out after {timeout:g}s waiting for lock {path}, held by another dot "
        f"process{holder}",
        hint="another dot process is probably building the same commit; wait for it to finish "
        f"and retry, or see who holds the lock with `fuser -v {path}`",
    )

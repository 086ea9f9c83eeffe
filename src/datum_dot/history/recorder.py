"""Recording one run without ever stopping it: the history is a witness, not a dependency.

A full disk (or a quota) under `$DATUM_HOME` must not fail a dbt run that has nothing to do
with it. `RunRecorder` wraps `RunStore` for the length of one run:

- Output lines the disk refuses wait in memory, in order (up to `output.PENDING_LIMIT`), and are
  written as soon as a write succeeds again: when space returns during the run, or at its end.
- When the run's record begins, `RESERVE_BYTES` are set aside in its folder (`.reserve`), if the
  disk has them. At the end, when there is no room for the final record, the reserve is given
  back and the record written in its place: a run that got its reserve ends recorded, whatever
  filled the disk meanwhile.
- A run whose record cannot even begin (the disk was full before it started) runs unrecorded,
  its output kept in memory, and is recorded at its end if space has returned by then.
- Whatever could still not be saved is said once, in one sentence (`unsaved`).

Only want of space is treated so: a history that is corrupted, another program's, locked, or a
run id already taken still raise, as `RunStore` says.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import sqlite3
from pathlib import Path
from types import TracebackType
from typing import Self

from datum_dot.errors import DotError
from datum_dot.history.files import RESERVE
from datum_dot.history.output import RunOutput
from datum_dot.history.records import RunEnd, RunStart
from datum_dot.history.store import RunStore
from datum_dot.home import sessionlog

RESERVE_BYTES = 256 * 1024
"""Set aside per running run for its final record (index row, WAL pages, metadata.json): about
64 KiB is enough, measured on a tmpfs; the rest is margin."""
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# SQLite says SQLITE_FULL when a write finds no room, and SQLITE_IOERR_SHMSIZE when it cannot
# grow the WAL index (-shm) file, which its documentation puts down to a full volume.
_SQLITE_NO_SPACE = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR_SHMSIZE})


def is_out_of_space(error: BaseException) -> bool:
    """Whether an error, or one it was raised from, says the disk (or a quota) is full."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in NO_SPACE_ERRNOS:
            return True
        if isinstance(current, sqlite3.Error) and current.sqlite_errorcode in _SQLITE_NO_SPACE:
            return True
        current = current.__cause__ or current.__context__
    return False


class RunRecorder:
    """The record of one run in a `RunStore`, kept up whether or not the disk has room.

    Use: `begin`, then `line` for each line of output (it is an `OutputSink`), then `finish`
    once; `unsaved` then says what could not be saved, if anything.

    Args:
        store: The run history.
        start: What the run starts with.
        run_id: The id allocated for the run earlier (the webhook's queue), or None.
        reserve: Bytes to set aside for the final record.
    """

    def __init__(
        self,
        store: RunStore,
        start: RunStart,
        *,
        run_id: str | None = None,
        reserve: int = RESERVE_BYTES,
    ) -> None:
        self._store = store
        self._start = dataclasses.replace(start, started_at=start.started_at or store.clock())
        self._wanted = run_id
        self._reserve_bytes = reserve
        self._output = RunOutput(None, clock=store.clock)
        self._record_saved = False
        self._full = False  # the history met a full disk (its own writes, not the output's)
        self.run_id: str | None = None
        """The run's id in the history, once its record has begun."""

    def begin(self) -> str | None:
        """Record the run as RUNNING; None when the disk has no room for it (yet).

        Raises:
            HistoryError: As `RunStore.begin`, for anything but want of space.
            LockTimeoutError: As `RunStore.begin`.
        """
        try:
            run_id = self._store.begin(self._start, run_id=self._wanted)
        except (OSError, DotError) as e:
            if not is_out_of_space(e):
                raise
            self._full = True
            return None
        self.run_id = run_id
        run_dir = self._store.run_dir(run_id)
        self._output.tee = self._store.output_tee(run_id)
        self._output.attach(run_dir)
        _set_aside(run_dir / RESERVE, self._reserve_bytes)
        return run_id

    def line(self, stream: str, text: str) -> None:
        """Store one line of output; see `RunOutput.line`. Never raises for a failed write."""
        self._output.line(stream, text)

    def finish(self, end: RunEnd) -> None:
        """Finalize the record, from the reserve if the disk is full; see `RunStore.finish`.

        Raises:
            HistoryError: As `RunStore.finish`, for anything but want of space.
            LockTimeoutError: As `RunStore.finish`.
        """
        end = dataclasses.replace(end, finished_at=end.finished_at or self._store.clock())
        if self.run_id is None:
            self.begin()  # recorded after the fact, if space has returned
        if self.run_id is None:
            self._output.close()
        else:
            self._finish_begun(end)
        unsaved = self.unsaved()
        if unsaved is not None:
            sessionlog.write_event("warning", unsaved, run_id=self.run_id, home=self._store.home)

    def _finish_begun(self, end: RunEnd) -> None:
        assert self.run_id is not None  # noqa: S101 - only called once begun
        # The output first (it happened first), in whatever room there is: the reserve is the
        # record's alone.
        self._output.close()
        reserve = self._store.run_dir(self.run_id) / RESERVE
        try:
            self._finish(end)
            if not self._record_saved:
                _give_back(reserve)
                self._finish(end)
        finally:
            _give_back(reserve)

    def unsaved(self) -> str | None:
        """After `finish`: one sentence saying what the history could not save, or None."""
        lines = self._output.unsaved_lines()
        if self._record_saved and not lines:
            return None
        error = self._output.error
        full = self._full or (error is not None and is_out_of_space(error))
        reason = _strerror(error) if error is not None else "no space left on device"
        where = f"({reason}: {self._store.home})"
        todo = "; free space there" if full else ""
        if self.run_id is None:
            return f"this run could not be saved in the run history {where}{todo}"
        if not self._record_saved:
            return (
                f"the end of run {self.run_id} could not be saved in the run history {where}: "
                f"it will show as ABORTED{todo}"
            )
        return (
            f"{lines} line(s) of the output of run {self.run_id} could not be saved in the run "
            f"history {where}; the record is complete{todo}"
        )

    def close(self) -> None:
        """Give up on what waits in memory (when the run ends without `finish`)."""
        self._output.close()

    def _finish(self, end: RunEnd) -> None:
        assert self.run_id is not None  # noqa: S101 - only called once begun
        try:
            self._store.finish(self.run_id, end)
        except (OSError, DotError) as e:
            if not is_out_of_space(e):
                raise
            self._full = True
            return
        self._record_saved = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _set_aside(path: Path, size: int) -> None:
    """Allocate `size` bytes at `path`, else a quarter of it, if the disk has them (best effort).

    A quarter (64 KiB by default) is still room for the final record; less would not be.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError:
        return
    try:
        for attempt in (size, size // 4):
            try:
                os.posix_fallocate(fd, 0, attempt)
            except OSError:
                continue
            return
        _give_back(path)
    finally:
        os.close(fd)


def _give_back(reserve: Path) -> None:
    with contextlib.suppress(OSError):
        reserve.unlink(missing_ok=True)


def _strerror(error: OSError) -> str:
    return (error.strerror or str(error)).lower()

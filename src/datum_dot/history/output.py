"""A run's output, appended line by line to its log files, and kept when the disk refuses it.

Each line is written (`os.write`, no buffer of ours) as it arrives, so a run killed mid-way keeps
every line written before the kill. The history is a witness of the run, never a reason for it to
fail: when a write fails (a full disk, a quota), what was not written waits in memory, in order,
and is written as soon as a write succeeds again (the next line, or `close`). Past a bound, new
lines are dropped and counted.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from datum_dot.history.files import LOG_FILES, OUTPUT_LOG, STDERR_LOG, STDOUT_LOG, utc_now

PENDING_LIMIT = 8 * 1024 * 1024
"""Bytes of output kept in memory, across the log files, while they cannot be written."""


class _LogFile:
    """One log file opened for appending, and the bytes still to be written to it, in order."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.pending = bytearray()

    def open(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def write(self) -> OSError | None:
        """Write what is pending; the error that stopped it, if one did."""
        while self.pending and self.fd is not None:
            try:
                written = os.write(self.fd, self.pending)
            except OSError as e:
                return e
            del self.pending[:written]
        return None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class RunOutput:
    """Appends a run's output to its log files; never fails a run for a write that fails.

    A line from dbt's stdout goes to stdout.log as written and to output.log stamped; likewise
    for stderr. Safe to call from a stdout reader and a stderr reader thread at once.

    Args:
        run_dir: The run's folder, which must exist; None to keep the output in memory until
            `attach` names the folder (a run whose record could not be begun yet).
        clock: Gives the current UTC time (for the stamps).
        limit: Bytes kept in memory while they cannot be written; lines beyond are dropped.
    """

    def __init__(
        self,
        run_dir: Path | None,
        *,
        clock: Callable[[], datetime] = utc_now,
        limit: int = PENDING_LIMIT,
    ) -> None:
        self._clock = clock
        self._limit = limit
        self._lock = threading.Lock()
        self._files = {name: _LogFile() for name in LOG_FILES}
        self._dropped = 0
        self.error: OSError | None = None
        """The last write error met, if any (for saying why output could not be saved)."""
        self.tee: Callable[[str, list[str]], None] | None = None
        """Also given each line, stamped, with its stream (`RunStore.output_tee`: the database
        of a history kept in PostgreSQL), in the order the lines arrive."""
        if run_dir is not None:
            self.attach(run_dir)

    def attach(self, run_dir: Path) -> None:
        """Write into the log files in `run_dir` from now on, starting with what waited.

        Raises:
            OSError: A log file could not be opened.
        """
        with self._lock:
            for name, file in self._files.items():
                if file.fd is None:
                    file.open(run_dir / name)
            self._write()

    def line(self, stream: str, text: str) -> None:
        """Store one line of output (a trailing newline is optional; inner ones split it).

        This is the runtimes' `OutputSink` protocol, so a `RunOutput` can be handed to
        `Runtime.invoke(output=...)` as it is. It never raises for a failed write.

        Args:
            stream: Where dbt printed it: "stderr", or "stdout" (anything else counts as stdout).
            text: The line as printed.
        """
        lines = text.removesuffix("\n").removesuffix("\r").split("\n")
        with self._lock:
            stamp = f"[{self._clock().astimezone(UTC):%H:%M:%S}] "
            raw = _encode("".join(one + "\n" for one in lines))
            combined = _encode("".join(stamp + one + "\n" for one in lines))
            if self._pending_bytes() + len(raw) + len(combined) > self._limit:
                self._dropped += len(lines)
                return
            self._files[STDERR_LOG if stream == "stderr" else STDOUT_LOG].pending += raw
            self._files[OUTPUT_LOG].pending += combined
            self._write()
            if self.tee is not None:
                self.tee("stderr" if stream == "stderr" else "stdout", [stamp + o for o in lines])

    def unsaved_lines(self) -> int:
        """Lines of output.log not on disk: still waiting in memory, or dropped."""
        with self._lock:
            return self._files[OUTPUT_LOG].pending.count(b"\n") + self._dropped

    def close(self) -> None:
        """Write what is still waiting, if the disk takes it now, and close (idempotent)."""
        with self._lock:
            self._write()
            for file in self._files.values():
                file.close()

    def _write(self) -> None:
        for file in self._files.values():
            error = file.write()
            if error is not None:
                self.error = error

    def _pending_bytes(self) -> int:
        return sum(len(file.pending) for file in self._files.values())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _encode(text: str) -> bytes:
    return text.encode("utf-8", errors="backslashreplace")

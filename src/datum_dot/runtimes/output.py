"""dbt's output, line by line: to the terminal and to an `OutputSink`, with timestamps.

In process, dbt writes through `sys.stdout` (its logger picks the stream up when each invocation
starts), so `tee_stdio` replaces `sys.stdout` and `sys.stderr` for the length of one invocation
with streams that write through and hand each complete line to the sink. Sink lines carry no
terminal colour codes.
"""

from __future__ import annotations

import io
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TextIO

from datum_dot.runtimes.base import OutputSink

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TAIL_LINES = 40


def strip_ansi(text: str) -> str:
    """`text` without terminal colour and cursor codes."""
    return _ANSI.sub("", text)


def stamp(text: str, when: datetime | None = None) -> str:
    """`[HH:MM:SS] text`, in local time."""
    moment = (when or datetime.now(UTC)).astimezone()
    return f"[{moment:%H:%M:%S}] {text}"


class LineSplitter:
    """Collects written text and calls `emit` once per complete line (thread-safe)."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._buffer = ""
        self._lock = threading.Lock()

    def feed(self, text: str) -> None:
        """Add text; emit every line it completes."""
        with self._lock:
            self._buffer += text
            if "\n" not in self._buffer:
                return
            *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            self._emit(line.rstrip("\r"))

    def flush(self) -> None:
        """Emit what is left of an unfinished last line."""
        with self._lock:
            rest, self._buffer = self._buffer, ""
        if rest:
            self._emit(rest.rstrip("\r"))


class Tail:
    """The last lines seen (for classification when nothing structured exists)."""

    def __init__(self, size: int = TAIL_LINES) -> None:
        self._lines: list[str] = []
        self._size = size
        self._lock = threading.Lock()

    def add(self, line: str) -> None:
        """Remember one line, forgetting the oldest beyond the size."""
        with self._lock:
            self._lines.append(line)
            del self._lines[: -self._size]

    def lines(self) -> tuple[str, ...]:
        """The remembered lines, oldest first."""
        with self._lock:
            return tuple(self._lines)


class TeeStream(io.TextIOBase):
    """A text stream that writes through to `target` and splits what it gets into lines."""

    def __init__(self, target: TextIO, on_line: Callable[[str], None]) -> None:
        super().__init__()
        self._target = target
        self._splitter = LineSplitter(on_line)

    def write(self, text: str) -> int:
        """Write through, and hand complete lines on."""
        written = self._target.write(text)
        self._splitter.feed(text)
        return written

    def flush(self) -> None:
        """Flush the target."""
        self._target.flush()

    def finish(self) -> None:
        """Hand on an unfinished last line."""
        self._splitter.flush()

    def isatty(self) -> bool:
        """Whether the target is a terminal (dbt and rich decide on colours with it)."""
        return self._target.isatty()

    def fileno(self) -> int:
        """The target's descriptor."""
        return self._target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """The target's encoding."""
        return getattr(self._target, "encoding", "utf-8") or "utf-8"

    def writable(self) -> bool:
        """Always writable."""
        return True


@contextmanager
def tee_stdio(output: OutputSink | None, tail: Tail | None = None) -> Iterator[None]:
    """Copy every line written to `sys.stdout`/`sys.stderr` to `output` (and `tail`) meanwhile."""
    if output is None and tail is None:
        yield
        return

    def sender(stream: str) -> Callable[[str], None]:
        def send(line: str) -> None:
            clean = strip_ansi(line)
            if tail is not None:
                tail.add(clean)
            if output is not None:
                output.line(stream, clean)

        return send

    saved = sys.stdout, sys.stderr
    out = TeeStream(saved[0], sender("stdout"))
    err = TeeStream(saved[1], sender("stderr"))
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        out.finish()
        err.finish()


class TerminalEcho:
    """Writes lines of a child's output to this process's stdout/stderr, timestamped."""

    def __init__(self, *, timestamps: bool = True) -> None:
        self._timestamps = timestamps
        self._lock = threading.Lock()

    def line(self, stream: str, text: str) -> None:
        """Write one line to the matching stream of this process."""
        target = sys.stderr if stream == "stderr" else sys.stdout
        shown = stamp(text) if self._timestamps else text
        with self._lock:
            try:
                target.write(shown + "\n")
                target.flush()
            except (OSError, ValueError):
                pass  # a closed terminal must not stop the run; the sink still gets the line

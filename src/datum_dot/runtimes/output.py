"""dbt's output, line by line: to the terminal and to an `OutputSink`, with timestamps.

In process, dbt writes through `sys.stdout` (its logger picks the stream up when each invocation
starts), so `tee_stdio` replaces `sys.stdout` and `sys.stderr` for the length of one invocation
with streams that write through and hand each complete line to the sink. Sink lines carry no
terminal colour codes.

What reaches this process's terminal is the `TerminalPolicy`'s to say: every line (the default,
and always when the output is a file or a pipe), or, beside a live progress display, only dbt's
warnings and errors. A line's level is known from dbt's JSON log (a dbt executable) or, in
process, from the event dbt fires right after writing the line (`LevelTagger`). A reader that
goes away (`dot build | head`) stops the echo, never the run: the sink still gets every line.
"""

from __future__ import annotations

import io
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

from datum_dot.runtimes.base import OutputSink

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TAIL_LINES = 40
PROBLEM_LEVELS = frozenset({"warn", "error"})
"""dbt's event levels shown beside a live progress display."""


@dataclass(frozen=True)
class TerminalPolicy:
    """Which of dbt's lines this process writes to its terminal.

    Attributes:
        problems_only: Only lines of dbt's warnings and errors (and lines of no known level,
            such as a traceback); every line still reaches the run's history.
        silent: No line at all (the Python API's default); every line still reaches the
            run's history.
    """

    problems_only: bool = False
    silent: bool = False

    def shows(self, level: str | None) -> bool:
        """Whether a line of this dbt event level (None: not known) goes to the terminal."""
        if self.silent:
            return False
        return not self.problems_only or level is None or level in PROBLEM_LEVELS


_policy = TerminalPolicy()
# A caller's own policy for the runs it starts (the Python API's `echo=`), in its thread only.
_call_policy: ContextVar[TerminalPolicy | None] = ContextVar("call_policy", default=None)


def set_terminal_policy(policy: TerminalPolicy) -> None:
    """Set what this process shows of dbt's output (the terminal is one per process)."""
    global _policy  # one terminal per process, chosen once by the CLI
    _policy = policy


def terminal_policy() -> TerminalPolicy:
    """What this process (or, inside `terminal_policy_for_call`, this caller) shows of dbt's
    output."""
    return _call_policy.get() or _policy


@contextmanager
def terminal_policy_for_call(policy: TerminalPolicy) -> Iterator[None]:
    """Use `policy` for the runs started inside the block by this thread (or task) only.

    The process's policy is the CLI's; a library caller in one thread may want dbt's lines
    while another wants silence. Runtimes read the policy in the thread that invokes them.
    """
    token = _call_policy.set(policy)
    try:
        yield
    finally:
        _call_policy.reset(token)


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


class LevelTagger:
    """Pairs each line dbt writes in process with the level of the event that wrote it.

    dbt's logger writes an event's line and then calls the callbacks on the same thread, so a
    line waits here until the next event of its thread gives its level. A line that is still
    waiting when its thread writes again came from no event (a plain `print`): it is passed on
    with no level.
    """

    def __init__(self, emit: Callable[[str, str, str | None], None]) -> None:
        self._emit = emit
        self._waiting: dict[int, list[tuple[str, str]]] = {}
        self._lock = threading.Lock()

    def line(self, stream: str, text: str) -> None:
        """A complete line written on this thread."""
        with self._lock:
            self._waiting.setdefault(threading.get_ident(), []).append((stream, text))

    def writing(self) -> None:
        """This thread writes again: what it wrote before came from no event."""
        self._release(threading.get_ident(), None)

    def level(self, level: str) -> None:
        """dbt fired an event of this level on this thread (after writing its line, if any)."""
        self._release(threading.get_ident(), level)

    def finish(self) -> None:
        """Pass on every waiting line (the invocation is over)."""
        with self._lock:
            idents = list(self._waiting)
        for ident in idents:
            self._release(ident, None)

    def _release(self, ident: int, level: str | None) -> None:
        with self._lock:
            lines = self._waiting.pop(ident, None)
        for stream, text in lines or ():
            self._emit(stream, text, level)


class TeeStream(io.TextIOBase):
    """A text stream that writes through to `target` and splits what it gets into lines.

    With `through=False` nothing is written through: whoever gets the lines decides what to show.
    A target that fails (its reader went away) is given up quietly; the lines still go on.
    """

    def __init__(
        self,
        target: TextIO,
        on_line: Callable[[str], None],
        *,
        through: bool = True,
        before_write: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self._target = target
        self._through = through
        self._before_write = before_write
        self._splitter = LineSplitter(on_line)

    def write(self, text: str) -> int:
        """Write through, and hand complete lines on."""
        if self._before_write is not None:
            self._before_write()
        if self._through:
            write_quietly(self._target, text, flush=False)
        self._splitter.feed(text)
        return len(text)

    def flush(self) -> None:
        """Flush the target."""
        if self._through:
            write_quietly(self._target, "", flush=True)

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


def write_quietly(target: TextIO, text: str, *, flush: bool = True) -> bool:
    """Write to a terminal or pipe; if its reader went away, stop writing to it, quietly.

    A closed pipe (`dot build | head`) must not stop a run or fill the screen with tracebacks:
    the descriptor is pointed at /dev/null so later writes, and Python's flush at exit, succeed.

    Returns:
        False if the target could not be written.
    """
    try:
        if text:
            target.write(text)
        if flush:
            target.flush()
    except BrokenPipeError:
        silence(target)
        return False
    except (OSError, ValueError):
        return False
    return True


def silence(stream: TextIO) -> None:
    """Point `stream`'s descriptor at /dev/null (its reader went away)."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


@contextmanager
def tee_stdio(output: OutputSink | None, tail: Tail | None = None) -> Iterator[LevelTagger | None]:
    """Copy every line written to `sys.stdout`/`sys.stderr` to `output` (and `tail`) meanwhile.

    Beside a live progress display (the policy shows problems only), dbt's lines on stdout are
    not written through: the `LevelTagger` yielded must be told each event's level (dbt's
    callback), and a line goes to the terminal once its level says it should. Otherwise None
    is yielded and everything is written through as it comes.
    """
    policy = terminal_policy()
    if output is None and tail is None and not policy.problems_only and not policy.silent:
        yield None
        return
    saved = sys.stdout, sys.stderr

    def sender(stream: str) -> Callable[[str], None]:
        def send(line: str) -> None:
            clean = strip_ansi(line)
            if tail is not None:
                tail.add(clean)
            if output is not None:
                output.line(stream, clean)

        return send

    def show(stream: str, line: str, level: str | None) -> None:
        if policy.shows(level):
            write_quietly(saved[1] if stream == "stderr" else saved[0], line + "\n")

    tagger = LevelTagger(show) if policy.problems_only else None
    if tagger is not None:
        to_sink = sender("stdout")

        def on_stdout(line: str) -> None:
            to_sink(line)
            tagger.line("stdout", line)

        out = TeeStream(saved[0], on_stdout, through=False, before_write=tagger.writing)
    else:
        out = TeeStream(saved[0], sender("stdout"), through=not policy.silent)
    err = TeeStream(saved[1], sender("stderr"), through=not policy.silent)
    sys.stdout, sys.stderr = out, err
    try:
        yield tagger
    finally:
        sys.stdout, sys.stderr = saved
        out.finish()
        err.finish()
        if tagger is not None:
            tagger.finish()


class TerminalEcho:
    """Writes lines of a child's output to this process's stdout/stderr, timestamped."""

    def __init__(self, *, timestamps: bool = True) -> None:
        self._timestamps = timestamps
        self._lock = threading.Lock()
        # read here, in the invoking thread: lines arrive on the child's reader threads
        self._policy = terminal_policy()

    def line(self, stream: str, text: str, level: str | None = None) -> None:
        """Write one line to the matching stream, if the terminal policy shows its level."""
        if not self._policy.shows(level):
            return
        target = sys.stderr if stream == "stderr" else sys.stdout
        shown = stamp(text) if self._timestamps else text
        with self._lock:
            # a closed terminal must not stop the run; the sink still gets the line
            write_quietly(target, shown + "\n")

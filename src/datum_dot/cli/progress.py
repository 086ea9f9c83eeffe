"""Show a run's progress on a terminal: a status line at once, then one live progress bar.

On a terminal (stderr), the screen is never blank while dbt is imported: a status line says what
is being prepared (planning, the worktree, packages, the isolation check) within a moment of the
command starting, and gives way to a rich progress bar once the run proper starts. The bar
redirects stdout and stderr through rich, so the lines that do reach the screen (dbt's warnings
and errors, see `runtimes.output.TerminalPolicy`) scroll above it instead of tearing it.

Without a terminal nothing is drawn: dbt's own lines, written once, are the progress, and the
summary line follows them.
"""

from __future__ import annotations

import shutil
import sys
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

from datum_dot.runs.progress import ProgressTracker

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

_CLEAR_LINE = "\r\x1b[2K"
_RUNNING = "running dbt"


class ProgressView:
    """Turns preparation steps and dbt events into a status line and a progress bar."""

    def __init__(self, *, live: bool, stream: TextIO | None = None, prog: str = "dot") -> None:
        self._live = live
        self._stream = stream or sys.stderr
        self._prog = prog
        self._tracker = ProgressTracker()
        self._lock = threading.Lock()
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._status: str | None = None
        self._stepping = False

    @classmethod
    def for_terminal(cls, *, live: bool, prog: str = "dot") -> ProgressView:
        """A view that draws on stderr when `live` (stderr is a terminal), and nothing otherwise."""
        return cls(live=live, prog=prog)

    @property
    def live(self) -> bool:
        """Whether anything is drawn."""
        return self._live

    def status(self, text: str) -> None:
        """Say what is being prepared: the bar's description, or a line that gives way."""
        if not self._live:
            return
        with self._lock:
            if self._bar is not None and self._task is not None:
                self._bar.update(self._task, description=text)
                self._stepping = True
                return
            self._status = text
            line = f"{self._prog}: {text} ..."
            width = shutil.get_terminal_size().columns - 1
            if len(line) > width > 3:  # a wrapped line could not be taken down again
                line = line[: width - 3] + "..."
            self._write(_CLEAR_LINE + line)

    def clear_status(self) -> None:
        """Take the status line down (before a question or a message takes the line)."""
        with self._lock:
            if self._status is not None:
                self._status = None
                self._write(_CLEAR_LINE)

    def start(self) -> None:
        """Replace the status line with the live bar (nothing to start without a terminal)."""
        if not self._live or self._bar is not None:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        description = self._status or "starting dbt"
        self.clear_status()
        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            # The real stream (the proxies below print to it), drawn on: `live` decided it is a
            # terminal, whatever rich would make of FORCE_COLOR="" and the like.
            console=Console(file=self._stream, force_terminal=True),
            transient=True,
            redirect_stdout=True,
            redirect_stderr=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(description, total=None)
        self._stepping = self._status is not None

    def stop(self) -> None:
        """Take the bar (or the status line) down."""
        self.clear_status()
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def event(self, name: str, data: Mapping[str, Any]) -> None:
        """Take one dbt event."""
        state = self._tracker.on_event(name, data)
        if self._bar is None or self._task is None:
            return
        if state is None:
            if self._stepping:
                # dbt has started after the last preparation step: say so until a node starts
                self._stepping = False
                self._bar.update(self._task, description=_RUNNING)
            return
        self._stepping = False
        self._bar.update(
            self._task,
            total=state.total,
            completed=state.done,
            description=state.current or _RUNNING,
        )

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            self._live = False  # the terminal went away: draw nothing more

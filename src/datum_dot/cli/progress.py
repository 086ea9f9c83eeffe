"""Show a run's progress: a rich progress bar on a terminal, plain timestamped lines otherwise.

The bar is started before dbt runs and redirects stdout and stderr through rich, so dbt's own
lines (in process or from a child) scroll above it instead of tearing it. Without a terminal,
one line per finished node goes to stderr.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from datum_dot.runs.progress import ProgressState, ProgressTracker
from datum_dot.runtimes.output import stamp

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class ProgressView:
    """Turns dbt events into a progress display."""

    def __init__(self, *, live: bool) -> None:
        self._live = live
        self._tracker = ProgressTracker()
        self._lock = threading.Lock()
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._printed = 0

    @classmethod
    def for_terminal(cls) -> ProgressView:
        """A live bar when stderr is a terminal, plain lines otherwise."""
        return cls(live=sys.stderr.isatty())

    def start(self) -> None:
        """Start the live bar (nothing to start for plain lines)."""
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

        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr),  # the real stream: the proxies below print to it
            transient=True,
            redirect_stdout=True,
            redirect_stderr=True,
        )
        self._bar.start()
        self._task = self._bar.add_task("starting dbt", total=None)

    def stop(self) -> None:
        """Take the bar down."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def event(self, name: str, data: Mapping[str, Any]) -> None:
        """Take one dbt event."""
        state = self._tracker.on_event(name, data)
        if state is None:
            return
        if self._bar is not None and self._task is not None:
            self._bar.update(
                self._task,
                total=state.total,
                completed=state.done,
                description=state.current or "running",
            )
        elif not self._live:
            self._line(state)

    def _line(self, state: ProgressState) -> None:
        with self._lock:
            if state.done <= self._printed:
                return
            self._printed = state.done
            total = f"/{state.total}" if state.total else ""
            node, status = state.last_finished or ("", "")
            text = f"{state.done}{total} {status or 'done'} {node} (elapsed {state.elapsed:.1f}s)"
            sys.stderr.write(stamp(text) + "\n")
            sys.stderr.flush()

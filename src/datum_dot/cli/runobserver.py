"""The command line's observer of a run: steps, lock waits, the start-up questions, progress."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from datum_dot.cli import render
from datum_dot.cli.progress import ProgressView
from datum_dot.execute import Observer
from datum_dot.runs.plan import BuildPlan
from datum_dot.runtimes.output import silence, write_quietly


@contextmanager
def reader_may_be_gone() -> Iterator[None]:
    """Write to stderr; if its reader went away (`dot build 2>&1 | head`), stop writing there.

    The run goes on to the end and is recorded as usual: a closed pipe is not a cancellation.
    """
    try:
        yield
    except BrokenPipeError:
        silence(sys.stderr)


def _may_prompt() -> bool:
    ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    # The question goes to stderr: asked into a log file (`dot build ... 2>build.log` typed at a
    # terminal) nobody would see it, and the run would wait for an answer for ever.
    return sys.stdin.isatty() and sys.stderr.isatty() and not ci


def ask_startup_questions(project_dir: Path) -> None:
    """Offer each pending start-up suggestion; remember a 'no'."""
    # lazy: git is asked for suggestions only on an interactive terminal
    from datum_dot.runs import prompts

    suggestions, warnings = prompts.pending(project_dir)
    for warning in warnings:
        render.warn(warning)
    for suggestion in suggestions:
        print(
            f"{suggestion.question} ({suggestion.why}) [Y/n] ", end="", file=sys.stderr, flush=True
        )
        raw = sys.stdin.readline()
        if not raw:  # end of input (Ctrl-D): change nothing, and ask again next time
            print("", file=sys.stderr)
            return
        answer = raw.strip().lower()
        if answer in {"", "y", "yes"}:
            prompts.apply(suggestion)
            print(f"updated {suggestion.path}", file=sys.stderr)
        else:
            prompts.decline(project_dir, suggestion.key)
            print("not asking again for this project", file=sys.stderr)


class CliObserver(Observer):
    """Shows preparation steps and lock waits, and asks the start-up questions.

    On a terminal a step is the status line's (or the bar's) text; in a file each step is a line.
    """

    def __init__(
        self, *, prog: str, debug: bool, prompts: bool, progress: ProgressView | None = None
    ) -> None:
        self.prog = prog
        self.debug = debug
        self.prompts = prompts
        self.progress = progress

    def planned(self, plan: BuildPlan) -> None:
        """Show warnings (and debug notes) once the plan is valid, then the start-up questions."""
        self._clear()
        with reader_may_be_gone():
            for warning in plan.warnings:
                render.warn(warning)
            if self.debug:
                for note in plan.notes:
                    print(f"debug: {note}", file=sys.stderr)
        if plan.isolated is not None and self.prompts and _may_prompt():
            ask_startup_questions(plan.source_project_dir)
        if self.progress is not None:
            self.progress.start()  # after the questions: the bar must not hide them

    def event(self, name: str, data: Mapping[str, Any]) -> None:
        """Feed dbt's events to the progress display."""
        if self.progress is not None:
            self.progress.event(name, data)

    def wants_events(self) -> bool:
        """Only the progress display (on a terminal) reads dbt's events."""
        return self.progress is not None

    def history_warning(self, message: str) -> None:
        """Say, once, what the run history could not save."""
        self._clear()
        with reader_may_be_gone():
            render.warn(message)

    def telemetry_warning(self, message: str) -> None:
        """Say that the run's traces were not sent (the run goes on)."""
        self._clear()
        with reader_may_be_gone():
            render.warn(message)

    def waiting(self, message: str) -> None:
        """Say why the run is not starting yet (a line that stays: it may last)."""
        self._clear()
        write_quietly(sys.stderr, f"{self.prog}: {message}\n")

    def step(self, message: str) -> None:
        """Say what is being prepared."""
        if self.progress is not None and self.progress.live:
            self.progress.status(message)
        else:
            write_quietly(sys.stderr, f"{self.prog}: {message}\n")

    def _clear(self) -> None:
        if self.progress is not None:
            self.progress.clear_status()

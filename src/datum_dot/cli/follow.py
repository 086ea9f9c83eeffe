"""`dot logs --follow`: new runs as they start and end, and the live output of running ones.

The history is polled (every `POLL_SECONDS`): new records are found by their start time, and
each followed run's output.log is read from where the last poll stopped, whole lines only.

- `dot logs RUN_ID --follow` follows one run and exits 0 once it has finished (at once if it
  already had), after its last line and its final status.
- `dot logs --follow` follows every new run (of `--env`/`--project`) until Ctrl-C or SIGTERM,
  which end it with exit 50 like every cancelled command.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from datum_dot.history import RunStore, StoredRun, unstamp
from datum_dot.runs.run import RunStatus

POLL_SECONDS = 0.25
# A run's start time is set just before its record is written: look back this far for stragglers.
_LOOK_BACK = timedelta(minutes=1)


@dataclass
class _Tail:
    """Reads the new whole lines of one run's output.log."""

    run: StoredRun
    offset: int = 0
    partial: bytes = b""

    def read(self, *, final: bool = False) -> list[str]:
        if self.run.lines is not None:  # from the database: whole lines, counted
            lines = self.run.lines(self.offset)
            self.offset += len(lines)
            return lines
        try:
            with self.run.files()["output"].open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        chunks = (self.partial + data).split(b"\n")
        rest = chunks.pop()  # after the last newline: a line still being written
        self.partial = b"" if final else rest
        if final and rest:
            chunks.append(rest)
        return [chunk.decode("utf-8", errors="replace") for chunk in chunks]


@dataclass
class _Printer:
    """Prints follow events, for people or as JSON lines."""

    as_json: bool
    raw: bool = False
    prefix: bool = False
    shown: set[str] = field(default_factory=set)

    def run(self, run: StoredRun) -> None:
        if self.as_json:
            self._json({"event": "run", "run": run.to_json()})
            return
        # lazy: rich and the run views load only for what is shown
        from datum_dot.cli import runview

        line = (
            f"{runview.when(run.started_at)} {run.run_id} {run.start.spec or '(default)'} "
            f"{' '.join(run.start.command)} {run.status.value}"
        )
        if run.status is not RunStatus.RUNNING:
            line += f" in {runview.duration(run.duration_seconds)} (exit {run.exit_code})"
        self._text(line)

    def lines(self, run: StoredRun, lines: list[str]) -> None:
        for line in lines:
            if self.as_json:
                self._json({"event": "output", "run_id": run.run_id, "line": line})
            else:
                text = unstamp(line) if self.raw else line
                self._text(f"{run.run_id[-8:]} | {text}" if self.prefix else text)

    def _json(self, data: object) -> None:
        sys.stdout.write(json.dumps(data, default=str) + "\n")
        sys.stdout.flush()

    def _text(self, line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def follow_run(store: RunStore, run_id: str, *, raw: bool, as_json: bool) -> int:
    """Follow one run's output until it has finished; returns 0.

    Raises:
        HistoryError: No run matches `run_id` (or several do), or the history is unusable.
    """
    run = store.get(run_id)
    printer = _Printer(as_json=as_json, raw=raw)
    tail = _Tail(run)
    printer.run(run)
    while True:
        printer.lines(run, tail.read())
        if run.status is not RunStatus.RUNNING:
            printer.lines(run, tail.read(final=True))
            printer.run(run)
            return 0
        time.sleep(POLL_SECONDS)
        run = store.get(run.run_id)
        tail.run = run


def follow_all(store: RunStore, *, env: str | None, project: str | None, as_json: bool) -> int:
    """Print runs as they start and end, and the output of running ones, until interrupted.

    Running runs are shown from their first line. Never returns normally: Ctrl-C or SIGTERM
    raises KeyboardInterrupt, which the CLI turns into exit 50.

    Raises:
        HistoryError: The history is unusable.
    """
    printer = _Printer(as_json=as_json, prefix=True)
    tails: dict[str, _Tail] = {}
    known: set[str] = set()
    running = store.query(last=None, status=(RunStatus.RUNNING,), env=env, project=project)
    cursor = datetime.now(UTC)
    for run in reversed(running):
        known.add(run.run_id)
        tails[run.run_id] = _Tail(run)
        printer.run(run)
    while True:
        now = datetime.now(UTC)
        new = store.query(last=None, since=cursor - _LOOK_BACK, env=env, project=project)
        cursor = now
        for run in reversed(new):
            if run.run_id not in known:
                known.add(run.run_id)
                tails[run.run_id] = _Tail(run)
                printer.run(run)
        for run_id, tail in list(tails.items()):
            printer.lines(tail.run, tail.read())
            current = store.get(run_id)
            if current.status is not RunStatus.RUNNING:
                tail.run = current
                printer.lines(current, tail.read(final=True))
                printer.run(current)
                del tails[run_id]
        time.sleep(POLL_SECONDS)

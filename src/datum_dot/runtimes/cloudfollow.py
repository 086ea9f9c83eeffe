"""Follow a dbt Cloud run to its end: poll with backoff, stream step logs, cancel when told.

Each poll asks for the run with its steps (`include_related=["run_steps"]`); the new lines of
each step's log since the last poll go to the terminal (timestamped) and the output sink. Steps
starting and finishing are reported as `NodeStart` / `NodeFinished` events with a
`LogStartLine` total, so the same progress display works as for dbt-core.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from datum_dot.errors import DotError
from datum_dot.runtimes.base import EventHandler, OutputSink
from datum_dot.runtimes.cloudapi import CloudClient, Run, RunStatus, RunStep
from datum_dot.runtimes.output import TerminalEcho, strip_ansi

if TYPE_CHECKING:
    from datum_dot.runtimes.cloudjob import CloudSettings

Stopped = Literal["timeout", "interrupted"]
BACKOFF = 1.5


class Reporter:
    """Sends lines to the terminal and the sink, and events to the handler."""

    def __init__(self, on_event: EventHandler | None, output: OutputSink | None) -> None:
        self._on_event = on_event
        self._output = output
        self._echo = TerminalEcho()

    def line(self, text: str, stream: str = "stdout") -> None:
        """Show one line."""
        clean = strip_ansi(text)
        self._echo.line(stream, clean)
        if self._output is not None:
            self._output.line(stream, clean)

    def event(self, name: str, data: Mapping[str, Any]) -> None:
        """Report one event."""
        if self._on_event is not None:
            self._on_event(name, data)


class Follower:
    """Polls one run until it is final, the deadline passes, or we are interrupted."""

    def __init__(
        self,
        client: CloudClient,
        report: Reporter,
        settings: CloudSettings,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._report = report
        self._settings = settings
        self._sleep = sleep
        self._shown: dict[int, int] = {}
        self._started: set[int] = set()
        self._finished: set[int] = set()
        self._status: RunStatus | None = None

    def follow(self, run: Run, deadline: float | None) -> tuple[Run, Stopped | None]:
        """Poll until the run is final; returns the last state seen and why it stopped early.

        Raises:
            CloudTransientError: dbt Cloud stayed unreachable through the client's retries.
        """
        interval = self._settings.poll_interval_seconds
        try:
            while True:
                run = self._client.get_run(run.id, steps=True)
                self._show(run)
                if run.status.is_final:
                    return run, None
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    return run, "timeout"
                wait = interval if deadline is None else min(interval, deadline - now)
                self._sleep(max(wait, 0.0))
                interval = min(interval * BACKOFF, self._settings.poll_max_interval_seconds)
        except KeyboardInterrupt:
            return run, "interrupted"

    def cancel(self, run_id: int, *, why: Stopped) -> None:
        """Cancel the remote run, saying why; a failure to cancel is reported, not raised."""
        reason = "the timeout passed" if why == "timeout" else "the run was interrupted"
        try:
            self._client.cancel(run_id)
        except (DotError, KeyboardInterrupt) as e:
            self._report.line(f"could not cancel dbt Cloud run {run_id}: {e}", "stderr")
            return
        self._report.line(f"cancelled dbt Cloud run {run_id}: {reason}", "stderr")

    def _show(self, run: Run) -> None:
        if run.status != self._status:
            self._status = run.status
            self._report.event("CloudRunStatus", {"run_id": run.id, "status": int(run.status)})
            self._report.line(
                f"dbt Cloud run {run.id}: {run.status_humanized or run.status.name.lower()}"
            )
        steps = sorted(run.run_steps, key=lambda s: s.index)
        for step in steps:
            self._step(step, total=len(steps), final=run.status.is_final)

    def _step(self, step: RunStep, *, total: int, final: bool) -> None:
        info = {"unique_id": f"step.{step.index}", "node_name": step.name}
        if step.index not in self._started:
            self._started.add(step.index)
            self._report.event(
                "LogStartLine", {"index": step.index, "total": total, "node_info": info}
            )
            self._report.event("NodeStart", {"node_info": info})
        done = step.status is not None and step.status >= RunStatus.SUCCESS
        text = step.logs or ""
        lines = text.split("\n")
        # An unterminated last line may still be growing, unless the step is over.
        whole = (done or final) and not text.endswith("\n")
        complete = lines if whole else lines[:-1]
        for line in complete[self._shown.get(step.index, 0) :]:
            self._report.line(line)
        self._shown[step.index] = max(len(complete), self._shown.get(step.index, 0))
        if done and step.index not in self._finished:
            self._finished.add(step.index)
            status = {10: "success", 20: "error", 30: "cancelled"}.get(step.status or 0, "unknown")
            self._report.event("NodeFinished", {"node_info": {**info, "node_status": status}})

"""Whether runs are traced, and the trace that sends nothing when they are not.

OpenTelemetry is imported only when its endpoint variable is set, so a run without it pays
nothing (not even the import) and sends nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Self

from datum_dot.history import RunEnd, RunStart
from datum_dot.runs.plan import BuildPlan
from datum_dot.runtimes.base import EventHandler, OutputSink

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
"""Either turns tracing on; the OpenTelemetry SDK reads them (and every other OTEL_* variable)."""


class RunTrace:
    """One run's trace. This base class is the trace of an untraced run: it does nothing.

    Used as a context manager around the run: leaving it sends what the run queued.
    """

    def __enter__(self) -> Self:
        """Nothing to do at the start: the run's span started with the trace."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Send what the run queued."""

    def sink(self, sink: OutputSink) -> OutputSink:
        """`sink`, with each line of the run's output also sent as a log record."""
        return sink

    def events(self, handler: EventHandler | None) -> EventHandler | None:
        """`handler`, with each dbt event also read for the level of dbt's last line.

        None stays None when the run is not traced: nothing asks for dbt's events then.
        """
        return handler

    def finish(self, end: RunEnd) -> None:
        """End the run's span as the run ended and add its nodes' spans."""


OFF = RunTrace()


def is_configured(environ: Mapping[str, str]) -> bool:
    """Whether `environ` asks for traces: an OTLP endpoint is set and the SDK is not disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def start_run(
    start: RunStart,
    *,
    plan: BuildPlan,
    run_id: str | None,
    environ: Mapping[str, str],
    warn: Callable[[str], None],
) -> RunTrace:
    """Start the trace of a run that has just been recorded as started.

    Args:
        start: What the history recorded about the run's start.
        plan: The run's plan (for the isolated schema).
        run_id: The run's id in the history.
        environ: The variables the run resolves its profile with (for the schema's name).
        warn: Told, in one line, when the run's traces cannot be sent.

    Returns:
        The run's trace; one that does nothing when the process's environment sets no OTLP
        endpoint, or when OpenTelemetry is not installed (said through `warn`).
    """
    # The SDK reads its settings from the process's environment, so that is what decides.
    if not is_configured(os.environ):
        return OFF
    try:
        from datum_dot.telemetry import otlp
    except ImportError:
        names = " and ".join(name for name in ENDPOINT_VARIABLES if os.environ.get(name))
        warn(
            f"traces not sent: {names} is set but OpenTelemetry is not installed; "
            "pip install 'datum-dot[otel]'"
        )
        return OFF
    return otlp.start_run(start, plan=plan, run_id=run_id, environ=environ, warn=warn)

"""A run's span, its nodes' spans and its output lines as log records (OpenTelemetry's side).

Imported only when an OTLP endpoint is set (see `switch`). A run's telemetry never fails it:
every call into the SDK is guarded, and a failure ends the trace with one warning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import Status, StatusCode

from datum_dot.history import RunEnd, RunStart
from datum_dot.runs import isolation
from datum_dot.runs.plan import BuildPlan
from datum_dot.runs.run import RunStatus
from datum_dot.runtimes import artifacts
from datum_dot.runtimes.base import EventHandler, OutputSink
from datum_dot.telemetry.attributes import NodeSpan, end_attributes, node_spans, run_attributes
from datum_dot.telemetry.lines import Line, LineLevels
from datum_dot.telemetry.pipeline import Pipeline, pipeline
from datum_dot.telemetry.switch import RunTrace

FLUSH_SECONDS = 5.0
"""How long the end of a run waits for its spans and log records to be sent."""


def start_run(
    start: RunStart,
    *,
    plan: BuildPlan,
    run_id: str | None,
    environ: Mapping[str, str],
    warn: Callable[[str], None],
) -> RunTrace:
    """Start a run's span now; see `switch.start_run`."""
    try:
        return OtlpRunTrace(pipeline(), start, plan=plan, run_id=run_id, environ=environ, warn=warn)
    except Exception as e:  # noqa: BLE001 - telemetry must never stop a run
        warn(f"traces not sent: could not start the run's trace: {e}")
        return RunTrace()


class OtlpRunTrace(RunTrace):
    """A run's span, sent over OTLP/HTTP with its nodes' spans and its lines as log records."""

    def __init__(
        self,
        sender: Pipeline,
        start: RunStart,
        *,
        plan: BuildPlan,
        run_id: str | None,
        environ: Mapping[str, str],
        warn: Callable[[str], None],
    ) -> None:
        self._pipeline = sender
        self._warn = warn
        self._plan = plan
        self._started = start.started_at or datetime.now(UTC)
        self._span = sender.tracer.start_span(
            f"dot {' '.join(start.command)}",
            attributes=run_attributes(start, run_id=run_id, schema=_schema(plan, environ)),
            start_time=_nanos(self._started),
        )
        self._context = trace.set_span_in_context(self._span)
        self._run_id = run_id
        self._levels = LineLevels(self._log)
        self._broken = False

    def sink(self, sink: OutputSink) -> OutputSink:
        """`sink`, with each line also sent as a log record of the run's trace."""
        return _TeeSink(sink, self)

    def events(self, handler: EventHandler | None) -> EventHandler | None:
        """`handler`, with each event's level given to the line dbt wrote just before it."""

        def on_event(name: str, data: Mapping[str, Any]) -> None:
            if handler is not None:
                handler(name, data)
            self._guarded(self._levels.event, data)

        return on_event

    def line(self, stream: str, text: str) -> None:
        """Take one line of the run's output."""
        self._guarded(self._levels.line, stream, text)

    def finish(self, end: RunEnd) -> None:
        """End the span as the run ended and add a span per dbt node."""
        self._guarded(self._end, end)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Send what the run queued, waiting at most `FLUSH_SECONDS`."""
        problem = self._pipeline.flush(FLUSH_SECONDS)
        if problem is not None and not self._broken:
            self._warn(f"traces not sent: {problem}; the run is not affected")

    def _end(self, end: RunEnd) -> None:
        self._levels.finish()
        if end.run_results is not None:
            found = artifacts.fresh_run_results(end.run_results.parent, self._started.timestamp())
            for node in node_spans(found):
                self._node_span(node, end)
        self._span.set_attributes(end_attributes(end))
        if end.status is RunStatus.SUCCESS:
            self._span.set_status(Status(StatusCode.OK))
        else:
            self._span.set_status(Status(StatusCode.ERROR, end.error_message or end.status.value))
        self._span.end(_nanos(end.finished_at or datetime.now(UTC)))

    def _node_span(self, node: NodeSpan, end: RunEnd) -> None:
        # a node dbt skipped has no timing: a point at the run's end
        finished = node.finished or end.finished_at or datetime.now(UTC)
        span = self._pipeline.tracer.start_span(
            node.unique_id,
            context=self._context,
            attributes=node.attributes(),
            start_time=_nanos(node.started or finished),
        )
        if node.failed:
            span.set_status(Status(StatusCode.ERROR, node.message or node.status))
        else:
            span.set_status(Status(StatusCode.OK))
        span.end(_nanos(finished))

    def _log(self, line: Line) -> None:
        number, text = line.severity()
        attributes: dict[str, str] = {"log.iostream": line.stream}
        if self._run_id is not None:
            attributes["datum_dot.run_id"] = self._run_id
        self._pipeline.logger.emit(
            timestamp=_nanos(datetime.now(UTC)),
            context=self._context,
            severity_number=SeverityNumber(number),
            severity_text=text,
            body=line.text,
            attributes=attributes,
        )

    def _guarded(self, call: Any, *args: Any) -> None:
        if self._broken:
            return
        try:
            call(*args)
        except Exception as e:  # noqa: BLE001 - telemetry must never stop a run
            self._broken = True
            self._warn(f"traces not sent: the run's trace failed: {e}")


class _TeeSink:
    """An output sink that also hands each line to the run's trace."""

    def __init__(self, sink: OutputSink, run_trace: OtlpRunTrace) -> None:
        self._sink = sink
        self._trace = run_trace

    def line(self, stream: str, text: str) -> None:
        self._sink.line(stream, text)
        self._trace.line(stream, text)


def _schema(plan: BuildPlan, environ: Mapping[str, str]) -> str | None:
    iso = plan.isolated
    if iso is None:
        return None
    return isolation.expected_schema(iso.profile.schema_after, environ) or iso.profile.schema_after


def _nanos(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


__all__ = ["FLUSH_SECONDS", "OtlpRunTrace", "Pipeline", "start_run"]

"""The OpenTelemetry side: a run's span, its nodes' spans and its lines as log records.

Imported only when an OTLP endpoint is set (see `switch`). The SDK reads every standard OTEL_*
variable itself (endpoint, headers, timeout, service name, resource attributes); the service
name is `datum-dot` unless they name another.

A run's telemetry must never fail it or hold up the process: every call into the SDK is
guarded, and the send at the run's end waits at most `FLUSH_SECONDS` (the SDK's own flush
ignores its timeout, opentelemetry-python#4568), then goes on in a daemon thread. The
providers do not flush at exit for the same reason: a collector that never answers would
hold the process for the exporter's full timeout and retries.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import Logger, SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode

from datum_dot import __version__
from datum_dot.history import RunEnd, RunStart
from datum_dot.runs import isolation
from datum_dot.runs.plan import BuildPlan
from datum_dot.runs.run import RunStatus
from datum_dot.runtimes import artifacts
from datum_dot.runtimes.base import EventHandler, OutputSink
from datum_dot.telemetry.attributes import NodeSpan, end_attributes, node_spans, run_attributes
from datum_dot.telemetry.lines import Line, LineLevels
from datum_dot.telemetry.switch import RunTrace

FLUSH_SECONDS = 5.0
"""How long the end of a run waits for its spans and log records to be sent."""
SERVICE = "datum-dot"
SCOPE = "datum_dot"


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
        pipeline = _pipeline()
        return OtlpRunTrace(pipeline, start, plan=plan, run_id=run_id, environ=environ, warn=warn)
    except Exception as e:  # noqa: BLE001 - telemetry must never stop a run
        warn(f"traces not sent: could not start the run's trace: {e}")
        return RunTrace()


class OtlpRunTrace(RunTrace):
    """A run's span, sent over OTLP/HTTP with its nodes' spans and its lines as log records."""

    def __init__(
        self,
        pipeline: Pipeline,
        start: RunStart,
        *,
        plan: BuildPlan,
        run_id: str | None,
        environ: Mapping[str, str],
        warn: Callable[[str], None],
    ) -> None:
        self._pipeline = pipeline
        self._warn = warn
        self._plan = plan
        self._started = start.started_at or datetime.now(UTC)
        self._span = pipeline.tracer.start_span(
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

    def events(self, handler: EventHandler) -> EventHandler:
        """`handler`, with each event's level given to the line dbt wrote just before it."""

        def on_event(name: str, data: Mapping[str, Any]) -> None:
            handler(name, data)
            self._guarded(self._levels.event, data)

        return on_event

    def line(self, stream: str, text: str) -> None:
        """Take one line of the run's output."""
        self._guarded(self._levels.line, stream, text)

    def finish(self, end: RunEnd) -> None:
        """End the span as the run ended, add a span per dbt node, and send everything."""
        self._guarded(self._end, end)
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


@dataclass(frozen=True)
class Pipeline:
    """The process's tracer and logger, their providers, and what their exports reported.

    Attributes:
        tracer: Makes the spans.
        logger: Emits the log records (a no-op logger when no logs endpoint is set).
        providers: The providers to flush at the end of each run.
        watches: The exporters' reports of failed exports.
        endpoint: Where the spans go, for messages.
    """

    tracer: trace.Tracer
    logger: Logger
    providers: tuple[TracerProvider | LoggerProvider, ...]
    watches: tuple[_Watch, ...]
    endpoint: str

    def flush(self, seconds: float) -> str | None:
        """Send what is queued, waiting at most `seconds`; say what went wrong, if anything."""
        done = threading.Event()

        def send() -> None:
            for provider in self.providers:
                provider.force_flush()
            done.set()

        threading.Thread(target=send, name="datum-dot-otlp-flush", daemon=True).start()
        if not done.wait(seconds):
            return f"no answer from {self.endpoint} within {seconds:g}s"
        failed = [watch.take() for watch in self.watches]
        if any(failed):
            return f"{self.endpoint} did not take them (see OTEL_EXPORTER_OTLP_* settings)"
        return None


class _Watch:
    """Whether an exporter failed to send a batch since last asked."""

    def __init__(self) -> None:
        self._failed = threading.Event()

    def failed(self) -> None:
        self._failed.set()

    def take(self) -> bool:
        failed = self._failed.is_set()
        self._failed.clear()
        return failed


class _WatchedSpans(SpanExporter):
    def __init__(self, exporter: SpanExporter, watch: _Watch) -> None:
        self._exporter = exporter
        self._watch = watch

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self._exporter.export(spans)
        if result is not SpanExportResult.SUCCESS:
            self._watch.failed()
        return result

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)


class _WatchedLogs(LogRecordExporter):
    def __init__(self, exporter: LogRecordExporter, watch: _Watch) -> None:
        self._exporter = exporter
        self._watch = watch

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        result = self._exporter.export(batch)
        if result is not LogRecordExportResult.SUCCESS:
            self._watch.failed()
        return result

    def shutdown(self) -> None:
        self._exporter.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)


@cache
def _pipeline() -> Pipeline:
    """The process's providers, made on the first traced run (one per process, like the SDK's)."""
    # The exporters log each failed batch and retry (to stderr, where nothing else configured
    # logging); the run reports a failed send once, itself.
    exporters = logging.getLogger("opentelemetry.exporter.otlp")
    exporters.addHandler(logging.NullHandler())
    exporters.propagate = False
    resource = _resource()
    span_watch = _Watch()
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(_WatchedSpans(OTLPSpanExporter(), span_watch))
    )
    providers: list[TracerProvider | LoggerProvider] = [tracer_provider]
    watches = [span_watch]
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    if _sends_logs(os.environ):
        log_watch = _Watch()
        logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(_WatchedLogs(OTLPLogExporter(), log_watch))
        )
        providers.append(logger_provider)
        watches.append(log_watch)
    return Pipeline(
        tracer=tracer_provider.get_tracer(SCOPE, __version__),
        logger=logger_provider.get_logger(SCOPE, __version__),
        providers=tuple(providers),
        watches=tuple(watches),
        endpoint=_endpoint(os.environ),
    )


def _resource() -> Resource:
    found = Resource.create({SERVICE_VERSION: __version__})
    if str(found.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        found = found.merge(Resource({SERVICE_NAME: SERVICE}))
    return found


def _sends_logs(environ: Mapping[str, str]) -> bool:
    # Only a traces endpoint set: logs would go to the SDK's default (localhost:4318), not there.
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        or environ.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "").strip()
    )


def _endpoint(environ: Mapping[str, str]) -> str:
    return (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    )


def _schema(plan: BuildPlan, environ: Mapping[str, str]) -> str | None:
    iso = plan.isolated
    if iso is None:
        return None
    return isolation.expected_schema(iso.profile.schema_after, environ) or iso.profile.schema_after


def _nanos(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


__all__ = ["FLUSH_SECONDS", "OtlpRunTrace", "Pipeline", "start_run"]

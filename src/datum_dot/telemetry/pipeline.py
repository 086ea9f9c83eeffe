"""The process's OpenTelemetry providers and OTLP/HTTP exporters, and a send that cannot hang.

The SDK reads every standard OTEL_* variable itself (endpoint, headers, timeout, service name,
resource attributes); the service name is `datum-dot` unless they name another. The providers
are this process's own, not OpenTelemetry's global ones, so a host application's own tracing
(an orchestrator's) is left as it is.

A send waits at most the time it is given, then goes on in a daemon thread: the SDK's
`force_flush` ignores its timeout (opentelemetry-python#4568). The providers do not flush at
exit for the same reason: a collector that never answers would hold the process for the
exporter's whole timeout and retries.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from opentelemetry import trace
from opentelemetry._logs import Logger
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

from datum_dot import __version__

SERVICE = "datum-dot"
SCOPE = "datum_dot"


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
            return f"{self.endpoint} did not answer within {seconds:g}s"
        failed = [watch.take() for watch in self.watches]
        if any(failed):
            return (
                f"{self.endpoint} could not be reached or refused them (check "
                "OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_HEADERS)"
            )
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
def pipeline() -> Pipeline:
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
    if sends_logs(os.environ):
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


def sends_logs(environ: Mapping[str, str]) -> bool:
    """Whether `environ` names where log records go (not only where spans go)."""
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

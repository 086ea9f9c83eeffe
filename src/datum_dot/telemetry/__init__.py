"""Each run as an OpenTelemetry trace, with dbt's lines as log records, sent over OTLP/HTTP.

With `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set and the `otel`
extra installed, `execute()` makes each recorded run a span with a child span per dbt node and
sends the run's output lines as log records of that trace. With neither variable set, nothing
here imports OpenTelemetry and nothing is sent. Telemetry never fails a run (adr/0018).
"""

from __future__ import annotations

from datum_dot.telemetry.switch import RunTrace, is_configured, start_run

__all__ = ["RunTrace", "is_configured", "start_run"]

"""A real OTLP/HTTP receiver on loopback that decodes what it gets with OpenTelemetry's protobufs.

It answers `POST /v1/traces` and `POST /v1/logs` as a collector does (200, an empty protobuf
response) and keeps every span and log record it was sent, with the resource they came with.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def value(any_value: AnyValue) -> Any:
    """The Python value of an OTLP `AnyValue`."""
    kind = any_value.WhichOneof("value")
    return None if kind is None else getattr(any_value, kind)


def attributes(pairs: Any) -> dict[str, Any]:
    """OTLP attributes (repeated `KeyValue`) as a dict."""
    return {pair.key: value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


@dataclass
class Received:
    """What the receiver was sent, decoded.

    Attributes:
        spans: Each span, with `resource` (its resource's attributes) beside it.
        logs: Each log record, with `resource` beside it.
        requests: Each request's path and content type.
        headers: Each request's headers (names in lower case).
    """

    spans: list[tuple[dict[str, Any], Any]] = field(default_factory=list)
    logs: list[tuple[dict[str, Any], Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    received: Received

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        with self.received.lock:
            self.received.requests.append((self.path, self.headers.get("Content-Type", "")))
            self.received.headers.append({k.lower(): v for k, v in self.headers.items()})
        if self.path == "/v1/traces":
            traces = ExportTraceServiceRequest.FromString(body)
            with self.received.lock:
                for rs in traces.resource_spans:
                    resource = attributes(rs.resource.attributes)
                    for scope in rs.scope_spans:
                        self.received.spans.extend((resource, s) for s in scope.spans)
            self._answer(ExportTraceServiceResponse().SerializeToString())
        elif self.path == "/v1/logs":
            logs = ExportLogsServiceRequest.FromString(body)
            with self.received.lock:
                for rl in logs.resource_logs:
                    resource = attributes(rl.resource.attributes)
                    for scope in rl.scope_logs:
                        self.received.logs.extend((resource, r) for r in scope.log_records)
            self._answer(ExportLogsServiceResponse().SerializeToString())
        else:
            self.send_response(404)
            self.end_headers()

    def _answer(self, payload: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Say nothing per request."""


@contextmanager
def otlp_receiver() -> Iterator[tuple[str, Received]]:
    """Serve OTLP/HTTP on 127.0.0.1 at a free port; yield its base URL and what it receives."""
    received = Received()
    handler = type("Handler", (_Handler,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()

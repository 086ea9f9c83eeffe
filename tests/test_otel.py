"""Traces and log records over OTLP/HTTP, received by a real collector-like server on loopback.

One isolated `dot build` of the example project (with a model that fails and one downstream of
it) is sent to the receiver in `tests/helpers/otlp.py`, which decodes the requests with
OpenTelemetry's protobuf package; several tests read what it got. The others run a small
command each: a dead endpoint, no endpoint, and no OpenTelemetry installed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from datum_dot.history import RunEnd, RunStart
from datum_dot.runs.run import RunStatus
from datum_dot.telemetry import is_configured
from datum_dot.telemetry.attributes import end_attributes, node_spans, run_attributes
from datum_dot.telemetry.lines import Line, LineLevels
from datum_dot.telemetry.pipeline import sends_logs
from tests.helpers.example import ExampleProject, make_example
from tests.helpers.otlp import Received, attributes, otlp_receiver

pytestmark = pytest.mark.slow

BROKEN_MODEL = "select no_such_column from {{ ref('stg_orders') }}\n"
AFTER_BROKEN = "select * from {{ ref('broken') }}\n"
OTEL_MODULES = ("opentelemetry.sdk", "opentelemetry.exporter", "opentelemetry.proto")


@dataclass(frozen=True)
class TracedBuild:
    """One traced build and what the receiver got from it."""

    example: ExampleProject
    result: subprocess.CompletedProcess[str]
    received: Received
    seconds: float

    def run_span(self) -> Any:
        roots = [span for _, span in self.received.spans if not span.parent_span_id]
        assert len(roots) == 1, [span.name for _, span in self.received.spans]
        return roots[0]

    def node_spans(self) -> dict[str, Any]:
        spans = [span for _, span in self.received.spans if span.parent_span_id]
        by_id = {attributes(span.attributes)["dbt.node.unique_id"]: span for span in spans}
        assert len(by_id) == len(spans)
        return by_id


@pytest.fixture(scope="module")
def example(
    tmp_path_factory: pytest.TempPathFactory, module_monkeypatch: pytest.MonkeyPatch
) -> ExampleProject:
    """The example project with a broken model (and one after it) committed."""
    base = tmp_path_factory.mktemp("otel")
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(base / "warehouse.duckdb"))
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        module_monkeypatch.delenv(name, raising=False)
    project = make_example(base, monkeypatch_env=False)
    project.repo.commit(
        {"models/broken.sql": BROKEN_MODEL, "models/after_broken.sql": AFTER_BROKEN},
        "a model that fails",
    )
    return project


@pytest.fixture(scope="module")
def traced(example: ExampleProject) -> Iterator[TracedBuild]:
    """`dot build dev@HEAD` with the receiver as the OTLP endpoint."""
    with otlp_receiver() as (url, received):
        began = time.monotonic()
        result = example.dot("build", "dev@HEAD", env={"OTEL_EXPORTER_OTLP_ENDPOINT": url})
        seconds = time.monotonic() - began
        # read at once: the program must have sent everything before it exited
        yield TracedBuild(example, result, received, seconds)


def test_otel_run_span_carries_the_run(traced: TracedBuild) -> None:
    assert traced.result.returncode == 30, traced.result.stderr
    span = traced.run_span()
    attrs = attributes(span.attributes)
    commit = traced.example.repo.head()
    assert span.name == "dot build"
    assert attrs["datum_dot.project"] == "jaffle_dot"
    assert attrs["datum_dot.environment"] == "dev"
    assert attrs["datum_dot.spec"] == "dev@HEAD"
    assert attrs["datum_dot.commit"] == commit
    assert attrs["vcs.ref.head.revision"] == commit
    schema = str(attrs["datum_dot.schema"])
    assert schema.startswith("dev_")
    assert len(schema) >= 12
    assert commit.startswith(schema.removeprefix("dev_"))
    assert attrs["datum_dot.runtime"] == "local"
    assert attrs["datum_dot.trigger"] == "manual"
    assert attrs["datum_dot.status"] == "FAILED"
    assert attrs["datum_dot.exit_code"] == 30
    assert attrs["dbt.exit_code"] == 1
    assert attrs["datum_dot.run_id"] in traced.result.stdout + traced.result.stderr
    assert span.status.code == 2  # ERROR
    resource = traced.received.spans[0][0]
    assert resource["service.name"] == "datum-dot"
    assert all(content == "application/x-protobuf" for _, content in traced.received.requests)


def test_otel_node_spans_one_per_node_with_status(traced: TracedBuild) -> None:
    run = traced.run_span()
    nodes = traced.node_spans()
    types = [attributes(s.attributes)["dbt.node.resource_type"] for s in nodes.values()]
    assert types.count("seed") == 3
    assert types.count("model") == 8  # the example's 7 and the 2 added, less the ephemeral one
    assert types.count("test") >= 20
    for unique_id, span in nodes.items():
        assert span.trace_id == run.trace_id
        assert span.parent_span_id == run.span_id
        assert span.name == unique_id
        assert run.start_time_unix_nano <= span.start_time_unix_nano <= span.end_time_unix_nano
        assert span.end_time_unix_nano <= run.end_time_unix_nano
    broken = nodes["model.jaffle_dot.broken"]
    assert attributes(broken.attributes)["dbt.node.status"] == "error"
    assert broken.status.code == 2
    assert "no_such_column" in broken.status.message
    after = attributes(nodes["model.jaffle_dot.after_broken"].attributes)
    assert after["dbt.node.status"] == "skipped"
    seed = nodes["seed.jaffle_dot.raw_customers"]
    assert attributes(seed.attributes)["dbt.node.status"] == "success"
    assert attributes(seed.attributes)["dbt.node.rows_affected"] > 0
    assert seed.status.code == 1  # OK
    assert seed.end_time_unix_nano > seed.start_time_unix_nano
    test = attributes(nodes["test.jaffle_dot.assert_payments_match_orders"].attributes)
    assert test["dbt.node.status"] == "pass"


def test_otel_log_records_are_dbts_lines_in_the_run_trace(traced: TracedBuild) -> None:
    run = traced.run_span()
    records = [record for _, record in traced.received.logs]
    bodies = [record.body.string_value for record in records]
    assert any("Running with dbt=" in body for body in bodies), bodies[:5]
    assert all(record.trace_id == run.trace_id for record in records)
    assert all(record.span_id == run.span_id for record in records)
    started = next(r for r in records if "Running with dbt=" in r.body.string_value)
    assert (started.severity_number, started.severity_text) == (9, "INFO")
    # dbt's error lines carry the level of the event that wrote them
    errors = [r for r in records if r.severity_text == "ERROR"]
    assert any("broken" in r.body.string_value for r in errors), [
        r.body.string_value for r in errors
    ]
    assert any(r.body.string_value.startswith("dot: ") for r in records)
    stream = {attributes(r.attributes)["log.iostream"] for r in records}
    assert stream == {"stdout", "stderr"}


def test_otel_dead_endpoint_neither_fails_nor_hangs_the_run(
    example: ExampleProject, traced: TracedBuild
) -> None:
    del traced  # the isolated build and its schema are ready
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    began = time.monotonic()
    result = example.dot(
        "seed", "dev@HEAD", env={"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"}
    )
    seconds = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "traces not sent" in line]
    assert len(warned) == 1, result.stderr
    assert warned[0].startswith("warning: traces not sent: ")
    assert "Traceback" not in result.stderr
    assert seconds < 40, seconds


def run_in_process(
    example: ExampleProject, setup: str, args: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run `main(args)` in a new Python process after `setup`; it prints the OTel modules."""
    code = (
        "import sys\n"
        f"{setup}\n"
        "from datum_dot.cli.main import main\n"
        f"code = main({args!r})\n"
        f"loaded = sorted(m for m in sys.modules if m.startswith({OTEL_MODULES!r})"
        " or m == 'datum_dot.telemetry.otlp')\n"
        "print('LOADED', loaded)\n"
        "sys.exit(code)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=example.path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_otel_unset_imports_nothing(example: ExampleProject, traced: TracedBuild) -> None:
    del traced
    result = run_in_process(example, "", ["seed", "dev@HEAD"], {"OTEL_SERVICE_NAME": "shop"})
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout, result.stdout[-500:]
    assert "traces" not in result.stderr


def test_otel_missing_extra_says_how_to_install(
    example: ExampleProject, traced: TracedBuild
) -> None:
    del traced
    with otlp_receiver() as (url, received):
        result = run_in_process(
            example,
            "sys.modules['opentelemetry.sdk'] = None  # as if the otel extra were not installed",
            ["seed", "dev@HEAD"],
            {"OTEL_EXPORTER_OTLP_ENDPOINT": url},
        )
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "traces not sent" in line]
    assert len(warned) == 1, result.stderr
    assert "pip install 'datum-dot[otel]'" in warned[0]
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in warned[0]
    assert received.requests == []


def test_otel_is_configured_by_either_endpoint_unless_disabled() -> None:
    assert not is_configured({})
    assert is_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert is_configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c/v1/traces"})
    assert not is_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": " "})
    assert not is_configured(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}
    )
    # with only the traces endpoint, records would go to the SDK's default address: none are sent
    assert not sends_logs({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c/v1/traces"})
    assert sends_logs({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert sends_logs({"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://c/v1/logs"})


class _Event(dict[str, Any]):
    """An in-process dbt event's data: it knows its level."""

    def __init__(self, level: str) -> None:
        super().__init__()
        self.level = level


def test_otel_line_levels_pair_dbt_lines_with_their_event() -> None:
    got: list[Line] = []
    levels = LineLevels(got.append)
    levels.line("stdout", "1 of 2 ERROR creating model")
    levels.event(_Event("error"))
    levels.event(_Event("debug"))  # an event that wrote no line
    levels.line("stderr", "dot: checking that every node lands in the isolated schema")
    levels.line("stdout", "a plain print")
    levels.line("stdout", "Done.")
    levels.event({"no": "level"})  # a child process's event: the level is not known
    levels.finish()
    assert [(line.text, line.level) for line in got] == [
        ("1 of 2 ERROR creating model", "error"),
        ("dot: checking that every node lands in the isolated schema", "info"),
        ("a plain print", None),
        ("Done.", None),
    ]
    assert got[0].severity() == (17, "ERROR")
    assert got[2].severity() == (0, None)


def test_otel_attributes_from_records_and_run_results() -> None:
    start = RunStart(project="shop", spec="prod@main", command=("build",), env="prod",
                     ref="main", commit="a" * 40, runtime="local", trigger="cron",
                     schedule="nightly")  # fmt: skip
    attrs = run_attributes(start, run_id="shop-1", schema="analytics_aaaaaaaaaa")
    assert attrs["datum_dot.schedule"] == "nightly"
    assert attrs["vcs.ref.head.name"] == "main"
    assert "datum_dot.status" not in attrs
    ended = end_attributes(RunEnd(RunStatus.SUCCESS, 10, dbt_exit_code=0))
    assert ended == {"datum_dot.status": "SUCCESS", "datum_dot.exit_code": 10, "dbt.exit_code": 0}
    results = {
        "results": [
            {"unique_id": "model.shop.a", "status": "success", "execution_time": 0.5,
             "adapter_response": {"rows_affected": 7},
             "timing": [{"name": "compile", "started_at": "2026-12-03T10:00:00.000000Z",
                         "completed_at": "2026-12-03T10:00:00.100000Z"},
                        {"name": "execute", "started_at": "2026-12-03T10:00:00.100000",
                         "completed_at": "2026-12-03T10:00:00.500000"}]},
            {"unique_id": "test.shop.b", "status": "fail", "failures": 3, "timing": []},
        ]
    }  # fmt: skip
    first, second = node_spans(results)
    assert first.resource_type == "model"
    assert first.rows_affected == 7
    assert first.started is not None
    assert first.finished is not None
    assert (first.finished - first.started).total_seconds() == pytest.approx(0.5)
    assert not first.failed
    assert second.failed
    assert second.started is None
    assert second.attributes()["dbt.node.failures"] == 3
    assert node_spans(None) == []


def test_otel_subprocess_runtime_sends_nodes_and_line_levels(
    example: ExampleProject, traced: TracedBuild
) -> None:
    del traced
    with otlp_receiver() as (url, received):
        otel = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": url,
            "OTEL_SERVICE_NAME": "shop-dbt",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=staging",
            "OTEL_EXPORTER_OTLP_HEADERS": "x-team=data",
        }
        result = example.dot("seed", "dev@HEAD", "--runtime", "subprocess", env=otel)
    assert result.returncode == 0, result.stderr
    # the SDK reads the standard variables: the service, the resource, the headers
    resource = received.spans[0][0]
    assert resource["service.name"] == "shop-dbt"
    assert resource["deployment.environment.name"] == "staging"
    assert all(headers.get("x-team") == "data" for headers in received.headers)
    run = [span for _, span in received.spans if not span.parent_span_id]
    assert len(run) == 1
    assert attributes(run[0].attributes)["datum_dot.runtime"] == "subprocess"
    seeds = [span.name for _, span in received.spans if span.parent_span_id]
    assert sorted(seeds) == [
        f"seed.jaffle_dot.raw_{n}" for n in ("customers", "orders", "payments")
    ]
    # dbt's JSON log gives each line its level
    records = [record for _, record in received.logs]
    started = next(r for r in records if "Running with dbt=" in r.body.string_value)
    assert started.severity_text == "INFO"
    assert all(r.trace_id == run[0].trace_id for r in records)

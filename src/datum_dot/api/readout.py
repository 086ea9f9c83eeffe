"""Read a finished run into a `Result`: its record, its history entry and its dbt artifacts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from datum_dot.api.result import NodeResult, Result, Status
from datum_dot.api.session import session_id
from datum_dot.errors import ExitCode
from datum_dot.history import RunStore, StoredRun
from datum_dot.runs import isolation
from datum_dot.runs.run import RunRecord

_PASSED = frozenset({"success", "pass"})
_FAILED = frozenset({"error", "fail", "runtime error"})
_KINDS = {"model": "models", "seed": "seeds", "snapshot": "snapshots", "test": "tests",
          "unit_test": "tests"}  # fmt: skip
_LINE = 400  # longer one-line messages are cut: the run's log has them whole


def read_result(
    record: RunRecord,
    store: RunStore,
    *,
    environ: Mapping[str, str],
    notes: Iterable[str] = (),
) -> Result:
    """The `Result` of a run `execute()` finished and recorded.

    Args:
        record: What `execute()` returned.
        store: The history the run was recorded in.
        environ: The variables the run resolved its profile with (for the isolated schema).
        notes: Warnings the call collected beside the record (the history could not save all).

    Returns:
        The result.
    """
    assert record.run_id is not None  # noqa: S101 - a run that was not a dry run is recorded
    stored = store.get(record.run_id)
    results_file = stored.files()["run_results"]
    nodes = _nodes(results_file)
    plan = record.plan
    since = record.started_at
    iso = plan.isolated if plan is not None else None
    schema = None
    if iso is not None:
        schema = isolation.expected_schema(iso.profile.schema_after, environ)
        schema = schema or iso.profile.schema_after
    target = plan.target_path if plan is not None else None
    return Result(
        status=_status(record.exit_code),
        exit_code=int(record.exit_code),
        run_id=record.run_id,
        spec=str(record.request.spec),
        command=record.request.command,
        environment=plan.env.name if plan is not None else record.request.spec.env,
        commit=stored.start.commit,
        schema=schema,
        runtime=record.runtime,
        execution_time=round(record.duration_seconds or 0.0, 3),
        metrics=_metrics(nodes, stored),
        artifacts={
            "manifest": _artifact(stored.run_dir, target, "manifest.json", since),
            "run_results": results_file if nodes is not None else None,
            "catalog": _artifact(stored.run_dir, target, "catalog.json", since),
            "log": stored.files()["output"],
        },
        warnings=[*record.warnings, *notes, *_node_lines(nodes, {"warn"})],
        errors=_errors(record, stored, nodes),
        logs={
            "log_file": stored.files()["output"],
            "session_id": session_id(),
            "run_id": record.run_id,
        },
        nodes=nodes or [],
        error_class=_error_class(record),
    )


def _error_class(record: RunRecord) -> str | None:
    if record.exit_code in (ExitCode.OK, ExitCode.WARNINGS):
        return None
    if record.exit_code == ExitCode.TIMEOUT:
        return record.error_class or "timeout"
    return record.error_class


def _status(code: ExitCode) -> Status:
    if code == ExitCode.OK:
        return "success"
    if code == ExitCode.WARNINGS:
        return "warning"
    return "error"


def _nodes(path: Path) -> list[NodeResult] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        return None
    return [_node(item) for item in results if isinstance(item, dict)]


def _node(item: Mapping[str, Any]) -> NodeResult:
    response = item.get("adapter_response")
    rows = response.get("rows_affected") if isinstance(response, dict) else None
    message = item.get("message")
    elapsed = item.get("execution_time")
    return NodeResult(
        unique_id=str(item.get("unique_id", "")),
        status=str(item.get("status", "")).lower(),
        execution_time=float(elapsed) if isinstance(elapsed, int | float) else 0.0,
        rows=rows if isinstance(rows, int) and not isinstance(rows, bool) else None,
        message=message if isinstance(message, str) and message.strip() else None,
    )


def _metrics(nodes: list[NodeResult] | None, stored: StoredRun) -> dict[str, int]:
    metrics = dict.fromkeys(
        ("models", "tests", "seeds", "snapshots", "passed", "failed", "warned", "skipped",
         "rows_affected"), 0)  # fmt: skip
    if nodes is None:
        # no run_results.json (a runtime without one, or dbt stopped first): the record's counts
        counts = stored.counts
        if counts is not None:
            metrics.update(models=counts.models, tests=counts.tests, seeds=counts.seeds,
                           snapshots=counts.snapshots, failed=counts.failures,
                           warned=counts.warnings, skipped=counts.skipped)  # fmt: skip
        return metrics
    for node in nodes:
        kind = _KINDS.get(node.resource_type)
        if kind is not None:
            metrics[kind] += 1
        if node.status in _PASSED:
            metrics["passed"] += 1
        elif node.status in _FAILED:
            metrics["failed"] += 1
        elif node.status == "warn":
            metrics["warned"] += 1
        elif node.status == "skipped":
            metrics["skipped"] += 1
        metrics["rows_affected"] += node.rows or 0
    return metrics


def _errors(record: RunRecord, stored: StoredRun, nodes: list[NodeResult] | None) -> list[str]:
    lines = _node_lines(nodes, _FAILED)
    if lines or record.exit_code in (ExitCode.OK, ExitCode.WARNINGS):
        return lines
    text = record.error or stored.error_message
    if stored.error_node and text:
        return [one_line(f"{stored.error_node}: {text}")]
    if text:
        return [one_line(text)]
    return [f"dbt failed (run {record.status.value.lower()}, exit code {int(record.exit_code)})"]


def _node_lines(nodes: list[NodeResult] | None, statuses: frozenset[str] | set[str]) -> list[str]:
    return [
        one_line(f"{node.unique_id}: {node.message or node.status}")
        for node in nodes or ()
        if node.status in statuses
    ]


def one_line(text: str) -> str:
    """`text` on one line: its lines joined by spaces, runs of spaces made one, cut if long."""
    joined = " ".join(text.split())
    return joined if len(joined) <= _LINE else joined[: _LINE - 3] + "..."


def _artifact(run_dir: Path, target: Path | None, name: str, since: datetime) -> Path | None:
    """The history's copy of a dbt artifact of this run, else the target folder's if this run
    wrote it (the copy survives the next run; the target folder's file does not)."""
    kept = run_dir / name
    if kept.is_file():
        return kept
    return _fresh(target / name, since) if target is not None else None


def _fresh(path: Path, since: datetime) -> Path | None:
    """`path` if this run wrote it (a file from an earlier run is not this run's artifact)."""
    try:
        written = path.stat().st_mtime
    except OSError:
        return None
    return path if written >= since.timestamp() - 1 else None

"""What a run's span and its nodes' spans say, as plain values (no OpenTelemetry here).

Attribute names follow OpenTelemetry's semantic conventions where one exists (`error.type`,
`vcs.ref.head.revision`, `log.iostream`); the rest are under `datum_dot.` (the run) and `dbt.`
(dbt's nodes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from datum_dot.history import RunEnd, RunStart

Attributes = dict[str, str | int | float]

FAILED_NODE_STATUSES = frozenset({"error", "fail", "runtime error"})
"""dbt node statuses that make the node's span an error."""


def run_attributes(start: RunStart, *, run_id: str | None, schema: str | None) -> Attributes:
    """The attributes of a run's span known when it starts."""
    values: dict[str, str | int | float | None] = {
        "datum_dot.project": start.project,
        "datum_dot.environment": start.env,
        "datum_dot.spec": start.spec,
        "datum_dot.command": " ".join(start.command),
        "datum_dot.commit": start.commit,
        "vcs.ref.head.revision": start.commit,
        "vcs.ref.head.name": start.ref,
        "datum_dot.schema": schema,
        "datum_dot.runtime": start.runtime,
        "datum_dot.trigger": start.trigger,
        "datum_dot.schedule": start.schedule,
        "datum_dot.run_id": run_id,
    }
    return {key: value for key, value in values.items() if value is not None}


def end_attributes(end: RunEnd) -> Attributes:
    """The attributes of a run's span known when it ends."""
    values: dict[str, str | int | float | None] = {
        "datum_dot.status": end.status.value,
        "datum_dot.exit_code": end.exit_code,
        "dbt.exit_code": end.dbt_exit_code,
        "error.type": end.error_class,
    }
    return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class NodeSpan:
    """One dbt node's result, as its span shows it.

    Attributes:
        unique_id: dbt's id (`model.shop.orders`).
        resource_type: The id's first part (`model`, `seed`, `test`, `snapshot`, ...).
        status: dbt's status (`success`, `error`, `pass`, `fail`, `warn`, `skipped`).
        started: When dbt started the node (its first timing step), if it says.
        finished: When dbt finished it (its last timing step), if it says.
        rows_affected: What the adapter reported, where it did.
        execution_time: dbt's seconds for the node.
        failures: A test's failing rows.
        message: dbt's message for the node.
    """

    unique_id: str
    resource_type: str
    status: str
    started: datetime | None = None
    finished: datetime | None = None
    rows_affected: int | None = None
    execution_time: float | None = None
    failures: int | None = None
    message: str | None = None

    @property
    def failed(self) -> bool:
        """Whether the node errored or its test failed."""
        return self.status in FAILED_NODE_STATUSES

    def attributes(self) -> Attributes:
        """The span's attributes."""
        values: dict[str, str | int | float | None] = {
            "dbt.node.unique_id": self.unique_id,
            "dbt.node.resource_type": self.resource_type,
            "dbt.node.status": self.status,
            "dbt.node.rows_affected": self.rows_affected,
            "dbt.node.execution_time": self.execution_time,
            "dbt.node.failures": self.failures,
            "dbt.node.message": self.message,
        }
        return {key: value for key, value in values.items() if value is not None}


def node_spans(run_results: Mapping[str, Any] | None) -> list[NodeSpan]:
    """Each result of a run_results.json document, with dbt's timing of it."""
    results = (run_results or {}).get("results")
    if not isinstance(results, list):
        return []
    return [_node(item) for item in results if isinstance(item, dict) and item.get("unique_id")]


def _node(item: Mapping[str, Any]) -> NodeSpan:
    unique_id = str(item["unique_id"])
    steps = [step for step in item.get("timing") or () if isinstance(step, dict)]
    starts = [t for t in (_when(step.get("started_at")) for step in steps) if t is not None]
    ends = [t for t in (_when(step.get("completed_at")) for step in steps) if t is not None]
    response = item.get("adapter_response")
    rows = response.get("rows_affected") if isinstance(response, dict) else None
    seconds = item.get("execution_time")
    failures = item.get("failures")
    message = item.get("message")
    return NodeSpan(
        unique_id=unique_id,
        resource_type=unique_id.split(".", 1)[0],
        status=str(item.get("status", "")),
        started=min(starts, default=None),
        finished=max(ends, default=None),
        rows_affected=rows if isinstance(rows, int) and not isinstance(rows, bool) else None,
        execution_time=float(seconds) if isinstance(seconds, int | float) else None,
        failures=failures if isinstance(failures, int) else None,
        message=message if isinstance(message, str) else None,
    )


def _when(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    # dbt writes its timing in UTC; older versions leave the zone out
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

"""What a call of the Python API returns: `Result`, one `NodeResult` per dbt node, `RunFailed`.

The shape is the seeds' framework result (`status`, `execution_time`, `metrics`, `artifacts`,
`warnings`, `errors`, `logs`) with the run's identity beside it (`run_id`, `commit`, `schema`,
`environment`) and dbt's per-node results; `to_dict()` gives it as JSON-safe data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from datum_dot.errors import DotError, ExitCode

if TYPE_CHECKING:
    from pydantic import JsonValue


Status = Literal["success", "warning", "error"]
"""`success` (exit code 0), `warning` (10: it ran, something warned) or `error` (anything else)."""

METRIC_KEYS = (
    "models",
    "tests",
    "seeds",
    "snapshots",
    "passed",
    "failed",
    "warned",
    "skipped",
    "rows_affected",
)
"""The keys of `Result.metrics`, always all present."""


@dataclass(frozen=True)
class NodeResult:
    """What dbt reported for one node (a model, test, seed, snapshot, ...).

    Attributes:
        unique_id: dbt's id of the node (`model.jaffle_dot.orders`).
        status: dbt's status for it: `success`, `pass`, `warn`, `error`, `fail`, `skipped`, ...
        execution_time: Seconds dbt spent on it.
        rows: Rows the statement affected, where the adapter reports it (None otherwise).
        message: dbt's message for it (the error text of a failed node), if any.
    """

    unique_id: str
    status: str
    execution_time: float = 0.0
    rows: int | None = None
    message: str | None = None

    @property
    def resource_type(self) -> str:
        """`model`, `test`, `seed`, `snapshot`, ... (the first part of the unique id)."""
        return self.unique_id.split(".", 1)[0]

    def to_dict(self) -> dict[str, JsonValue]:
        """The node as JSON-safe data."""
        return {
            "unique_id": self.unique_id,
            "resource_type": self.resource_type,
            "status": self.status,
            "execution_time": self.execution_time,
            "rows": self.rows,
            "message": self.message,
        }


@dataclass(frozen=True)
class Result:
    """How one run ended, in the seeds' result shape; a dbt failure is a result, not an error.

    Attributes:
        status: `success`, `warning` (it ran; a test warned) or `error`.
        exit_code: The exit code `dot` gives for the same run: 0 ok, 10 warnings, 30 dbt
            failed, 40 timed out, 50 cancelled.
        run_id: The run's id in the history (`dot logs <run_id>` shows it).
        spec: The spec as given (`prod@main`).
        command: The dbt command words (`("build",)`).
        environment: The environment that was run, or None without environments.
        commit: The full hash that was built (the working tree's HEAD for a spec without ref).
        schema: The schema an isolated build (`@ref`) writes to; None for a working-tree run,
            which writes where its profile says.
        runtime: What ran dbt (`local`, `subprocess`, `cloud`, ...).
        execution_time: Seconds the run took, preparation (worktree, packages) included.
        metrics: Node counts (`models`, `tests`, `seeds`, `snapshots`, `passed`, `failed`,
            `warned`, `skipped`) and `rows_affected`, summed over the nodes that report rows.
        artifacts: This run's files: `manifest`, `run_results` and `catalog` (None when the
            run wrote none), and `log` (its combined output in the history).
        warnings: One line per warning: a test that warned (`test.x: Got 3 results...`), or a
            setting the plan noted.
        errors: One line per failure, naming the node where dbt names one.
        logs: `log_file` (the run's output in the history), `session_id` (the Python process
            the run belongs to: the same for every call of one process) and `run_id`.
        nodes: Each node dbt reported, in the order it ran them.
        error_class: Why a failed run failed, as the runner classified it (`connection`,
            `compilation`, `database`, `data_quality`, `dependency`, `timeout`, `internal`);
            None for a run that did not fail.
    """

    status: Status
    exit_code: int
    run_id: str | None
    spec: str
    command: tuple[str, ...]
    environment: str | None
    commit: str | None
    schema: str | None
    runtime: str | None
    execution_time: float
    metrics: dict[str, int]
    artifacts: dict[str, Path | None]
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    logs: dict[str, Path | str | None] = field(default_factory=dict)
    nodes: list[NodeResult] = field(default_factory=list)
    error_class: str | None = None

    @property
    def globals(self) -> dict[str, str | None]:
        """The seeds' shared values, for the next step of a pipeline: the run's `spec`,
        `commit`, `environment` and `schema` (None where the run has none)."""
        return {
            "spec": self.spec,
            "commit": self.commit,
            "environment": self.environment,
            "schema": self.schema,
        }

    @property
    def ok(self) -> bool:
        """True for `success` and `warning`: dbt ran and nothing failed."""
        return self.status != "error"

    def raise_for_status(self) -> Result:
        """Raise `RunFailed` unless the run is `ok`; return the result otherwise.

        Returns:
            This result, so that `project.build("prod").raise_for_status()` reads as one step.

        Raises:
            RunFailed: The run ended with status `error`.

        Example:
            >>> project.build("prod@main").raise_for_status()  # doctest: +SKIP
        """
        if not self.ok:
            raise RunFailed(self)
        return self

    def to_dict(self) -> dict[str, JsonValue]:
        """The result as JSON-safe data: the seeds' keys, then this API's.

        Every key of the seeds' shape is present: `globals` holds the run's spec, commit,
        environment and schema (what a next step needs to read its tables), and `logs` has
        `log_file`, `session_id` and `run_id`.

        Example:
            >>> json.dumps(result.to_dict())  # doctest: +SKIP
        """
        return {
            "status": self.status,
            "execution_time": self.execution_time,
            "metrics": dict(self.metrics),
            "artifacts": {name: _path(value) for name, value in self.artifacts.items()},
            "globals": dict(self.globals),
            "warnings": list(self.warnings),
            "errors": list(self.errors),
            "logs": {name: _path(value) for name, value in self.logs.items()},
            "exit_code": self.exit_code,
            "ok": self.ok,
            "run_id": self.run_id,
            "spec": self.spec,
            "command": list(self.command),
            "environment": self.environment,
            "commit": self.commit,
            "schema": self.schema,
            "runtime": self.runtime,
            "nodes": [node.to_dict() for node in self.nodes],
            "error_class": self.error_class,
        }


class RunFailed(DotError):
    """A run ended with status `error` and the caller asked for an exception.

    Attributes:
        result: The run's result.
        message: The first error, naming the run.
        hint: How to read the whole output.
        exit_code: The run's exit code (30 dbt failed, 40 timed out, 50 cancelled).
    """

    def __init__(self, result: Result) -> None:
        first = result.errors[0] if result.errors else "dbt failed"
        name = result.run_id or " ".join(result.command)
        super().__init__(
            f"run {name} failed: {first}",
            f"dot logs {result.run_id}" if result.run_id else "run it again with echo=True",
        )
        self.result = result
        self.exit_code = ExitCode(result.exit_code) if result.exit_code in _CODES else _FAILED


_CODES = frozenset(int(code) for code in ExitCode)
_FAILED = ExitCode.RUNTIME_FAILURE


def _path(value: Path | str | None) -> str | None:
    return None if value is None else str(value)

"""What runtimes report: node placements, node outcomes, invocation and run results.

These types are shared by every runtime, the runner and `execute()`; `runtimes.base` re-exports
them. Nothing here imports dbt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class ErrorClass(StrEnum):
    """Why a dbt invocation failed, as the runner classifies it."""

    COMPILATION = "compilation"
    DATABASE = "database"
    DATA_QUALITY = "data_quality"
    CONNECTION = "connection"
    DEPENDENCY = "dependency"
    TIMEOUT = "timeout"
    INTERNAL = "internal"


@dataclass(frozen=True)
class NodeTarget:
    """Where one node would be written (for the isolation check).

    Attributes:
        unique_id: dbt's id of the node (`model.shop.orders`).
        resource_type: model, seed or snapshot.
        database: The database (catalog, project) it is written to.
        schema: The schema (dataset) it is written to.
        path: The node's file, relative to the project.
        database_overridden: The node sets its own `database` config.
    """

    unique_id: str
    resource_type: str
    database: str
    schema: str
    path: str
    database_overridden: bool = False


@dataclass(frozen=True)
class NodeOutcome:
    """The result of one node in one invocation (from dbt's results or run_results.json).

    Attributes:
        unique_id: dbt's id of the node.
        status: `success`, `error`, `fail`, `warn`, `pass`, `skipped`, ...
        message: dbt's message for the node (the error text for `error`).
        failures: For tests, the number of failing rows.
    """

    unique_id: str
    status: str
    message: str | None = None
    failures: int | None = None

    @property
    def resource_type(self) -> str:
        """`model`, `test`, `seed`, ... (the first part of the unique id)."""
        return self.unique_id.split(".", 1)[0]


@dataclass(frozen=True)
class InvocationResult:
    """The outcome of running one dbt command.

    Attributes:
        success: dbt's own verdict.
        dbt_exit_code: The exit code dbt gave (or would have given from its CLI); for a child
            process that was stopped, its real return code (negative: the signal).
        statuses: The status of each node result.
        error: dbt's error message for an unhandled failure, if any.
        interrupted: The run was stopped by Ctrl-C or a signal.
        timed_out: The run was stopped because it exceeded its timeout.
        error_class: Why it failed (set by the runtime where it knows from a structured source,
            otherwise by the runner's classification).
        suggestion: What to do about the failure (set by the runner).
        nodes: Each node's outcome, where the runtime can tell.
        error_type: The qualified class name of an unhandled exception, where known.
        output_tail: The last lines of output, for classification when nothing structured exists.
        attempts: How many times the runner ran it.
        metadata: Runtime-specific facts (a dbt Cloud run id, the dbt executable).
    """

    success: bool
    dbt_exit_code: int
    statuses: tuple[str, ...] = ()
    error: str | None = None
    interrupted: bool = False
    timed_out: bool = False
    error_class: ErrorClass | None = None
    suggestion: str | None = None
    nodes: tuple[NodeOutcome, ...] = ()
    error_type: str | None = None
    output_tail: tuple[str, ...] = ()
    attempts: int = 1
    metadata: Mapping[str, JsonValue] = field(default_factory=dict)


class RunResult(BaseModel):
    """The outcome of a `run_models` / `run_tests` call, with counts from run_results.json.

    Attributes:
        success: dbt's own verdict.
        manifest_path: The manifest.json of the run.
        run_results_path: The run_results.json of the run.
        catalog_path: catalog.json, when the run produced one.
        execution_time_seconds: Wall time of the invocation.
        models_run: Model results in run_results.json.
        tests_run: Data and unit test results in run_results.json.
        failures: Results with status `error` or `fail`.
        metadata: Runtime facts (runtime name, dbt exit code, invocation id, error class).
    """

    # built on first use: a plain `dot build` never makes one, and building the schema of
    # `JsonValue` costs about 15 ms of every run's start-up
    model_config = ConfigDict(frozen=True, defer_build=True)

    success: bool
    manifest_path: Path
    run_results_path: Path
    catalog_path: Path | None = None
    execution_time_seconds: float = Field(ge=0)
    models_run: int = Field(ge=0)
    tests_run: int = Field(ge=0)
    failures: int = Field(ge=0)
    metadata: dict[str, JsonValue] = Field(default_factory=dict)

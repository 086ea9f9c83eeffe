"""The runner story's error classes: `DbtError` and its compilation, execution and data-quality
kinds, each a `RunFailed` (so a `DotError` with the run's exit code and `result`)."""

from __future__ import annotations

from datum_dot.api.result import RunFailed


class DbtError(RunFailed):
    """A dbt command failed (the story's base class); a `RunFailed`, so a `DotError`.

    Attributes:
        result: The `Result` of the run (`result.errors`, `result.nodes`, `result.run_id`).
        message: What failed, naming the node where dbt names one.
        hint: Where to read the whole output (`dot logs <run_id>`).
        exit_code: The run's exit code (30 dbt failed, 40 timed out, 50 cancelled).
    """


class DbtCompilationError(DbtError):
    """The project did not compile: Jinja or SQL that does not render, an undefined macro."""


class DbtExecutionError(DbtError):
    """dbt compiled the project and running it failed: the warehouse refused a query, the
    connection dropped, `dbt deps` failed, or the run timed out."""


class DbtDataQualityError(DbtError):
    """Data tests returned failing rows; the models themselves were built."""


ERROR_CLASSES: dict[str, type[DbtError]] = {
    "compilation": DbtCompilationError,
    "database": DbtExecutionError,
    "connection": DbtExecutionError,
    "dependency": DbtExecutionError,
    "timeout": DbtExecutionError,
    "data_quality": DbtDataQualityError,
}
"""The story's class for each of the runner's error classes; any other failure is a `DbtError`."""

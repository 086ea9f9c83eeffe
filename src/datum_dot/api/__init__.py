"""The Python API: `Project`, its `Result`, and the runtime contract on a planned project.

`import datum_dot` re-exports these names (see `datum_dot.__all__`). Each dbt method of
`Project` builds a `RunRequest` with trigger `sdk` and hands it to `execute()`, as the CLI does.

- `project`: `Project` (open a dbt project; plan; list builds, runs, environments).
- `commands`: its dbt methods (`build`, `run`, `test`, ..., `run_operation`, `dbt`).
- `options`: keyword arguments -> `RunRequest`; `invocation`: one call through `execute()`,
  quiet, taking turns in-process where the runtime requires it; `readout`: record -> `Result`.
- `result`: `Result`, `NodeResult`, `RunFailed`; `runtime`: `ProjectRuntime`; `listing`: builds,
  runs and environments as the CLI's JSON gives them; `session`: the session id of this process.
- `dbt_runner`: `DbtRunner` and `DbtResult` of the runner story, a thin layer over `Project`;
  `dbt_errors`: its `DbtError` classes.

A top layer beside `cli` (adr/0015): it may import every layer below; nothing imports it.
Heavy modules (the planner, `execute`, pydantic, dbt) load inside the methods that need them.
"""

from __future__ import annotations

from datum_dot.api.commands import DbtCommands
from datum_dot.api.dbt_errors import (
    DbtCompilationError,
    DbtDataQualityError,
    DbtError,
    DbtExecutionError,
)
from datum_dot.api.dbt_runner import DbtResult, DbtRunner, classify_dbt_error
from datum_dot.api.project import Project
from datum_dot.api.result import NodeResult, Result, RunFailed, Status
from datum_dot.api.runtime import ProjectRuntime

__all__ = [
    "DbtCommands",
    "DbtCompilationError",
    "DbtDataQualityError",
    "DbtError",
    "DbtExecutionError",
    "DbtResult",
    "DbtRunner",
    "NodeResult",
    "Project",
    "ProjectRuntime",
    "Result",
    "RunFailed",
    "Status",
    "classify_dbt_error",
]

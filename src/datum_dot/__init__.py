"""datum-dot: run dbt for a named environment at an exact git commit, isolated and recorded.

The Python API runs any spec from Python through the same path as `dot`, and returns a result
to act on:

```python
import datum_dot

project = datum_dot.Project(".")
result = project.build("prod@main", select="orders+")
if not result.ok:
    print(result.errors)
```

Importing `datum_dot` loads nothing: every public name below loads on first use, and dbt,
pydantic and the planner only when a method needs them.
"""

from __future__ import annotations

# `typing` (and `enum`, for the errors) cost more to import than this whole module; type
# checkers treat this name as `typing.TYPE_CHECKING`
TYPE_CHECKING = False

if TYPE_CHECKING:
    from datum_dot.api import (
        DbtCompilationError,
        DbtDataQualityError,
        DbtError,
        DbtExecutionError,
        DbtResult,
        DbtRunner,
        NodeResult,
        Project,
        ProjectRuntime,
        Result,
        RunFailed,
        Status,
    )
    from datum_dot.errors import BadInputError as BadInput
    from datum_dot.errors import DotError, ExitCode
    from datum_dot.outcomes import RunResult
    from datum_dot.runs.plan import BuildPlan

__version__ = "0.1.0"

__all__ = [
    "BadInput",
    "BuildPlan",
    "DbtCompilationError",
    "DbtDataQualityError",
    "DbtError",
    "DbtExecutionError",
    "DbtResult",
    "DbtRunner",
    "DotError",
    "ExitCode",
    "NodeResult",
    "Project",
    "ProjectRuntime",
    "Result",
    "RunFailed",
    "RunResult",
    "Status",
    "__version__",
]

# public name -> (module, name in it)
_API = (
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
)
_LAZY = {
    "BadInput": ("datum_dot.errors", "BadInputError"),
    "DotError": ("datum_dot.errors", "DotError"),
    "ExitCode": ("datum_dot.errors", "ExitCode"),
    "BuildPlan": ("datum_dot.runs.plan", "BuildPlan"),
    "RunResult": ("datum_dot.outcomes", "RunResult"),
    **{name: ("datum_dot.api", name) for name in _API},
}


def __getattr__(name: str) -> object:
    # lazy: `import datum_dot` stays well under a millisecond; each name loads on first use
    found = _LAZY.get(name)
    if found is None:
        raise AttributeError(f"module 'datum_dot' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(found[0]), found[1])
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

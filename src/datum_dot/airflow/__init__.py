"""The Airflow integration (`pip install 'datum-dot[airflow]'`): `DotOperator`.

A task runs one dbt command for a spec through the Python API, so its run is isolated at the
spec's commit, recorded in the same history as `dot` runs (trigger `airflow`), and its result is
the task's XCom value. Nothing else in datum_dot imports this package, or airflow.

- `operator`: `DotOperator`.
"""

from __future__ import annotations

try:
    import airflow.sdk  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
except ModuleNotFoundError as e:
    # the extra is optional: say how to get it rather than which module is missing
    raise ModuleNotFoundError(
        "datum_dot.airflow needs Airflow 3: pip install 'datum-dot[airflow]'", name="airflow"
    ) from e

from datum_dot.airflow.operator import DotOperator

__all__ = ["DotOperator"]

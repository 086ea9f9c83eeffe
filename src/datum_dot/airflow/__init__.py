"""The Airflow integration (`pip install 'datum-dot[airflow]'`): `DotOperator`.

A task runs one dbt command for a spec through the Python API, so its run is isolated at the
spec's commit, recorded in the same history as `dot` runs (trigger `airflow`), and its result is
the task's XCom value. Nothing else in datum_dot imports this package, or airflow.

- `operator`: `DotOperator`.
"""

from __future__ import annotations

from datum_dot.airflow.operator import DotOperator

__all__ = ["DotOperator"]

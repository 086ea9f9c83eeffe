"""`dot schedule export --to airflow` read by Airflow's own DagBag (`scripts/test-airflow`): no
import errors, the schedule's cron expression in its time zone, the overlap settings, the pinned
spec and the timeouts on the task."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from datum_dot.cli.main import main
from datum_dot.scheduling.schedules import Overlap
from tests.helpers.example import ExampleProject
from tests.helpers.exports import register, schedule
from tests.integrations.airflow.conftest import AirflowHome

pytestmark = [pytest.mark.airflow]

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_airflow_dagbag_loads_the_exported_dag(
    airflow_home: AirflowHome,
    example: ExampleProject,
    hermetic: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    item = schedule("nightly", "30 5 * * 1-5", spec="prod@main", pinned_commit=SHA,
                    pinned_ref="main", overlap=Overlap.SKIP, timeout=1800.0)  # fmt: skip
    register(hermetic / ".datum", example, [item])
    monkeypatch.chdir(example.path)
    out = tmp_path / "exported"
    argv = ["schedule", "export", "nightly", "--to", "airflow", "--time-zone", "America/New_York"]
    assert main([*argv, "-o", str(out)]) == 0
    bag = DagBag(dag_folder=str(out))
    assert bag.import_errors == {}
    dag = bag.dags["datum_dot_shop_nightly"]
    assert dag.timetable.expression == "30 5 * * 1-5"
    assert (
        str(getattr(dag.timetable.timezone, "name", dag.timetable.timezone)) == "America/New_York"
    )
    assert (dag.max_active_runs, dag.catchup) == (1, False)
    assert dag.start_date.date().isoformat() == "2026-01-01"  # 03:04 UTC is the 1st in New York
    (task,) = dag.tasks
    assert type(task).__name__ == "DotOperator"
    assert (task.spec, task.command, task.project_dir) == (
        f"prod@{SHA}",
        "build",
        str(example.path),
    )
    assert task.timeout == 1800.0
    assert task.execution_timeout == timedelta(seconds=1800 + 300)
    assert task.retries == 0

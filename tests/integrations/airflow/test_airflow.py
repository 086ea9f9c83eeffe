"""DotOperator on real Airflow 3, dbt and DuckDB (`scripts/test-airflow`).

One example project per module: tag `v1.0`, then a commit on main (so `v1.0` is not HEAD) and a
branch `broken` with a model that fails. The README's DAG file (examples/airflow/dot_dag.py) is
copied into the session's dags folder and run with `dag.test()` three times: at `v1.0` with a
sample rate from the run's conf, at `broken`, and at a ref that does not exist. The tests read
those runs: the task's state, its XCom value, the tables in the pinned commit's schema, and the
history.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import datum_dot
from tests.helpers.example import ExampleProject, make_example
from tests.integrations.airflow.conftest import AirflowHome

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE_DAG = ROOT / "examples" / "airflow" / "dot_dag.py"
DAG_ID = "jaffle_prod"
TASK_ID = "build_prod"
BROKEN_MODEL = "select id, no_such_column from {{ ref('stg_orders') }}\n"
MODELS = {"stg_customers", "stg_orders", "stg_payments", "customers", "orders", "order_events"}
SEEDS = {"raw_customers", "raw_orders", "raw_payments"}


@dataclass(frozen=True)
class DagRuns:
    """The example built by the README's DAG at `v1.0`, then at `broken`, and what they left."""

    example: ExampleProject
    project: datum_dot.Project
    sha: str
    main: str
    built: Any
    broken: Any
    unknown: Any
    dag: Any


@pytest.fixture(scope="module")
def runs(
    airflow_home: AirflowHome,
    module_monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> DagRuns:
    base = tmp_path_factory.mktemp("airflow_example")
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(base / "warehouse.duckdb"))
    example = make_example(base, monkeypatch_env=False)
    repo = example.repo
    repo.tag("v1.0")
    sha = repo.head()
    orders = (example.path / "models/marts/orders.sql").read_text()
    main = repo.commit({"models/marts/orders.sql": orders + "-- after v1.0\n"}, "after v1.0")
    repo.git("checkout", "--quiet", "-b", "broken")
    repo.commit({"models/marts/broken.sql": BROKEN_MODEL}, "a model that fails")
    repo.checkout("main")
    module_monkeypatch.setenv("JAFFLE_PROJECT_DIR", str(example.path))
    shutil.copy(EXAMPLE_DAG, airflow_home.dags / EXAMPLE_DAG.name)
    dag = _load_dags(airflow_home.dags)[DAG_ID]
    built = dag.test(run_conf={"ref": "v1.0", "sample_rate": 25})
    broken = dag.test(run_conf={"ref": "broken"})
    unknown = dag.test(run_conf={"ref": "no-such-ref"})
    project = datum_dot.Project(example.path, home=Path(os.environ["DATUM_HOME"]))
    return DagRuns(example, project, sha, main, built, broken, unknown, dag)


def _load_dags(folder: Path) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(folder))
    assert bag.import_errors == {}
    return dict(bag.dags)


def _xcom(dag_run: Any, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = XComModel.get_many(
            run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id, key="return_value"
        )
        row = session.scalars(query).first()
        assert row is not None, f"task {task_id} pushed no XCom"
        return XComModel.deserialize_value(row)


def _task_state(dag_run: Any, task_id: str) -> str:
    from airflow.utils.session import create_session

    with create_session() as session:
        dag_run = session.merge(dag_run)
        return str(dag_run.get_task_instance(task_id, session=session).state)


def test_airflow_readme_dag_loads_with_its_schedule(runs: DagRuns) -> None:
    dag = runs.dag
    assert (dag.timetable.expression, dag.timetable.timezone.name) == ("0 6 * * *", "Europe/Berlin")
    assert (dag.max_active_runs, dag.catchup) == (1, False)
    task = dag.get_task(TASK_ID)
    assert type(task).__name__ == "DotOperator"
    assert {"spec", "vars"} <= set(task.template_fields)


def test_airflow_dag_run_builds_the_pinned_tag(runs: DagRuns) -> None:
    assert str(runs.built.state) == "success"
    assert _task_state(runs.built, TASK_ID) == "success"
    schema = f"analytics_{runs.sha[:8]}"
    tables = runs.example.query(
        f"select table_name from information_schema.tables where table_schema = '{schema}'"  # noqa: S608 - a hash
    )
    assert {str(row[0]) for row in tables} == MODELS | SEEDS
    assert f"analytics_{runs.main[:8]}" not in runs.example.schemas()
    # the conf's sample rate reached dbt's var() as the number it is (native rendering)
    rates = runs.example.query(f"select distinct sample_rate from {schema}.orders")  # noqa: S608
    assert rates == [(25,)]


def test_airflow_xcom_is_the_result(runs: DagRuns) -> None:
    value = _xcom(runs.built, TASK_ID)
    assert value["status"] == "success"
    assert (value["exit_code"], value["ok"]) == (0, True)
    assert value["spec"] == "prod@v1.0"
    assert value["command"] == ["build"]
    assert value["environment"] == "prod"
    assert value["commit"] == runs.sha
    assert value["schema"] == f"analytics_{runs.sha[:8]}"
    assert value["runtime"] == "local"
    assert value["globals"] == {
        "spec": "prod@v1.0",
        "commit": runs.sha,
        "environment": "prod",
        "schema": f"analytics_{runs.sha[:8]}",
    }
    assert value["metrics"]["models"] == len(MODELS)
    assert value["metrics"]["seeds"] == len(SEEDS)
    assert value["metrics"]["failed"] == 0
    assert value["errors"] == []
    assert value["error_class"] is None
    assert {n["unique_id"] for n in value["nodes"] if n["resource_type"] == "model"} == {
        f"model.jaffle_dot.{name}" for name in MODELS
    }
    assert value["logs"]["run_id"] == value["run_id"]
    assert Path(value["logs"]["log_file"]).is_file()
    assert value["execution_time"] > 0


def test_airflow_run_is_in_the_history_with_trigger_airflow(runs: DagRuns) -> None:
    value = _xcom(runs.built, TASK_ID)
    recorded = {row["run_id"]: row for row in runs.project.runs(last=None)}
    row = recorded[value["run_id"]]
    assert (row["trigger"], row["status"], row["commit"]) == ("airflow", "SUCCESS", runs.sha)


def test_airflow_failing_model_fails_the_task(runs: DagRuns) -> None:
    assert str(runs.broken.state) == "failed"
    assert _task_state(runs.broken, TASK_ID) == "failed"
    value = _xcom(runs.broken, TASK_ID)
    assert (value["status"], value["exit_code"], value["ok"]) == ("error", 30, False)
    assert value["spec"] == "prod@broken"
    assert any("broken" in line for line in value["errors"]), value["errors"]
    failed = [n["unique_id"] for n in value["nodes"] if n["status"] == "error"]
    assert failed == ["model.jaffle_dot.broken"]
    row = {r["run_id"]: r for r in runs.project.runs(last=None)}[value["run_id"]]
    assert (row["trigger"], row["status"]) == ("airflow", "FAILED")


def test_airflow_unknown_ref_fails_the_task_and_is_recorded(runs: DagRuns) -> None:
    assert str(runs.unknown.state) == "failed"
    assert _task_state(runs.unknown, TASK_ID) == "failed"
    row = runs.project.runs(last=None)[0]
    assert (row["trigger"], row["status"], row["exit_code"]) == ("airflow", "FAILED", 20)
    assert row["spec"] == "prod@no-such-ref"

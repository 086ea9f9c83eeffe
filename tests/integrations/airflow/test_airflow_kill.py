"""Killing a DotOperator task stops dbt and records the run CANCELLED (`scripts/test-airflow`).

A DAG builds a model whose query runs for many minutes; `dag.test()` runs it in a child process,
which gets SIGTERM once dbt has started the model, as a worker's task process does when Airflow
kills the task. Airflow's SIGTERM handler calls `on_kill`, which interrupts the run: dbt cancels
the query, and the run is recorded CANCELLED.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import datum_dot
from tests.helpers.example import make_example
from tests.integrations.airflow.conftest import AirflowHome

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

# about a quarter of an hour of DuckDB's work on this machine
SLOW_MODEL = "select sum(i % 7) as n from range(1000000000000) as t(i)\n"

KILL_DAG = """\
import os

import pendulum
from airflow.sdk import DAG

from datum_dot.airflow import DotOperator

with DAG(dag_id="dot_kill", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    DotOperator(
        task_id="sleepy",
        spec="prod@sleepy",
        select="sleepy",
        project_dir=os.environ["KILL_PROJECT_DIR"],
    )
"""

RUN_DAG = """\
import sys

from airflow.dag_processing.dagbag import DagBag

DagBag(dag_folder=sys.argv[1]).dags["dot_kill"].test()
"""


def _wait_for(what: str, check: object, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_airflow_on_kill_cancels_dbt_and_records_cancelled(
    airflow_home: AirflowHome, tmp_path: Path
) -> None:
    example = make_example(tmp_path, monkeypatch_env=False)
    os.environ["DOT_EXAMPLE_DUCKDB"] = str(tmp_path / "warehouse.duckdb")
    example.repo.git("checkout", "--quiet", "-b", "sleepy")
    example.repo.commit({"models/marts/sleepy.sql": SLOW_MODEL}, "a model that takes long")
    example.repo.checkout("main")
    (airflow_home.dags / "kill_dag.py").write_text(KILL_DAG)
    script = tmp_path / "run_dag.py"
    script.write_text(RUN_DAG)
    home = Path(os.environ["DATUM_HOME"])
    project = datum_dot.Project(example.path, home=home)
    env = {**os.environ, "KILL_PROJECT_DIR": str(example.path)}
    output = tmp_path / "dag_test.log"
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(airflow_home.dags)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def sleeping() -> bool:
            rows = project.runs(last=1)
            if not rows or rows[0]["status"] != "RUNNING":
                return False
            log = home / "runs" / str(rows[0]["run_id"]) / "output.log"
            return log.is_file() and "START sql table model" in log.read_text()

        _wait_for("dbt to start the slow model", sleeping, timeout=120)
        killed = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        stopped = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the query runs for minutes: the task ended because dbt was stopped, not because it ended
    assert stopped < 30
    row = project.runs(last=1)[0]
    assert (row["trigger"], row["status"], row["exit_code"]) == ("airflow", "CANCELLED", 50)

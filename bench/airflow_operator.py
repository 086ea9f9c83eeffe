"""A DotOperator task against the same `project.build` called directly, on the example project at
a pinned commit (median wall time per run).

Three ways to build every model, seed and test at one commit, all through `execute()`:
`project.build(spec)` in this process; `DotOperator.execute()` as a worker calls it (the
operator chooses the runtime from the run's own plan, and runs local dbt in a forked child
process so that `on_kill` can stop it); and `dag.test()` of a one-task DAG, which adds Airflow's own
machinery (the metadata database on SQLite, the in-process supervisor, XCom). Each side is
warmed up once first (worktree, packages, the manifest's parse). Target: the operator costs
under 10% more than the build.

Run: .venv-airflow/bin/python bench/airflow_operator.py [runs]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import BIN, machine, make_repo, median

DAG = """\
import pendulum
from airflow.sdk import DAG

from datum_dot.airflow import DotOperator

with DAG(dag_id="bench", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    DotOperator(task_id="build", spec={spec!r}, project_dir={repo!r})
"""


class _TaskInstance:
    """What `execute` reads from the context: a task instance to push a failed run's XCom to."""

    def xcom_push(self, key: str, value: Any) -> None:
        raise AssertionError(f"the build failed: {value}")


def main() -> None:
    """Print the medians and the overheads."""
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    repo, env = make_repo()
    airflow_home = Path(tempfile.mkdtemp(prefix="dot-bench-airflow-"))
    dags = airflow_home / "dags"
    dags.mkdir()
    env |= {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    os.environ.update(env)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                         check=True).stdout.strip()  # fmt: skip
    spec = f"prod@{sha}"
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True,
                   capture_output=True)  # fmt: skip
    (dags / "bench.py").write_text(DAG.format(spec=spec, repo=str(repo)))

    from airflow.dag_processing.dagbag import DagBag

    import datum_dot
    from datum_dot.airflow import DotOperator

    project = datum_dot.Project(repo)
    assert project.build(spec).ok  # warm up: worktree, packages, parse
    operator = DotOperator(task_id="build", spec=spec, project_dir=str(repo))
    operator.execute({"ti": _TaskInstance()})
    dag = DagBag(dag_folder=str(dags)).dags["bench"]
    direct, executed, tested = [], [], []
    for _ in range(runs):
        start = time.perf_counter()
        assert project.build(spec).ok
        direct.append(time.perf_counter() - start)
        start = time.perf_counter()
        operator.execute({"ti": _TaskInstance()})
        executed.append(time.perf_counter() - start)
        start = time.perf_counter()
        assert str(dag.test().state) == "success"
        tested.append(time.perf_counter() - start)
    build, task, whole = median(direct), median(executed), median(tested)
    print(f"machine: {machine()}, load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
    print(f"project.build, median of {runs}:          {build:.2f} s", file=sys.stderr)
    print(
        f"DotOperator.execute, median of {runs}:    {task:.2f} s ({(task - build) / build:+.1%})",
        file=sys.stderr,
    )
    print(
        f"dag.test() of one task, median of {runs}: {whole:.2f} s "
        f"({(whole - build) / build:+.1%}; Airflow's own part {whole - task:.2f} s)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()

"""Build the prod environment at a pinned git tag every morning, with datum-dot.

The ref is a DAG param (trigger with `{"ref": "v1.3"}` to build another one); the build runs in
its own worktree and schema (`analytics_<short hash>`), and its result is the task's XCom value.
"""

import os

import pendulum
from airflow.sdk import DAG

from datum_dot.airflow import DotOperator

with DAG(
    dag_id="jaffle_prod",
    schedule="0 6 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Berlin"),
    catchup=False,
    max_active_runs=1,
    params={"ref": "v1.0", "sample_rate": 100},
    # vars keep their types: sample_rate renders as the number 100, which dot_vars.yml accepts
    render_template_as_native_obj=True,
):
    DotOperator(
        task_id="build_prod",
        spec="prod@{{ params.ref }}",
        vars={"sample_rate": "{{ params.sample_rate }}"},
        project_dir=os.environ.get("JAFFLE_PROJECT_DIR", "/srv/jaffle"),
    )

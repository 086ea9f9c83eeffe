"""`dot schedule export --to dagster` read back by Dagster: the file passes Dagster's validator,
its schedule has the cron expression, time zone and state of the dot schedule, overlap `skip`
skips a firing while a run of its job is active, and its job builds the pinned commit through the
API (trigger `dagster`) on real dbt and DuckDB."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from datum_dot.scheduling.export.dagster import DagsterOptions
from datum_dot.scheduling.export.exports import render
from datum_dot.scheduling.schedules import Overlap
from tests.helpers.example import ExampleProject
from tests.helpers.exports import located, schedule

pytestmark = [pytest.mark.dagster, pytest.mark.slow]


def _load(path: Path) -> Any:
    return runpy.run_path(str(path))["defs"]


def test_dagster_export_loads_with_the_schedule_and_builds_the_pinned_commit(
    example: ExampleProject, tmp_path: Path
) -> None:
    import dagster as dg

    import datum_dot

    sha = example.repo.head()
    example.repo.commit({"models/marts/later.sql": "select 1 as id\n"}, "after the pin")
    item = schedule("nightly", "15 6 * * 1-5", spec="prod@main", pinned_commit=sha,
                    pinned_ref="main", timeout=900.0, overlap=Overlap.SKIP)  # fmt: skip
    (file,) = render(located(example, item), DagsterOptions(), zone="Europe/Berlin").files
    again = render(located(example, item), DagsterOptions(), zone="Europe/Berlin").files[0]
    assert again.text == file.text
    path = tmp_path / file.name
    path.write_text(file.text)
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster")}
    (tmp_path / "dagster").mkdir()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-f", str(path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr

    defs = _load(path)
    (found,) = list(defs.schedules)
    assert found.cron_schedule == "15 6 * * 1-5"
    assert found.execution_timezone == "Europe/Berlin"
    assert found.default_status == dg.DefaultScheduleStatus.RUNNING
    job = defs.resolve_job_def(found.job_name)
    assert job.tags["datum_dot/schedule"] == "nightly"
    assert job.tags["dagster/max_runtime"] == str(900 + 300)

    ran = job.execute_in_process()
    assert ran.success
    runs = datum_dot.Project(example.path).runs(last=1)
    assert runs[0]["trigger"] == "dagster"
    assert runs[0]["commit"] == sha
    assert runs[0]["spec"] == f"prod@{sha}"
    # the commit after the pin was not built
    rows = example.query("select table_name from information_schema.tables")
    assert "later" not in {str(row[0]) for row in rows}


def test_dagster_export_overlap_skip_skips_while_a_run_is_active(
    example: ExampleProject, tmp_path: Path
) -> None:
    import dagster as dg
    from dagster._core.storage.dagster_run import DagsterRun

    skip = schedule("hourly", "0 * * * *", overlap=Overlap.SKIP, enabled=False)
    queue = schedule("queued", "0 * * * *", overlap=Overlap.QUEUE)
    defs: dict[str, Any] = {}
    for item in (skip, queue):
        (file,) = render(located(example, item), DagsterOptions(), zone="UTC").files
        path = tmp_path / file.name
        path.write_text(file.text)
        (defs[item.name],) = _load(path).schedules
    assert defs["hourly"].default_status == dg.DefaultScheduleStatus.STOPPED
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance)
        first = defs["hourly"].evaluate_tick(context)
        assert [r.tags["datum_dot/schedule"] for r in first.run_requests or []] == ["hourly"]
        for name in ("dot_hourly", "dot_queued"):
            instance.add_run(DagsterRun(job_name=name, status=dg.DagsterRunStatus.STARTED))
        skipped = defs["hourly"].evaluate_tick(dg.build_schedule_context(instance=instance))
        assert not skipped.run_requests
        assert "overlap skip" in (skipped.skip_message or "")
        queued = defs["queued"].evaluate_tick(dg.build_schedule_context(instance=instance))
        assert [r.tags["datum_dot/schedule"] for r in queued.run_requests or []] == ["queued"]

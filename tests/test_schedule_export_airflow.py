"""`dot schedule export --to airflow` without Airflow: the DAG file's calls read back with `ast`,
the same bytes for the same schedule, and the settings it refuses. Airflow's own DagBag loads the
file in tests/integrations/airflow/test_airflow_export.py (scripts/test-airflow)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from datum_dot.cli.main import main
from datum_dot.errors import ScheduleError
from datum_dot.scheduling.export.airflow import AirflowOptions
from datum_dot.scheduling.export.exports import render
from datum_dot.scheduling.schedules import Overlap
from tests.helpers.example import ExampleProject
from tests.helpers.exports import located, register, schedule

SHA = "0123456789abcdef0123456789abcdef01234567"


def _keywords(text: str, function: str) -> dict[str, str]:
    """The keyword arguments of the one call of `function` in the file, as source text."""
    tree = ast.parse(text)
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name) and node.func.id == function]  # fmt: skip
    (call,) = calls
    return {kw.arg or "": ast.unparse(kw.value) for kw in call.keywords}


def _value(source: str) -> object:
    return ast.literal_eval(source)


@pytest.mark.parametrize(
    ("cron", "zone", "overlap", "timeout"),
    [("0 6 * * *", "Europe/Berlin", "skip", None), ("*/15 9-17 * * mon-fri", "UTC", "queue", 90.5)],
)
def test_export_airflow_carries_cron_zone_pin_overlap_and_timeout(
    example: ExampleProject, cron: str, zone: str, overlap: str, timeout: float | None
) -> None:
    item = schedule("nightly", cron, spec="prod@main", pinned_commit=SHA, pinned_ref="main",
                    overlap=Overlap(overlap), timeout=timeout, dbt_args=("--select", "orders+"))  # fmt: skip
    (file,) = render(located(example, item), AirflowOptions(), zone=zone).files
    assert file.name == "datum_dot_shop_nightly.py"
    dag = _keywords(file.text, "DAG")
    assert _value(dag["dag_id"]) == "datum_dot_shop_nightly"
    assert dag["schedule"] == f"CronTriggerTimetable({cron!r}, timezone={zone!r})"
    assert dag["start_date"] == f"pendulum.datetime(2026, 1, 2, tz={zone!r})"
    assert (_value(dag["catchup"]), _value(dag["max_active_runs"])) == (False, 1)
    assert _value(dag["is_paused_upon_creation"]) is False
    task = _keywords(file.text, "DotOperator")
    assert _value(task["spec"]) == f"prod@{SHA}"
    assert _value(task["command"]) == "build"
    assert _value(task["args"]) == ["--select", "orders+"]
    assert _value(task["project_dir"]) == str(example.path)
    assert _value(task["retries"]) == 0
    if timeout is None:
        assert "timeout" not in task
        assert "execution_timeout" not in task
        assert "timedelta" not in file.text
    else:
        assert _value(task["timeout"]) == timeout
        # dot stops dbt itself first; Airflow's hard limit adds the grace period
        assert task["execution_timeout"] == "timedelta(seconds=391)"
    assert f"# overlap {overlap}:" in file.text
    again = render(located(example, item), AirflowOptions(), zone=zone).files[0]
    assert again.text == file.text


def test_export_airflow_follows_a_branch_when_not_pinned(example: ExampleProject) -> None:
    item = schedule("nightly", spec="prod@main", enabled=False, defer="prod@v1")
    (file,) = render(located(example, item), AirflowOptions(), zone="UTC").files
    task = _keywords(file.text, "DotOperator")
    assert _value(task["spec"]) == "prod@main"
    assert _value(task["defer"]) == "prod@v1"
    assert _value(_keywords(file.text, "DAG")["is_paused_upon_creation"]) is True
    assert "# Not pinned: each run builds where the ref points" in file.text
    assert "# The schedule is paused: the DAG is created paused." in file.text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"state_from": "prod@v1"}, "--state-from cannot be exported to Airflow"),
        ({"max_state_age": 3600.0}, "--max-state-age cannot be exported to Airflow"),
        ({"defer": "prod", "state_source": "cloud"}, "dbt Cloud state cannot be exported"),
        ({"fetch": True}, "--fetch cannot be exported to Airflow"),
    ],
)
def test_export_airflow_refuses_what_the_operator_cannot_run(
    example: ExampleProject, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ScheduleError, match=message):
        render(located(example, schedule("nightly", **fields)), AirflowOptions(), zone="UTC")


def test_export_airflow_cli_writes_the_file_and_refuses_profiles_in_repo(
    example: ExampleProject,
    hermetic: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    register(hermetic / ".datum", example, [schedule("nightly", pinned_commit=SHA)])
    monkeypatch.chdir(example.path)
    out = tmp_path / "dags"
    argv = ["schedule", "export", "nightly", "--to", "airflow", "--time-zone", "UTC"]
    assert main([*argv, "-o", str(out)]) == 0
    text = (out / "datum_dot_shop_nightly.py").read_text()
    assert _value(_keywords(text, "DotOperator")["spec"]) == f"prod@{SHA}"
    compile(text, "datum_dot_shop_nightly.py", "exec")
    assert "into Airflow's dags folder" in capsys.readouterr().err
    assert main([*argv, "--profiles-in-repo"]) == 20
    err = capsys.readouterr().err
    assert "error: --profiles-in-repo is for --to kubernetes and github-actions" in err
    assert "hint: Airflow runs use the profiles.yml of the project folder: drop it" in err

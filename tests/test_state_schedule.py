"""Schedules take the same state forms as `dot build` (`--defer prod`, `--state-from
prod@main`, `--state-source`, `--max-state-age`), checked as the schedule is added (a dry run
of its plan), kept in config.yaml and handed to every firing. Real git repository, crontab
file and run history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datum_dot.cli.main import main
from datum_dot.history import RunEnd, RunStart, RunStore
from datum_dot.home.settings import datum_home
from datum_dot.runs.run import RunStatus
from datum_dot.runs.spec import Spec
from datum_dot.scheduling.fire import state_options
from datum_dot.scheduling.schedules import all_schedules
from tests.helpers.example import ExampleProject


@pytest.fixture
def project(
    example: ExampleProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ExampleProject:
    monkeypatch.chdir(example.path)
    monkeypatch.setenv("DOT_CRONTAB", str(tmp_path / "crontab"))
    target = tmp_path / "target"
    target.mkdir()
    (target / "manifest.json").write_text(json.dumps({"nodes": {}}))
    (target / "run_results.json").write_text(json.dumps({"results": []}))
    store = RunStore(datum_home())
    run_id = store.begin(
        RunStart(project="jaffle_dot", spec="prod", command=("build",), env="prod")
    )
    store.finish(run_id, RunEnd(RunStatus.SUCCESS, 0, run_results=target / "run_results.json"))
    return example


def test_schedule_keeps_state_options_for_every_firing(
    project: ExampleProject, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["schedule", "add", "ci", "--cron", "0 6 * * *", "dev", "--defer", "prod",
                 "--state-from", "prod@main", "--max-state-age", "2d", "--yes"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "state     defer to prod (run history), compare to prod@main, at most 172800s old" in out
    (located,) = all_schedules(datum_home())
    schedule = located.schedule
    assert (schedule.defer, schedule.state_from, schedule.max_state_age) == (
        "prod", "prod@main", 172800.0,
    )  # fmt: skip
    fields = state_options(schedule)
    assert fields["defer"] == Spec(env="prod")
    assert fields["state_from"] == Spec(env="prod", ref="main")
    assert fields["state_source"] == "history"
    # The datum CLI's shorthand takes them too.
    assert main(["schedule", "--cron", "@daily", "dev", "--defer", "prod", "--yes"]) == 0
    assert {s.schedule.defer for s in all_schedules(datum_home())} == {"prod"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--defer", "ci"], "no successful run of ci"),
        (["--state-from", "prod"], "must name a git ref"),
        (["--state-from", "prod@no-such-ref"], "no-such-ref"),
        (["--state-source", "cloud"], "--defer is not given"),
    ],
)
def test_schedule_state_bad_input_is_refused_when_added(
    project: ExampleProject, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["schedule", "add", "bad", "--cron", "@daily", "dev", *args, "--yes"]) == 20
    err = capsys.readouterr().err
    assert message in err
    assert "hint: " in err
    assert all_schedules(datum_home()) == []

"""Scheduled runs with real dbt: each crontab line is run as cron runs it (`env -i ... sh -c`).

One example repository, warehouse, DATUM_HOME and DOT_CRONTAB file serve the whole module, so
builds of a commit are made once and reused; the tests run in file order.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from datum_dot.cli.main import main
from datum_dot.runs.run import RunStatus
from tests.helpers.example import BIN, ExampleProject, make_example
from tests.helpers.schedules import fire_line, schedule_runs, write_crontab

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("schedule_runs")]


@dataclass(frozen=True)
class World:
    """What the module's tests share."""

    example: ExampleProject
    home: Path
    crontab: Path
    elsewhere: Path
    user_home: Path
    first: str


@pytest.fixture(scope="module")
def world(
    module_monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    base = tmp_path_factory.mktemp("schedule_runs")
    example = make_example(base, monkeypatch_env=False)
    crontab = base / "crontab"
    write_crontab(crontab, example.database)
    home = Path(os.environ["DATUM_HOME"])
    module_monkeypatch.setenv("DOT_CRONTAB", str(crontab))
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(example.database))
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    return World(example, home, crontab, elsewhere, Path(os.environ["HOME"]), example.repo.head())


@pytest.fixture(autouse=True)
def _in_world(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # The function-scoped `hermetic` fixture gave this test a fresh home: use the module's.
    monkeypatch.setenv("DATUM_HOME", str(world.home))
    monkeypatch.setenv("HOME", str(world.user_home))
    monkeypatch.setenv("DOT_CRONTAB", str(world.crontab))
    monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(world.example.database))
    monkeypatch.chdir(world.example.path)


def add(*args: str) -> None:
    assert main(["schedule", "add", *args, "--yes"]) == 0


def fire(world: World, name: str) -> subprocess.CompletedProcess[str]:
    proc = fire_line(world.crontab, name, home=world.user_home, cwd=world.elsewhere)
    output = proc.stdout.read() if proc.stdout else ""
    return subprocess.CompletedProcess(proc.args, proc.returncode, output, "")


def wait_running(world: World, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r.status is RunStatus.RUNNING for r in schedule_runs(world.home, name)):
            return
        time.sleep(0.1)
    raise AssertionError(f"no RUNNING record of {name}")


def test_schedule_line_run_as_cron_builds_the_right_commit(world: World) -> None:
    add("moving", "--cron", "0 3 * * *", "prod@main")
    result = fire(world, "moving")
    assert result.returncode == 0, result.stdout
    (run,) = schedule_runs(world.home, "moving")
    assert (run.status, run.start.trigger, run.start.commit) == (
        RunStatus.SUCCESS, "cron", world.first,
    )  # fmt: skip
    assert f"analytics_{world.first[:8]}" in world.example.schemas()
    # cron.log gets one line per firing; dbt's output is in the run's logs only.
    log = (world.home / "cron.log").read_text().splitlines()
    assert len(log) == 1
    assert "jaffle_dot/moving: SUCCESS" in log[0]
    assert "Completed successfully" in (run.run_dir / "output.log").read_text()


def test_schedule_pinned_stays_and_moving_follows_main(world: World) -> None:
    add("pinned", "--cron", "@hourly", "prod@main", "--pin")
    orders = world.example.path / "models" / "marts" / "orders.sql"
    second = world.example.repo.commit(
        {"models/marts/orders.sql": orders.read_text().replace("select", "select /* 2 */", 1)}
    )
    assert fire(world, "pinned").returncode == 0
    assert fire(world, "moving").returncode == 0
    assert schedule_runs(world.home, "pinned")[0].start.commit == world.first
    assert schedule_runs(world.home, "moving")[0].start.commit == second
    assert f"analytics_{second[:8]}" in world.example.schemas()
    # Promotion is a deliberate step: `pin` moves it, recorded in config and history.
    assert main(["schedule", "pin", "pinned", "main"]) == 0
    assert fire(world, "pinned").returncode == 0
    runs = schedule_runs(world.home, "pinned")
    assert runs[0].start.commit == second
    assert runs[1].start.command == ("schedule", "pin")


def test_schedule_run_summary_shows_an_arrow_only_where_a_ref_led_to_the_commit(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # `pinned` builds its commit (the ref is the commit: no `<sha> -> <same sha>`); `moving`
    # resolves main at each firing, and says where main led.
    capsys.readouterr()
    pinned = schedule_runs(world.home, "pinned")[0].start.commit
    assert main(["schedule", "run", "pinned", "--from-cron"]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"SUCCESS {pinned[:12]} into analytics_{pinned[:8]}" in summary, summary
    assert "->" not in summary
    assert main(["schedule", "run", "moving", "--from-cron"]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"SUCCESS main -> {world.example.repo.head()[:12]}" in summary, summary


def test_schedule_run_into_a_log_has_dbts_lines_without_colour_codes(world: World) -> None:
    # what a pod's log, a timer's journal or cron's mail gets from `dot schedule run`
    env = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "FORCE_COLOR",
                                                          "DBT_USE_COLORS"}}  # fmt: skip
    got = subprocess.run(
        [str(BIN / "dot"), "schedule", "run", "pinned"],
        cwd=world.example.path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert got.returncode == 0, got.stdout + got.stderr
    assert "Running with dbt=" in got.stdout
    assert "\x1b[" not in got.stdout + got.stderr


def test_schedule_overlap_skip_records_skipped(world: World) -> None:
    add("skipper", "--cron", "@daily", "prod@main")
    first = fire_line(world.crontab, "skipper", home=world.user_home, cwd=world.elsewhere,
                      wait=False)  # fmt: skip
    wait_running(world, "skipper")
    second = fire(world, "skipper")
    assert second.returncode == 0
    assert first.wait(timeout=300) == 0
    statuses = [r.status for r in schedule_runs(world.home, "skipper")]
    assert sorted(statuses) == [RunStatus.SKIPPED, RunStatus.SUCCESS]
    skipped = next(r for r in schedule_runs(world.home, "skipper") if r.status is RunStatus.SKIPPED)
    assert "is still running" in (skipped.error_message or "")
    assert skipped.start.trigger == "cron"


def test_schedule_overlap_queue_waits_for_the_previous_run(world: World) -> None:
    add("queued", "--cron", "@daily", "prod@main", "--overlap", "queue", "--timeout", "600")
    first = fire_line(world.crontab, "queued", home=world.user_home, cwd=world.elsewhere,
                      wait=False)  # fmt: skip
    wait_running(world, "queued")
    second = fire(world, "queued")
    assert second.returncode == 0
    assert first.wait(timeout=300) == 0
    older, newer = reversed(schedule_runs(world.home, "queued"))
    assert (older.status, newer.status) == (RunStatus.SUCCESS, RunStatus.SUCCESS)
    assert older.finished_at is not None
    assert newer.started_at >= older.finished_at


def test_schedule_failed_fetch_is_the_runs_failure(world: World, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    repo = world.example.repo
    subprocess.run(["git", "clone", "--quiet", "--bare", str(repo.path), str(remote)], check=True)
    repo.git("remote", "add", "origin", str(remote))
    repo.git("fetch", "--quiet", "origin")
    add("fetching", "--cron", "@daily", "prod@origin/main", "--fetch")
    add("lenient", "--cron", "@daily", "prod@origin/main", "--fetch", "--fetch-optional")
    shutil.rmtree(remote)
    schemas = world.example.schemas()
    result = fire(world, "fetching")
    assert result.returncode == 30
    (run,) = schedule_runs(world.home, "fetching")
    assert (run.status, run.error_class) == (RunStatus.FAILED, "FetchError")
    assert "git fetch failed" in (run.error_message or "")
    assert "nothing was built" in (run.error_message or "")
    assert world.example.schemas() == schemas
    assert fire(world, "lenient").returncode == 0
    (ok,) = schedule_runs(world.home, "lenient")
    assert ok.status is RunStatus.SUCCESS
    assert "warning: git fetch failed" in (ok.run_dir / "output.log").read_text()
    repo.git("remote", "remove", "origin")


def test_schedule_ref_gone_at_firing_is_recorded_failed(world: World) -> None:
    world.example.repo.branch("feature")
    add("feature", "--cron", "@daily", "prod@feature")
    world.example.repo.git("branch", "--delete", "--force", "feature")
    result = fire(world, "feature")
    assert result.returncode == 20
    (run,) = schedule_runs(world.home, "feature")
    assert run.status is RunStatus.FAILED
    assert "did not resolve" in (run.error_message or "")


def test_schedule_list_shows_last_status_and_next_run(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schedule", "list"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if " skipper " in line)
    assert "SUCCESS" in row or "SKIPPED" in row
    assert "ACTIVE" in row
    assert row.split()[-1] == "ACTIVE"

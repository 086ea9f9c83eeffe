"""`dot schedule`: adding, pausing, resuming, removing against a DOT_CRONTAB file; bad input.

Adding rehearses the line in a cron-like environment (a `dot` subprocess that imports dbt), so
these tests take a few seconds each; nothing here builds with dbt.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from datum_dot.cli.main import main
from datum_dot.home.settings import datum_home
from tests.helpers.example import ExampleProject
from tests.helpers.schedules import config_schedules, line_of, write_crontab

pytestmark = pytest.mark.xdist_group("schedule_cli")


@pytest.fixture
def tab(example: ExampleProject, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A DOT_CRONTAB file with foreign lines; the current folder is the example project."""
    path = tmp_path / "crontab"
    write_crontab(path, example.database)
    monkeypatch.setenv("DOT_CRONTAB", str(path))
    monkeypatch.chdir(example.path)
    example.repo.tag("v1.0")
    return path


def dot(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_schedule_round_trip_keeps_foreign_lines_byte_for_byte(
    tab: Path, example: ExampleProject, capsys: pytest.CaptureFixture[str]
) -> None:
    original = tab.read_bytes()
    code, out, err = dot(
        capsys, "schedule", "add", "nightly", "--cron", "0 2 * * *", "prod@main",
        "--command", "build", "--timeout", "3600", "--yes", "--", "--exclude", "tag:slow",
    )  # fmt: skip
    assert code == 0, err
    line = line_of(tab, "nightly")
    assert f"+ {line.text}" in out
    assert "cron      0 2 * * *: next " in out
    assert tab.read_bytes() == original + f"{line.text}\n".encode()
    assert line.timing == "0 2 * * *"
    assert line.command.startswith(f"cd {example.path} && DATUM_HOME={datum_home()} /")
    assert " schedule run nightly --project jaffle_dot --from-cron >>" in line.command
    assert line.has_executable()
    saved = config_schedules(datum_home())["nightly"]
    assert saved["spec"] == "prod@main"
    assert saved["dbt_args"] == ["--exclude", "tag:slow"]
    assert (saved["timeout"], saved["overlap"], saved["enabled"]) == (3600.0, "skip", True)

    assert dot(capsys, "schedule", "pause", "nightly", "--yes")[0] == 0
    assert tab.read_bytes() == original
    assert config_schedules(datum_home())["nightly"]["enabled"] is False
    code, out, _ = dot(capsys, "schedule", "list")
    assert "PAUSED" in out

    assert dot(capsys, "schedule", "resume", "nightly", "--yes")[0] == 0
    assert tab.read_bytes() == original + f"{line.text}\n".encode()
    code, out, _ = dot(capsys, "schedule", "status")
    assert code == 0
    assert "ACTIVE" in out
    assert line.text in out
    assert f"file {tab}" in out

    assert dot(capsys, "schedule", "remove", "nightly", "--yes")[0] == 0
    assert tab.read_bytes() == original
    assert "nightly" not in config_schedules(datum_home())


def test_schedule_dry_run_and_no_terminal_change_nothing(
    tab: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = tab.read_bytes()
    code, out, _ = dot(capsys, "schedule", "add", "n", "--cron", "@daily", "prod@main", "--dry-run")
    assert code == 0
    assert "+ @daily cd " in out
    assert "dry run: nothing changed" in out
    code, _, err = dot(capsys, "schedule", "add", "n", "--cron", "@daily", "prod@main")
    assert code == 20
    assert "no terminal to ask on" in err
    assert "hint: pass --yes" in err
    assert tab.read_bytes() == original
    assert not (datum_home() / "config.yaml").exists() or not config_schedules(datum_home())


def test_schedule_shorthand_works_as_written(tab: Path, example: ExampleProject) -> None:
    result = example.dot("schedule", "--cron", "0 6 * * *", "prod@v1.0", "--yes", program="datum")
    assert result.returncode == 0, result.stderr
    assert "cron      0 6 * * *: next " in result.stdout
    assert result.stdout.split("next ", 1)[1].count(":00") == 3  # the next 3 fire times
    assert line_of(tab, "prod-v1.0").timing == "0 6 * * *"
    spelled = example.dot("dbt", "schedule", "--cron", "0 10 * * *", "--yes", program="datum")
    assert spelled.returncode == 0, spelled.stderr
    assert config_schedules(datum_home())["default"]["cron"] == "0 10 * * *"
    status = example.dot("dbt", "schedule", "--status", program="datum")
    assert status.returncode == 0, status.stderr
    assert "prod-v1.0" in status.stdout
    assert "default" in status.stdout


def test_schedule_rehearsal_failure_installs_nothing(
    tab: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # cron would run the line with this PATH: git is not found, the ref does not resolve.
    tab.write_bytes(tab.read_bytes() + b"PATH=/nowhere\n")
    original = tab.read_bytes()
    code, _, err = dot(capsys, "schedule", "add", "n", "--cron", "@daily", "prod@main", "--yes")
    assert code == 20
    assert "fails under cron's environment" in err
    assert "hint: run it as cron would: env -i " in err
    assert tab.read_bytes() == original
    assert "n" not in config_schedules(datum_home())


def test_schedule_init_again_keeps_schedules_and_lines(
    tab: Path, example: ExampleProject, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dot(capsys, "schedule", "add", "n", "--cron", "@daily", "prod@main", "--yes")[0] == 0
    again = example.dot("init")
    assert again.returncode == 0, again.stderr
    code, out, err = dot(capsys, "schedule", "status")
    assert code == 0, err
    assert "ACTIVE" in out
    assert "warning" not in err


def test_schedule_status_warns_about_a_missing_program(
    tab: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dot(capsys, "schedule", "add", "n", "--cron", "@daily", "prod@main", "--yes")[0] == 0
    line = line_of(tab, "n")
    tab.write_text(tab.read_text().replace(line.executable or "", "/gone/bin/dot"))
    code, _, err = dot(capsys, "schedule", "status")
    assert code == 10
    assert "runs /gone/bin/dot, which no longer exists" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "n", "--cron", "0 6 * * * *", "prod@main"), "cron has no seconds field"),
        (("add", "n", "--cron", "61 * * * *", "prod@main"), "invalid cron expression"),
        (("add", "n", "--cron", "@daily", "nope@main"), "unknown environment 'nope'"),
        (("add", "n", "--cron", "@daily", "prod@no-such-ref"), "did not resolve to a commit"),
        (("add", "n", "--cron", "@daily", "prod", "--pin"), "--pin needs a spec with a git ref"),
        (("add", "n", "--cron", "@daily", "prod@main", "--fetch"), "has no remote"),
        (("add", "n", "--cron", "@daily", "--command", "nap"), "not a dbt command"),
        (("pause", "ghost"), "no schedule named 'ghost'"),
        (("resume", "ghost"), "no schedule named 'ghost'"),
        (("remove", "ghost"), "no schedule named 'ghost'"),
        (("run", "ghost"), "no schedule named 'ghost'"),
        (("pin", "ghost", "main"), "no schedule named 'ghost'"),
    ],
)
def test_schedule_bad_input_is_one_line_a_hint_and_exit_20(
    tab: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    original = tab.read_bytes()
    code, _, err = dot(
        capsys, "schedule", *args, "--dry-run" if args[0] in ("run", "pin") else "--yes"
    )
    assert code == 20, err
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: "), err
    assert message in lines[0], err
    assert lines[1].startswith("hint: ")
    assert "Traceback" not in err
    assert tab.read_bytes() == original


def test_schedule_duplicate_name_is_refused(tab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert dot(capsys, "schedule", "add", "n", "--cron", "@daily", "prod@main", "--yes")[0] == 0
    code, _, err = dot(capsys, "schedule", "add", "n", "--cron", "@hourly", "dev@main", "--yes")
    assert code == 20
    assert "already has a schedule named 'n'" in err
    assert "hint: " in err
    code, _, err = dot(capsys, "schedule", "pin", "n", "main")
    assert code == 20
    assert "is not pinned" in err


def test_schedule_crontab_errors_exit_20(
    tab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOT_CRONTAB", str(tmp_path / "no" / "such" / "crontab"))
    code, _, err = dot(capsys, "schedule", "add", "n", "--cron", "@daily", "prod@main", "--yes")
    assert code == 20
    assert "folder that does not exist" in err
    monkeypatch.delenv("DOT_CRONTAB")
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _, err = dot(capsys, "schedule", "add", "n", "--cron", "@daily", "prod@main", "--yes")
    assert code == 20
    assert "apt-get install cron" in err
    monkeypatch.setenv("PATH", os.defpath)

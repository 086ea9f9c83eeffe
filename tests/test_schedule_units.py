"""Schedules without dbt: cron expressions, crontab lines and splicing, the cron environment."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from datum_dot.cli.scheduleargs import SHORTHAND, expand_shorthand
from datum_dot.errors import ExitCode, ScheduleError
from datum_dot.scheduling import cronenv, cronlines
from datum_dot.scheduling.cronexpr import local_zone, parse_cron, zone_name
from datum_dot.scheduling.crontab import (
    Crontab,
    add_lines,
    change_crontab,
    open_crontab,
    render_line,
)
from datum_dot.scheduling.schedules import check_name, name_for_spec

FOREIGN = (
    "# m h  dom mon dow   command\n"
    "SHELL=/bin/bash\n"
    "FOO = bar baz\n"
    'MAILTO=""\n'
    "0  6 * * *   /usr/bin/backup   --all   # nightly backup\n"
    "*/5 * * * * echo '%s' hi\\%there\n"
    "\n"
    "@reboot   /usr/bin/thing\n"
    "  # indented comment\t\n"
    "15 * * * * weird  line   \n"
    "0 1 * * * crlf line\r\n"
)


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("0 6 * * *", "0 6 * * *"),
        ("  */15   * * * mon-fri ", "*/15 * * * mon-fri"),
        ("@HOURLY", "@hourly"),
        ("@daily", "@daily"),
        ("0 0 1 jan,jul *", "0 0 1 jan,jul *"),
        ("30 2 * * thu,wed", "30 2 * * thu,wed"),
    ],
)
def test_schedule_cron_accepts_what_cron_reads(text: str, normal: str) -> None:
    assert parse_cron(text).text == normal


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0 6 * * * *", "cron has no seconds field"),
        ("* * *", "it has 3 fields"),
        ("", "it is empty"),
        ("61 * * * *", "out of range"),
        ("0 6 L * *", "uses 'L'"),
        ("0 6 * * 1#2", "uses '#'"),
        ("H * * * *", "uses 'H'"),
        ("@reboot", "@reboot fires at boot"),
        ("@often", "not a cron macro"),
        ("0 0 31 2 *", "never fires"),
        ("*/0 * * * *", "step '0'"),
        ("0 6 * * * extra", "cron has no seconds field"),
    ],
)
def test_schedule_cron_refuses_with_the_reason_and_an_example(text: str, why: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_cron(text)
    assert why in caught.value.message
    assert '"0 6 * * *"' in caught.value.hint
    assert caught.value.exit_code == ExitCode.BAD_INPUT


def test_schedule_cron_next_times_are_local_and_in_order() -> None:
    start = datetime(2030, 1, 1, 5, 59, tzinfo=local_zone())
    times = parse_cron("0 6 * * *").next_times(3, after=start)
    assert [t.day for t in times] == [1, 2, 3]
    assert all(t.hour == 6 and t.minute == 0 for t in times)
    assert zone_name(times[0])


def test_schedule_line_is_rendered_by_python_crontab_with_the_marker() -> None:
    line = render_line("0 2 * * *", "cd /srv/a%b && /x/dot", project_id="shop", schedule="n")
    assert line == "0 2 * * * cd /srv/a\\%b && /x/dot # datum-dot project=shop schedule=n"
    (parsed,) = cronlines.marked_lines(line)
    assert (parsed.project, parsed.schedule, parsed.timing) == ("shop", "n", "0 2 * * *")


def test_schedule_crontab_splice_keeps_foreign_bytes(tmp_path: Path) -> None:
    path = tmp_path / "crontab"
    path.write_bytes(FOREIGN.encode())
    tab = open_crontab({"DOT_CRONTAB": str(path)})
    line = render_line("@hourly", "/bin/true", project_id="shop", schedule="n")
    assert change_crontab(tab, home=tmp_path / "home", add=[line])
    assert path.read_bytes() == FOREIGN.encode() + f"{line}\n".encode()
    assert not change_crontab(tab, home=tmp_path / "home", add=[line])  # already there
    assert change_crontab(tab, home=tmp_path / "home", remove=[line])
    assert path.read_bytes() == FOREIGN.encode()


def test_schedule_add_lines_ends_an_unfinished_last_line() -> None:
    assert add_lines("0 1 * * * a", ["0 2 * * * b"]) == "0 1 * * * a\n0 2 * * * b\n"
    assert add_lines("", ["0 2 * * * b"]) == "0 2 * * * b\n"


def test_schedule_crontab_folder_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ScheduleError) as caught:
        open_crontab({"DOT_CRONTAB": str(tmp_path / "missing" / "crontab")})
    assert "folder that does not exist" in caught.value.message
    assert "mkdir -p" in caught.value.hint


def test_schedule_crontab_program_missing_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(ScheduleError) as caught:
        open_crontab({"PATH": str(tmp_path)})
    assert "`crontab` program is not installed" in caught.value.message
    assert "apt-get install cron" in caught.value.hint


def test_schedule_crontab_not_writable() -> None:
    # Even root cannot create files in /proc: the one unwritable folder a test can rely on.
    tab = Crontab(cronlines.CrontabSource(file=Path("/proc/dot-crontab")))
    with pytest.raises(ScheduleError) as caught:
        change_crontab(tab, home=Path("/tmp/dot-test-home-unused"), add=["0 1 * * * x # y"])
    assert "crontab" in caught.value.message
    assert caught.value.exit_code == ExitCode.BAD_INPUT


def test_schedule_cron_environment_is_minimal_plus_the_crontab_assignments() -> None:
    env = cronenv.cron_environ('A=1\nB = "two words"\n# C=3\n0 6 * * * x=y\n')
    assert env["PATH"] == "/usr/bin:/bin"
    assert env["SHELL"] == "/bin/sh"
    assert {"HOME", "LOGNAME"} <= set(env)
    assert (env["A"], env["B"]) == ("1", "two words")
    assert "C" not in env


def test_schedule_line_command_passes_datum_home_only_when_not_default(tmp_path: Path) -> None:
    home = tmp_path / ".datum"
    default = cronenv.line_command(
        project_id="shop", schedule="n", project_dir=tmp_path, home=home, cron_home=tmp_path
    )
    assert "DATUM_HOME" not in default.shell()
    other = cronenv.line_command(
        project_id="shop", schedule="n", project_dir=tmp_path, home=home, cron_home=Path("/root")
    )
    assert f"DATUM_HOME={home}" in other.shell()
    assert other.shell().startswith(f"cd {tmp_path} && ")
    assert other.shell().endswith(f">>{home}/cron.log 2>&1")
    assert Path(other.executable).is_absolute()
    assert other.dry_run().endswith("--from-cron --dry-run")


def test_schedule_shorthand_expands_to_add() -> None:
    assert expand_shorthand(["schedule", "--cron", "0 6 * * *", "prod@v1.2"]) == [
        "schedule", "add", SHORTHAND, "prod@v1.2", "--cron", "0 6 * * *",
    ]  # fmt: skip
    assert expand_shorthand(["schedule"]) == ["schedule", "list"]
    assert expand_shorthand(["schedule", "list"]) == ["schedule", "list"]
    assert expand_shorthand(["schedule", "--help"]) == ["schedule", "--help"]
    assert expand_shorthand(["schedule", "add", "n", "--cron", "@daily", "prod@main", "--pin"]) == [
        "schedule", "add", "n", "prod@main", "--cron", "@daily", "--pin",
    ]  # fmt: skip
    assert expand_shorthand(["build", "prod"]) == ["build", "prod"]


def test_schedule_names() -> None:
    assert name_for_spec("prod@v1.2") == "prod-v1.2"
    assert name_for_spec("dev@HEAD~1") == "dev-HEAD-1"
    assert name_for_spec("") == "default"
    with pytest.raises(ScheduleError):
        check_name("prod@main")

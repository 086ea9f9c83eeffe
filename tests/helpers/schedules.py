"""Schedules in tests: a crontab file with foreign lines, and a crontab line run as cron runs it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from datum_dot.history import RunStore, StoredRun
from datum_dot.scheduling import cronenv, cronlines

# Lines of someone else's crontab that every edit must leave byte for byte.
FOREIGN = (
    "# m h  dom mon dow   command\n"
    "SHELL=/bin/sh\n"
    "FOO = bar baz\n"
    "0  5 * * *   /usr/bin/backup   --all   # nightly backup\n"
    "*/5 * * * * echo '%s' hi\\%there\n"
    "  # indented comment\t\n"
    "0 1 * * * crlf line\r\n"
)


def write_crontab(path: Path, database: Path) -> bytes:
    """A crontab file of foreign lines plus the variable the example's profile needs."""
    text = FOREIGN + f"DOT_EXAMPLE_DUCKDB={database}\n"
    path.write_bytes(text.encode())
    return text.encode()


def line_of(crontab: Path, schedule: str) -> cronlines.CronLine:
    """The one line of `schedule` in the crontab file."""
    (line,) = [ln for ln in cronlines.marked_lines(crontab.read_text()) if ln.schedule == schedule]
    return line


def fire_line(
    crontab: Path, schedule: str, *, home: Path, cwd: Path, wait: bool = True
) -> subprocess.Popen[str]:
    """Run the command part of the schedule's crontab line as cron would.

    `env -i HOME=<home> PATH=/usr/bin:/bin <the crontab's NAME=value lines> sh -c '<command>'`,
    from `cwd` (not the project).
    """
    text = crontab.read_text()
    command = line_of(crontab, schedule).command
    assignments = [f"{k}={v}" for k, v in cronenv.crontab_assignments(text).items()]
    proc = subprocess.Popen(
        ["env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin", *assignments, "sh", "-c", command],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if wait:
        proc.wait(timeout=300)
    return proc


def schedule_runs(home: Path, schedule: str) -> list[StoredRun]:
    """The history's runs of a schedule, newest first."""
    return [r for r in RunStore(home).query(last=None) if r.start.schedule == schedule]


def config_schedules(home: Path) -> dict[str, dict[str, object]]:
    """Every schedule in config.yaml, by name."""
    data = yaml.safe_load((home / "config.yaml").read_text())
    return {s["name"]: s for project in data["projects"].values() for s in project["schedules"]}

"""The real thing: root's crontab through the `crontab` program, and Debian's cron daemon firing.

Both tests change the crontab of the user running them (root in CI): every line they add is
tagged with a random schedule name and removed afterwards, whatever happens; every other line is
checked to survive byte for byte. The daemon is started by the test (unless one already runs)
and stopped by its pid.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from datum_dot.cli.main import main
from datum_dot.history import RunStore, StoredRun
from datum_dot.home.settings import datum_home
from datum_dot.runs.run import RunStatus
from datum_dot.scheduling import cronlines
from tests.helpers.ci import skip_or_fail
from tests.helpers.example import ExampleProject

CRON = Path("/usr/sbin/cron")
PIDFILE = Path("/var/run/crond.pid")

pytestmark = pytest.mark.xdist_group("root_crontab")


@pytest.fixture(autouse=True)
def crontab_program() -> None:
    """The real `crontab` program, before any other fixture touches the crontab."""
    if shutil.which("crontab") is None:
        skip_or_fail("needs the crontab program: .ci/run installs cron")


def read_crontab() -> str:
    source = cronlines.crontab_source(os.environ)
    assert source is not None
    assert source.program is not None
    return cronlines.read_crontab(source)


@pytest.fixture
def tag(example: ExampleProject, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A schedule name of this test; its lines (and `extra` lines) are removed at the end."""
    monkeypatch.chdir(example.path)
    name = f"dot-test-{secrets.token_hex(4)}"
    try:
        yield name
    finally:
        text = read_crontab()
        ours = [ln.text for ln in cronlines.marked_lines(text) if ln.schedule == name]
        extra = [line for line in text.split("\n") if name in line or line in _extra]
        source = cronlines.crontab_source(os.environ)
        assert source is not None
        cronlines.remove_from_crontab(source, [*ours, *extra])
        _extra.clear()
        if not read_crontab().strip():  # leave "no crontab" as it was, not an empty one
            subprocess.run(["crontab", "-r"], check=False, capture_output=True)


_extra: list[str] = []


def test_schedule_real_crontab_round_trip(tag: str, example: ExampleProject) -> None:
    before = read_crontab()
    assert main(["schedule", "add", tag, "--cron", "0 4 * * *", "prod@main", "--yes"]) == 0
    after = read_crontab()
    (line,) = [ln for ln in cronlines.marked_lines(after) if ln.schedule == tag]
    assert after.startswith(before)
    assert after[len(before) :].strip("\n") == line.text
    assert main(["schedule", "pause", tag, "--yes"]) == 0
    assert read_crontab() == before
    assert main(["schedule", "resume", tag, "--yes"]) == 0
    assert line.text in read_crontab()
    assert main(["schedule", "remove", tag, "--yes"]) == 0
    assert read_crontab() == before


@pytest.fixture
def cron_daemon() -> None:
    """Root and Debian's cron daemon, which the test starts."""
    if os.geteuid() != 0 or not CRON.exists():
        skip_or_fail(f"starts cron: needs root and {CRON}")


@pytest.mark.slow
@pytest.mark.usefixtures("cron_daemon")
def test_schedule_real_cron_fires_a_schedule(tag: str, example: ExampleProject) -> None:
    source = cronlines.crontab_source(os.environ)
    assert source is not None
    # What a real user does: the variables the profile needs go into the crontab.
    env_lines = [
        f"# {tag}: variables of a datum-dot test",
        f"DOT_EXAMPLE_DUCKDB={example.database}",
        "DBT_SEND_ANONYMOUS_USAGE_STATS=false",
    ]
    _extra.extend(env_lines)
    text = read_crontab()
    cronlines.write_crontab(source, text + ("\n" if text and not text.endswith("\n") else "")
                            + "".join(f"{line}\n" for line in env_lines))  # fmt: skip
    assert main(["schedule", "add", tag, "--cron", "* * * * *", "prod@main", "--yes"]) == 0
    daemon = _start_cron()
    try:
        run = _wait_for_success(tag, timeout=170)
    finally:
        assert main(["schedule", "remove", tag, "--yes"]) == 0
        _wait_until_idle(tag, timeout=120)
        if daemon is not None:
            daemon.terminate()
            daemon.wait(timeout=30)
    assert run.start.trigger == "cron"
    assert run.start.commit == example.repo.head()
    assert f"analytics_{run.start.commit[:8]}" in example.schemas()


def _start_cron() -> subprocess.Popen[bytes] | None:
    """Start cron in the foreground, unless a cron daemon already runs (then it is left alone)."""
    try:
        pid = int(PIDFILE.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return subprocess.Popen([str(CRON), "-f"], stdin=subprocess.DEVNULL)
    return None


def _wait_for_success(name: str, *, timeout: float) -> StoredRun:
    store = RunStore(datum_home())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in store.query(last=None):
            if run.start.schedule == name and run.status is RunStatus.SUCCESS:
                return run
        time.sleep(2)
    log = datum_home() / "cron.log"
    raise AssertionError(f"cron did not run {name} in {timeout}s; cron.log: "
                         f"{log.read_text() if log.exists() else '(none)'}")  # fmt: skip


def _wait_until_idle(name: str, *, timeout: float) -> None:
    store = RunStore(datum_home())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [
            r
            for r in store.query(last=None, status=(RunStatus.RUNNING,))
            if r.start.schedule == name
        ]
        if not running:
            return
        time.sleep(1)

"""Locks shared by the hosts of a PostgreSQL history: one holds, the other waits or is told who."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from datum_dot.cli.main import main
from datum_dot.errors import LockTimeoutError
from datum_dot.history import RunStore
from datum_dot.home.dburl import DatabaseUrl
from datum_dot.home.settings import datum_home
from datum_dot.runs.run import RunStatus
from tests.helpers.example import ExampleProject
from tests.helpers.postgres import PostgresServer
from tests.helpers.schedules import write_crontab
from tests.test_pg_history import new_database

pytestmark = pytest.mark.postgres
HOST = os.uname().nodename


@pytest.fixture(scope="module")
def url(postgres_server: PostgresServer) -> DatabaseUrl:
    return DatabaseUrl(new_database(postgres_server), "test")


def test_one_host_holds_the_other_is_told_who_and_waits(url: DatabaseUrl, tmp_path: Path) -> None:
    a, b = RunStore(tmp_path / "a", database=url), RunStore(tmp_path / "b", database=url)
    parts = ("build", "jaffle_dot", "", "prod_abc123", "abc123")
    told: list[str] = []
    with a.shared_lock(parts, name="the build of prod@main", timeout=0):
        with (
            pytest.raises(LockTimeoutError) as refused,
            b.shared_lock(parts, name="the build of prod@main", timeout=0),
        ):
            pass  # pragma: no cover - never entered
        assert f"held by host {HOST} (process {os.getpid()}" in refused.value.message
        # Another key is free meanwhile.
        with b.shared_lock((*parts[:-1], "def456"), name="another commit", timeout=0):
            pass

        got = threading.Event()

        def wait_for_it() -> None:
            with b.shared_lock(
                parts, name="the build of prod@main", timeout=30, on_wait=told.append
            ):
                got.set()

        waiter = threading.Thread(target=wait_for_it)
        waiter.start()
        time.sleep(1.0)
        assert not got.is_set()  # still held: waiting
    waiter.join(timeout=30)
    assert got.is_set()  # let go: the waiter built
    assert told == [f"the build of prod@main is held by host {HOST} (process {os.getpid()}, since "
                    + told[0].split("since ", 1)[1]]  # fmt: skip
    assert told[0].endswith("UTC); waiting for it")


def test_a_sqlite_history_has_no_shared_lock(tmp_path: Path) -> None:
    store = RunStore(tmp_path, database=None)
    with (
        store.shared_lock(("x",), name="x", timeout=0),
        store.shared_lock(("x",), name="x", timeout=0),
    ):
        pass  # nothing shared to contend for: both enter


def test_a_schedule_firing_on_another_host_makes_this_one_skip(
    url: DatabaseUrl,
    example: ExampleProject,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    crontab = tmp_path / "crontab"
    write_crontab(crontab, example.database)
    monkeypatch.setenv("DOT_CRONTAB", str(crontab))
    monkeypatch.setenv("DATUM_DATABASE_URL", url.conninfo)
    monkeypatch.chdir(example.path)
    assert main(["schedule", "add", "nightly", "--cron", "@daily", "prod@main", "--yes"]) == 0
    other_host = RunStore(tmp_path / "other-host", database=url)
    with other_host.shared_lock(("schedule", "jaffle_dot", "nightly"), name="x", timeout=0):
        assert main(["schedule", "run", "nightly"]) == 0
    (run,) = RunStore(datum_home()).query(schedule="nightly")
    assert run.status is RunStatus.SKIPPED
    assert run.error_message == (
        f"skipped: the previous run of schedule 'nightly' (on {HOST}, pid {os.getpid()}) is "
        "still running"
    )


def test_two_hosts_building_prod_at_main_one_builds_the_other_waits_then_both_see_it(
    url: DatabaseUrl, example: ExampleProject, tmp_path: Path
) -> None:
    env = {"DATUM_HOME": str(tmp_path / "host-b"), "DATUM_DATABASE_URL": url.conninfo}
    plan = json.loads(example.dot("build", "prod@main", "--dry-run", "--json", env=env).stdout)
    profile = plan["isolated"]["profile"]
    parts = (
        "build",
        profile["name"],
        str(profile.get("database") or ""),
        profile["schema_after"],
        plan["isolated"]["commit"],
    )
    host_a = RunStore(tmp_path / "host-a", database=url)
    held = threading.Event()
    release = threading.Event()

    def build_on_host_a() -> None:
        with host_a.shared_lock(parts, name="the build of prod@main", timeout=0):
            held.set()
            release.wait(60)

    a = threading.Thread(target=build_on_host_a)
    a.start()
    assert held.wait(30)
    timer = threading.Timer(4.0, release.set)
    timer.start()
    began = time.monotonic()
    built = example.dot("build", "prod@main", "-s", "+stg_customers", env=env)
    waited = time.monotonic() - began
    a.join(timeout=30)
    assert built.returncode == 0, built.stderr
    assert f"the build of prod@main is held by host {HOST} (process {os.getpid()}" in built.stderr
    assert waited >= 4.0
    # The build host B made shows on host A, with its output, from the shared history.
    shown = example.dot(
        "logs", "last", "--json", env={**env, "DATUM_HOME": str(tmp_path / "host-a")}
    )
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert (record["status"], record["spec"], record["command"][0]) == (
        "SUCCESS",
        "prod@main",
        "build",
    )
    assert record["run_dir"].startswith(str(tmp_path / "host-b"))
    assert any("stg_customers" in line for line in record["output"])
    assert record["counts"]["models"] == 1
    assert record["counts"]["seeds"] == 1

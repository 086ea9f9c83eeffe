"""The run history in PostgreSQL: two `$DATUM_HOME`s standing for two hosts share one database.

Runs recorded through one home are read, shown and followed through the other; many writers at
once lose and double nothing; migrations, a newer schema, an unreachable database and a password
in config.yaml are each said plainly.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datum_dot.errors import ConfigError, HistoryError
from datum_dot.history import RunEnd, RunRecorder, RunStart, RunStore
from datum_dot.history.pgschema import MIGRATIONS
from datum_dot.home.dburl import DatabaseUrl, database_url
from datum_dot.preflight.model import Status
from datum_dot.preflight.store import check_history_store
from datum_dot.runs.run import RunStatus
from tests.helpers.example import BIN
from tests.helpers.postgres import PostgresServer, free_port

pytestmark = pytest.mark.postgres


def new_database(server: PostgresServer) -> str:
    """A fresh database on the test cluster; its URL, password included (as the environment
    may give it)."""
    name = "hist_" + secrets.token_hex(4)
    admin = server.connect("postgres")
    try:
        with admin.cursor() as cur:
            cur.execute(f"create database {name}")
    finally:
        admin.close()
    return f"postgresql://{server.user}:{server.password}@{server.host}:{server.port}/{name}"


@pytest.fixture(scope="module")
def shared_url(postgres_server: PostgresServer) -> str:
    """One database the module's two homes share."""
    return new_database(postgres_server)


@pytest.fixture
def homes(tmp_path: Path, shared_url: str) -> tuple[RunStore, RunStore]:
    """Host A's and host B's run history, in the shared database."""
    url = DatabaseUrl(shared_url, "test")
    return RunStore(tmp_path / "a", database=url), RunStore(tmp_path / "b", database=url)


def dot(
    *args: str, home: Path, url: str | None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATUM_HOME": str(home)}
    env.pop("DATUM_DATABASE_URL", None)
    if url is not None:
        env["DATUM_DATABASE_URL"] = url
    return subprocess.run(
        [str(BIN / "dot"), *args], env=env, capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip


def start(project: str = "shop") -> RunStart:
    return RunStart(project=project, spec="prod", env="prod", command=("build",))


def test_host_b_shows_and_follows_a_run_of_host_a(
    homes: tuple[RunStore, RunStore], shared_url: str
) -> None:
    a, b = homes
    recorder = RunRecorder(a, start())
    run_id = recorder.begin()
    assert run_id is not None
    recorder.line("stdout", "1 of 2 START sql table model orders")
    follower = subprocess.Popen(
        [str(BIN / "dot"), "logs", run_id[-8:], "-f"],
        env={**os.environ, "DATUM_HOME": str(b.home), "DATUM_DATABASE_URL": shared_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    recorder.line("stderr", "a warning on stderr")
    recorder.line("stdout", "2 of 2 OK created sql table model orders")
    time.sleep(1.0)
    recorder.finish(RunEnd(status=RunStatus.SUCCESS, exit_code=0))
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    followed = out.splitlines()
    assert [line.split("] ", 1)[-1] for line in followed[1:-1]] == [
        "1 of 2 START sql table model orders",
        "a warning on stderr",
        "2 of 2 OK created sql table model orders",
    ]
    assert run_id in followed[0]
    assert "RUNNING" in followed[0]
    assert followed[-1].endswith("(exit 0)")

    seen = b.get(run_id[-8:])  # host B knows the run by its short id
    assert seen.status is RunStatus.SUCCESS
    assert seen.run_dir == a.run_dir(run_id)  # the folder on the host that ran it
    assert seen.start.hostname == os.uname().nodename
    shown = dot("logs", run_id, home=b.home, url=shared_url)
    assert shown.returncode == 0, shown.stderr
    assert "2 of 2 OK created sql table model orders" in shown.stdout
    raw = dot("logs", run_id, "--raw", home=b.home, url=shared_url)
    assert raw.stdout.splitlines() == [
        "1 of 2 START sql table model orders",
        "a warning on stderr",
        "2 of 2 OK created sql table model orders",
    ]
    listed = dot("logs", "--last", "20", home=b.home, url=shared_url)
    assert run_id[-8:] in listed.stdout
    # Host B's own SQLite history (no URL) knows nothing of it.
    alone = dot("logs", run_id, home=b.home, url=None)
    assert alone.returncode == 20
    assert "no run with id" in alone.stderr


def _writer(url: str, home: str, count: int, queue: multiprocessing.Queue[list[str]]) -> None:
    store = RunStore(Path(home), database=DatabaseUrl(url, "test"))
    ids: list[str] = []
    for n in range(count):
        recorder = RunRecorder(store, start("volume"))
        run_id = recorder.begin()
        assert run_id is not None
        recorder.line("stdout", f"run {n}")
        recorder.finish(RunEnd(status=RunStatus.SUCCESS, exit_code=0))
        ids.append(run_id)
    queue.put(ids)


def test_eight_writers_on_two_hosts_lose_and_double_nothing(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = new_database(postgres_server)
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[list[str]] = context.Queue()
    writers = [
        context.Process(target=_writer, args=(url, str(tmp_path / f"host{n % 2}"), 200, queue))
        for n in range(8)
    ]
    began = time.monotonic()
    for writer in writers:
        writer.start()
    written = [run_id for _ in writers for run_id in queue.get(timeout=300)]
    for writer in writers:
        writer.join(timeout=60)
        assert writer.exitcode == 0
    elapsed = time.monotonic() - began
    store = RunStore(tmp_path / "reader", database=DatabaseUrl(url, "test"))
    runs = store.query(last=None, project="volume")
    assert len(written) == 1600
    assert len(set(written)) == 1600
    assert sorted(run.run_id for run in runs) == sorted(written)
    assert {run.status for run in runs} == {RunStatus.SUCCESS}
    assert _scalar(url, "select count(*) from datum_dot.run_lines") == 1600
    print(f"\n1,600 runs by 8 processes recorded in {elapsed:.1f}s", file=sys.stderr)


def test_a_run_on_a_silent_host_is_aborted_and_a_live_one_is_not(
    homes: tuple[RunStore, RunStore],
) -> None:
    a, b = homes
    gone = a.begin(dataclasses_replace(start("lease"), hostname="host-gone"))
    alive = a.begin(dataclasses_replace(start("lease"), hostname="host-alive"))
    # host-gone's writer stopped renewing a while ago; host-alive's lease runs on
    _set_lease(b, gone, "now() - interval '1 second'")
    _set_lease(b, alive, "now() + interval '1 hour'")
    statuses = {run.run_id: run for run in b.query(last=None, project="lease")}
    assert statuses[gone].status is RunStatus.ABORTED
    assert "stopped renewing its lease" in (statuses[gone].error_message or "")
    assert "host-gone" in (statuses[gone].suggestion or "")
    assert statuses[alive].status is RunStatus.RUNNING


def test_a_running_recorder_keeps_its_lease(
    homes: tuple[RunStore, RunStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = homes
    monkeypatch.setenv("DATUM_HISTORY_LEASE_SECONDS", "1")
    recorder = RunRecorder(a, dataclasses_replace(start("renewed"), hostname="host-busy"))
    run_id = recorder.begin()
    assert run_id is not None
    time.sleep(3.0)  # three leases long: renewed meanwhile, so never expired
    assert b.get(run_id).status is RunStatus.RUNNING
    recorder.finish(RunEnd(status=RunStatus.SUCCESS, exit_code=0))
    assert b.get(run_id).status is RunStatus.SUCCESS


def test_two_hosts_starting_at_once_migrate_once(postgres_server: PostgresServer) -> None:
    url = new_database(postgres_server)
    code = (
        "import sys; from pathlib import Path; from datum_dot.history import RunStore;"
        "from datum_dot.home.dburl import DatabaseUrl;"
        "print(len(RunStore(Path(sys.argv[1]), database=DatabaseUrl(sys.argv[2], 't')).query()))"
    )
    starters = [
        subprocess.Popen(
            [sys.executable, "-c", code, f"/tmp/unused-{n}", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    results = [p.communicate(timeout=60) for p in starters]
    assert [p.returncode for p in starters] == [0] * 4, results
    assert [out.strip() for out, _ in results] == ["0"] * 4
    assert _scalar(url, "select count(*) from datum_dot.schema_version") == 1
    assert _scalar(url, "select version from datum_dot.schema_version") == len(MIGRATIONS)


def test_a_newer_schema_is_refused_with_both_versions(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = new_database(postgres_server)
    RunStore(tmp_path, database=DatabaseUrl(url, "test")).query()
    _execute(url, "update datum_dot.schema_version set version = 99")
    shown = dot("logs", home=tmp_path / "other", url=url)
    assert shown.returncode == 20
    assert f"schema version 99, newer than this datum-dot knows ({len(MIGRATIONS)})" in shown.stderr
    assert "Traceback" not in shown.stderr


def test_an_unreachable_database_is_bad_input_naming_host_and_port(tmp_path: Path) -> None:
    port = free_port()
    shown = dot("logs", home=tmp_path, url=f"postgresql://dot@127.0.0.1:{port}/datum")
    assert shown.returncode == 20
    first = shown.stderr.splitlines()[0]
    assert f"cannot reach the run history database at 127.0.0.1:{port}/datum" in first
    assert "Traceback" not in shown.stderr


def test_a_password_never_goes_into_config_yaml(tmp_path: Path, shared_url: str) -> None:
    home = tmp_path / "home"
    refused = dot(
        "config", "set", "database.url", "postgresql://dot:s3cret@db:5432/datum",
        home=home, url=None,
    )  # fmt: skip
    assert refused.returncode == 20
    assert "holds a password" in refused.stderr
    assert "PGPASSWORD" in refused.stderr
    assert "s3cret" not in refused.stderr + refused.stdout
    assert not (home / "config.yaml").exists() or "s3cret" not in (home / "config.yaml").read_text()

    saved = dot(
        "config", "set", "database.url", "postgresql://dot@db:5432/datum", home=home, url=None
    )
    assert saved.returncode == 0, saved.stderr
    assert database_url(home, {}) == DatabaseUrl(
        "postgresql://dot@db:5432/datum", str(home / "config.yaml")
    )
    # The environment wins over config.yaml.
    assert database_url(home, {"DATUM_DATABASE_URL": shared_url}) == DatabaseUrl(
        shared_url, "DATUM_DATABASE_URL"
    )
    cleared = dot("config", "set", "database.url", "", home=home, url=None)
    assert cleared.returncode == 0, cleared.stderr
    assert database_url(home, {}) is None

    # A config.yaml edited by hand to hold one is refused too.
    (home / "config.yaml").write_text(
        "version: 1\ndatabase:\n  url: postgresql://dot:s3cret@db/datum\n"
    )
    with pytest.raises(ConfigError, match="holds a password"):
        database_url(home, {})
    listed = dot("logs", home=home, url=None)
    assert listed.returncode == 20
    assert "s3cret" not in listed.stderr


def test_a_url_that_is_not_postgresql_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="not a PostgreSQL URL"):
        database_url(tmp_path, {"DATUM_DATABASE_URL": "mysql://db/datum"})


def test_sqlite_stays_the_default_and_psycopg_stays_unloaded(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from datum_dot.history import RunStore;"
        "RunStore(Path(sys.argv[1])).query(); print('psycopg' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "DATUM_DATABASE_URL"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "False"


# --- helpers -------------------------------------------------------------------------------------


def dataclasses_replace(run_start: RunStart, **changes: str) -> RunStart:
    return dataclasses.replace(run_start, **changes)  # type: ignore[arg-type]


def _set_lease(store: RunStore, run_id: str, expression: str) -> None:
    assert store._pg is not None
    statement = f"update datum_dot.runs set lease_until = {expression} where run_id = '{run_id}'"  # noqa: S608
    _execute(store._pg.url.conninfo, statement)  # the test reaches into the database on purpose


def _execute(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)  # type: ignore[arg-type]


def _scalar(url: str, statement: str) -> object:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(statement).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0]


def test_validate_checks_the_database(
    postgres_server: PostgresServer, shared_url: str, tmp_path: Path
) -> None:
    RunStore(tmp_path, database=DatabaseUrl(shared_url, "test")).query()  # migrated
    ready = check_history_store(tmp_path, {"DATUM_DATABASE_URL": shared_url})
    assert ready.status is Status.OK
    assert f"schema version {len(MIGRATIONS)}, advisory locks work" in ready.detail
    assert postgres_server.password not in ready.detail

    fresh_url = new_database(postgres_server)
    fresh = check_history_store(tmp_path, {"DATUM_DATABASE_URL": fresh_url})
    assert fresh.status is Status.WARN
    assert "the next command migrates it" in fresh.detail
    assert _scalar(fresh_url, "select to_regclass('datum_dot.runs') is null") is True

    port = free_port()
    away = check_history_store(
        tmp_path, {"DATUM_DATABASE_URL": f"postgresql://dot@127.0.0.1:{port}/datum"}
    )
    assert away.status is Status.FAIL
    assert f"127.0.0.1:{port}" in away.detail

    sqlite = check_history_store(tmp_path, {})
    assert sqlite.status is Status.OK
    assert sqlite.detail == f"SQLite: {tmp_path / 'history.sqlite'}"


def test_a_run_id_is_recorded_once_across_hosts(homes: tuple[RunStore, RunStore]) -> None:
    a, b = homes
    run_id = a.begin(start("once"))
    with pytest.raises(HistoryError, match="already in the history: a run is recorded once"):
        b.begin(start("once"), run_id=run_id)
    assert not b.run_dir(run_id).exists()  # host B's folder for it is not left behind


def test_a_run_of_another_host_names_where_its_files_are(
    homes: tuple[RunStore, RunStore], shared_url: str
) -> None:
    a, b = homes
    run_id = a.begin(dataclasses_replace(start("elsewhere"), hostname="pod-7f9c"))
    a.finish(run_id, RunEnd(status=RunStatus.SUCCESS, exit_code=0))
    shutil.rmtree(a.run_dir(run_id))  # the pod is gone, and its disk with it
    shown = dot("logs", run_id, home=b.home, url=shared_url)
    assert shown.returncode == 0, shown.stderr
    assert f"folder  {a.run_dir(run_id)} on pod-7f9c" in shown.stdout


def test_which_on_another_host_leaves_the_run_for_its_own_host_to_index(
    homes: tuple[RunStore, RunStore], tmp_path: Path
) -> None:
    a, b = homes
    made = tmp_path / "made"
    made.mkdir()
    node = {"name": "orders_elsewhere", "relation_name": '"w"."analytics"."orders_elsewhere"'}
    (made / "manifest.json").write_text(json.dumps({"nodes": {"model.shop.orders_x": node}}))
    results = {"results": [{"unique_id": "model.shop.orders_x", "status": "success"}]}
    (made / "run_results.json").write_text(json.dumps(results))
    run_id = a.begin(start())
    a.finish(run_id, RunEnd(RunStatus.SUCCESS, 0, run_results=made / "run_results.json"))
    # host B cannot read the run's files, so it finds nothing and must not mark the run read
    assert b.last_built("orders_elsewhere") is None
    found = a.last_built("orders_elsewhere")
    assert found is not None
    assert found[0].run_id == run_id
    assert b.last_built("orders_elsewhere") is not None  # now in the shared index

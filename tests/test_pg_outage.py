"""The PostgreSQL history going away while a run runs: the run goes on, nothing is lost.

A cluster of this module's own is stopped and started again on its port while a run is being
recorded: lines printed meanwhile reach the database, in order, once it is back; a run that ends
while it is away is spooled to local disk and sent by the next command that opens the history.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from datum_dot.history import RunEnd, RunRecorder, RunStart, RunStore
from datum_dot.history.pgspool import SPOOL_DIR
from datum_dot.home.dburl import DatabaseUrl
from datum_dot.runs.run import RunStatus
from tests.helpers.postgres import OS_USER, PostgresServer, running_server

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def own_server() -> Iterator[PostgresServer]:
    """A cluster only this module stops and starts."""
    with running_server() as server:
        yield server


def pg_ctl(server: PostgresServer, *args: str) -> None:
    run_as = ["runuser", "-u", OS_USER, "--"] if os.geteuid() == 0 else []
    root = server.data_dir.parent
    subprocess.run(
        [*run_as, str(server.bin_dir / "pg_ctl"), "-D", str(server.data_dir), *args],
        cwd=root, check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def stop(server: PostgresServer) -> None:
    pg_ctl(server, "-m", "fast", "-w", "stop")


def start(server: PostgresServer) -> None:
    options = (
        f"-c listen_addresses=127.0.0.1 -p {server.port} "
        f"-c unix_socket_directories={server.data_dir.parent} -c fsync=off"
    )
    log = server.data_dir.parent / "server.log"
    pg_ctl(server, "-l", str(log), "-o", options, "-w", "-t", "60", "start")


def url_of(server: PostgresServer) -> DatabaseUrl:
    return DatabaseUrl(
        f"postgresql://{server.user}:{server.password}@{server.host}:{server.port}/"
        f"{server.database}",
        "test",
    )


def wait_for(check: object, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_the_database_going_away_mid_run_loses_no_line_and_no_record(
    own_server: PostgresServer, tmp_path: Path
) -> None:
    writer = RunStore(tmp_path / "host-a", database=url_of(own_server))
    reader = RunStore(tmp_path / "host-b", database=url_of(own_server))

    # 1. Away and back while the run runs: the lines printed meanwhile arrive, in order.
    recorder = RunRecorder(writer, RunStart(project="shop", spec="prod", command=("build",)))
    run_id = recorder.begin()
    assert run_id is not None
    recorder.line("stdout", "before the outage")
    wait_for(lambda: len(reader.output_lines(run_id)) == 1)
    stop(own_server)
    for n in range(50):
        recorder.line("stdout", f"during the outage {n}")
    time.sleep(1.0)  # the shipper tries, and fails, meanwhile
    start(own_server)
    recorder.line("stdout", "after the outage")
    recorder.finish(RunEnd(status=RunStatus.SUCCESS, exit_code=0))
    run = reader.get(run_id)
    assert run.status is RunStatus.SUCCESS
    assert [line.split("] ", 1)[1] for line in reader.output_lines(run_id)] == [
        "before the outage",
        *(f"during the outage {n}" for n in range(50)),
        "after the outage",
    ]

    # 2. Away when the run ends: the run still ends normally, its end waits on local disk.
    recorder = RunRecorder(writer, RunStart(project="shop", spec="prod", command=("run",)))
    second = recorder.begin()
    assert second is not None
    recorder.line("stdout", "first line")
    target = tmp_path / "target"  # dbt's artifacts, kept in the database (--artifacts-to-db)
    target.mkdir()
    (target / "manifest.json").write_text('{"nodes": {}}')
    (target / "run_results.json").write_text('{"results": []}')
    stop(own_server)
    recorder.line("stdout", "printed while the database is away")
    recorder.finish(
        RunEnd(
            status=RunStatus.FAILED,
            exit_code=30,
            error_message="a model failed",
            run_results=target / "run_results.json",
            artifacts_to_db=True,
        )
    )
    assert recorder.unsaved() is None  # nothing lost: it is spooled
    spooled = list((writer.home / SPOOL_DIR).iterdir())
    assert [p.name for p in spooled] == [f"{second}.jsonl"]
    start(own_server)
    # The next command on host A sends it; host B then sees the whole run.
    newest = RunStore(writer.home, database=url_of(own_server)).query(last=1)
    assert [r.run_id for r in newest] == [second]
    assert not list((writer.home / SPOOL_DIR).iterdir())
    ended = reader.get(second)
    assert ended.status is RunStatus.FAILED
    assert ended.exit_code == 30
    assert ended.error_message == "a model failed"
    assert [line.split("] ", 1)[1] for line in reader.output_lines(second)] == [
        "first line",
        "printed while the database is away",
    ]
    # Its artifacts reached the database with its end, from its folder on host A.
    assert ended.artifacts["manifest.json"].in_db
    shutil.rmtree(writer.run_dir(second))
    assert reader.artifact(ended, "manifest.json") == b'{"nodes": {}}'
    shutil.rmtree(tmp_path, ignore_errors=True)

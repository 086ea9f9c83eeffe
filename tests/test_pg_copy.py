"""`dot history copy`: SQLite to PostgreSQL and back, without loss, twice without doubling."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from datum_dot.history import RunEnd, RunRecorder, RunStart, RunStore
from datum_dot.history.copy import copy_history
from datum_dot.history.files import NodeCounts
from datum_dot.home.dburl import DatabaseUrl
from datum_dot.runs.run import RunStatus
from tests.helpers.example import BIN
from tests.helpers.postgres import PostgresServer
from tests.test_pg_history import new_database

pytestmark = pytest.mark.postgres


def record(store: RunStore, n: int, *, finish: bool = True) -> str:
    recorder = RunRecorder(
        store,
        RunStart(
            project="shop",
            spec=f"prod@v{n}",
            env="prod",
            ref=f"v{n}",
            commit=f"{n:040x}",
            command=("build", "--select", f"model_{n}"),
            argv=("build", "--select", f"model_{n}", "--target", "prod"),
            trigger="cron" if n % 2 else "manual",
            schedule="nightly" if n % 2 else None,
            state={"defer": {"spec": "prod", "source": "history", "run_id": "x"}}
            if n % 3
            else None,
        ),
    )
    run_id = recorder.begin()
    assert run_id is not None
    recorder.line("stdout", f"1 of 1 START model_{n}")
    recorder.line("stderr", f"a warning about model_{n}")
    if finish:
        ok = n % 4 != 0
        recorder.finish(
            RunEnd(
                status=RunStatus.SUCCESS if ok else RunStatus.FAILED,
                exit_code=0 if ok else 30,
                dbt_exit_code=0 if ok else 1,
                error_class=None if ok else "DbtModelError",
                error_message=None if ok else f"model_{n} failed",
                error_node=None if ok else f"model.shop.model_{n}",
                suggestion=None if ok else "look at the compiled SQL",
                counts=NodeCounts(models=1, tests=n, failures=0 if ok else 1),
            )
        )
    else:
        recorder.close()
    return run_id


def comparable(store: RunStore) -> dict[str, dict[str, object]]:
    runs = {}
    for run in store.query(last=None):
        data = run.to_json()
        data.pop("run_dir")
        data["output"] = (
            list(run.lines(0)) if run.lines else (run.files()["output"].read_text().splitlines())
        )
        runs[run.run_id] = data
    return runs


def test_copy_to_postgresql_and_back_is_lossless_and_idempotent(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = DatabaseUrl(new_database(postgres_server), "test")
    sqlite = RunStore(tmp_path / "sqlite-home", database=None)
    ids = [record(sqlite, n) for n in range(1, 13)]
    running = record(sqlite, 13, finish=False)
    postgres = RunStore(tmp_path / "pg-home", database=url)

    seen: list[tuple[int, int]] = []
    first = copy_history(sqlite, postgres, progress=lambda done, total: seen.append((done, total)))
    assert first.runs == 13
    assert first.lines == 26
    assert seen[0] == (0, 13)
    assert seen[-1] == (13, 13)
    assert comparable(postgres) == comparable(sqlite)
    assert postgres.get(ids[0]).run_dir == sqlite.run_dir(ids[0])  # the folder on its host

    # The running run finishes; copying again updates it and doubles nothing.
    RunStore(tmp_path / "sqlite-home", database=None).finish(
        running, RunEnd(status=RunStatus.CANCELLED, exit_code=50)
    )
    again = copy_history(sqlite, postgres)
    assert again.runs == 13
    assert postgres.get(running).status is RunStatus.CANCELLED
    assert len(postgres.query(last=None)) == 13
    assert comparable(postgres) == comparable(sqlite)
    count = postgres_count(url.conninfo)
    assert count == 26

    # And back, into another host's SQLite: the same records, a folder for each run.
    back = RunStore(tmp_path / "other-home", database=None)
    result = copy_history(postgres, back)
    assert (result.runs, result.folders) == (13, 13)
    assert comparable(back) == comparable(sqlite)
    copied = back.get(ids[3])
    assert (copied.run_dir / "stderr.log").read_text() == "a warning about model_4\n"
    assert copy_history(postgres, back).folders == 0


def postgres_count(conninfo: str) -> int:
    import psycopg

    with psycopg.connect(conninfo) as conn:
        row = conn.execute("select count(*) from datum_dot.run_lines").fetchone()
    assert row is not None
    return int(row[0])


def test_the_command_copies_and_says_what_it_did(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = new_database(postgres_server)
    home = tmp_path / "home"
    record(RunStore(home, database=None), 1)
    env = {k: v for k, v in os.environ.items() if k != "DATUM_DATABASE_URL"}
    env["DATUM_HOME"] = str(home)

    def dot(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "dot"), *args], env={**env, **extra}, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip

    copied = dot("history", "copy", "--to", url, "--json")
    assert copied.returncode == 0, copied.stderr
    data = json.loads(copied.stdout)
    assert (data["runs"], data["lines"]) == (1, 2)
    assert data["from"] == str(home / "history.sqlite")
    assert postgres_server.password not in copied.stdout
    text = dot("history", "copy", "--to", url)
    assert text.stdout.startswith("copied 1 run, 2 output lines from ")

    same = dot("history", "copy", "--to", "sqlite")
    assert same.returncode == 20
    assert "already in SQLite" in same.stderr
    wrong = dot("history", "copy", "--to", "mysql://db/x")
    assert wrong.returncode == 20
    assert "neither a PostgreSQL URL nor `sqlite`" in wrong.stderr

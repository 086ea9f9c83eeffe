"""`dot logs` against a history of 100,000 runs: wall time of the whole process, median of N.

The history is made by RunStore (schema, WAL, one real run), then filled with a batch insert in
the same schema; the newest 1,000 runs get real folders (metadata.json and logs). A few RUNNING
records from another host are included, so every read does its stale-record check. The reads are
the installed `dot logs`, as a user runs it.

With `--postgres`, the same history is made in PostgreSQL (the database `DATUM_DATABASE_URL`
names, else a throwaway cluster started for the run, as the tests start one), the RUNNING records
from another host hold live leases, and the newest 1,000 runs have their output lines in the
database; `dot logs` reads it there. Then the cost of recording one run (begin, 20 output lines,
finish, through `RunRecorder`) is measured on SQLite and on PostgreSQL.

Run: .venv/bin/python bench/history.py [N] [RECORDS] [--postgres]
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import BIN, ROOT, environment, machine, median, run

from datum_dot.history import RunEnd, RunRecorder, RunStart, RunStore
from datum_dot.history.database import COUNT_COLUMNS, END_COLUMNS, START_COLUMNS
from datum_dot.home.dburl import DatabaseUrl
from datum_dot.runs.run import RunStatus

TARGET_SECONDS = 0.3
STATUSES = [("SUCCESS", 86), ("FAILED", 10), ("TIMEOUT", 2), ("CANCELLED", 1), ("ABORTED", 1)]
ENVS = ["prod", "prod", "prod", "dev", "ci"]


def fill(home: Path, records: int, url: DatabaseUrl | None = None) -> None:
    """Make a history of `records` runs under `home` (or in PostgreSQL at `url`), the newest
    1,000 with their folders (and, in PostgreSQL, their output lines)."""
    store = RunStore(home, database=url)
    first = store.begin(RunStart(project="shop", spec="prod@main", command=("build",)))
    store.finish(first, RunEnd(status=RunStatus.SUCCESS, exit_code=0))
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(minutes=10 * records)
    statuses = [s for s, weight in STATUSES for _ in range(weight)]
    rows = []
    for n in range(records - 1):
        started = start + timedelta(minutes=10 * n, seconds=rng.randint(0, 59))
        status = "RUNNING" if n >= records - 4 else rng.choice(statuses)
        env = rng.choice(ENVS)
        seconds = rng.uniform(5, 900)
        finished = None if status == "RUNNING" else started + timedelta(seconds=seconds)
        rows.append(
            {
                "run_id": f"shop-{started:%Y%m%dT%H%M%SZ}-{rng.getrandbits(32):08x}",
                "project": "shop",
                "spec": f"{env}@main",
                "env": env,
                "ref": "main",
                "commit_sha": f"{rng.getrandbits(160):040x}",
                "command": '["build"]',
                "argv": json.dumps(["build", "--target", env, "--threads", "4"]),
                "runtime": "local",
                "trigger": rng.choice(["cron", "cron", "webhook", "manual"]),
                "hostname": "another-host",
                "pid": rng.randint(1000, 60000),
                "boot_id": "b" * 36,
                "start_ticks": rng.randint(1, 10**9),
                "started_at": started.isoformat(timespec="microseconds"),
                "status": status,
                "finished_at": finished.isoformat(timespec="microseconds") if finished else None,
                "duration_seconds": None if finished is None else seconds,
                "exit_code": None if finished is None else (0 if status == "SUCCESS" else 30),
                "dbt_exit_code": None if finished is None else (0 if status == "SUCCESS" else 1),
                "error_class": "database" if status == "FAILED" else None,
                "error_message": "relation does not exist" if status == "FAILED" else None,
                "suggestion": "check the source" if status == "FAILED" else None,
                "error_node": "model.shop.orders" if status == "FAILED" else None,
                "schedule": None,
                **{c: rng.randint(0, 40) for c in COUNT_COLUMNS},
            }
        )
    columns = [*START_COLUMNS, *END_COLUMNS]
    for row in rows:  # columns the rows above leave out (state, artifacts, warm) are NULL
        for column in columns:
            row.setdefault(column, None)
    if url is not None:
        _fill_postgres(url, columns, rows)
    else:
        sql = f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"  # noqa: S608 - constant column names
        conn = sqlite3.connect(store.path)
        with conn:
            conn.executemany(sql, rows)
        conn.execute("ANALYZE")
        conn.close()
    for row in rows[-1000:]:
        folder = store.runs_dir / row["run_id"]
        folder.mkdir()
        (folder / "metadata.json").write_text(json.dumps(row))
        for name in ("output.log", "stdout.log", "stderr.log"):
            (folder / name).write_text("[06:00:00] Running with dbt=1.9.0\n")


def _fill_postgres(url: DatabaseUrl, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """Insert the rows with COPY; another host's RUNNING records hold live leases."""
    import psycopg

    names = [*dict.fromkeys(columns)]
    with psycopg.connect(url.conninfo, autocommit=True) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY datum_dot.runs ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in names])
        cur.execute(
            "UPDATE datum_dot.runs SET lease_until = now() + interval '1 day'"
            " WHERE status = 'RUNNING'"
        )
        with cur.copy("COPY datum_dot.run_lines (run_id, seq, stream, line) FROM STDIN") as copy:
            for row in rows[-1000:]:
                copy.write_row([row["run_id"], 0, "stdout", "[06:00:00] Running with dbt=1.9.0"])
        cur.execute("ANALYZE datum_dot.runs")


@contextlib.contextmanager
def _postgres() -> Iterator[DatabaseUrl]:
    """The database `DATUM_DATABASE_URL` names, else a throwaway cluster for this run."""
    given = os.environ.get("DATUM_DATABASE_URL")
    if given:
        yield DatabaseUrl(given, "DATUM_DATABASE_URL")
        return
    sys.path.insert(0, str(ROOT))
    from tests.helpers.postgres import running_server

    with running_server() as server:
        yield DatabaseUrl(
            f"postgresql://{server.user}:{server.password}@{server.host}:{server.port}/"
            f"{server.database}",
            "a throwaway cluster",
        )


def recording_cost(home: Path, url: DatabaseUrl | None, runs: int = 200) -> list[float]:
    """Seconds to record each of `runs` runs: begin, 20 output lines, finish."""
    store = RunStore(home, database=url)
    times = []
    for n in range(runs):
        began = time.perf_counter()
        recorder = RunRecorder(store, RunStart(project="cost", spec="prod", command=("build",)))
        recorder.begin()
        for line in range(20):
            recorder.line("stdout", f"{line} of 20 OK created sql table model m{n}_{line}")
        recorder.finish(RunEnd(status=RunStatus.SUCCESS, exit_code=0))
        times.append(time.perf_counter() - began)
    return times


def main() -> None:
    """Fill, then print the medians and whether each meets the target."""
    args = [a for a in sys.argv[1:] if a != "--postgres"]
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(_postgres()) if "--postgres" in sys.argv else None
        _main(args, url)


def _main(args: list[str], url: DatabaseUrl | None) -> None:
    n = int(args[0]) if args else 11
    records = int(args[1]) if len(args) > 1 else 100_000
    base = Path(tempfile.mkdtemp(prefix="dot-bench-history-"))
    env = environment(base)
    if url is not None:
        env["DATUM_DATABASE_URL"] = url.conninfo
    home = Path(env["DATUM_HOME"])
    began = time.perf_counter()
    fill(home, records, url)
    where = home if url is None else f"PostgreSQL at {url.where()}"
    print(f"filled {records:,} records in {time.perf_counter() - began:.1f}s ({where})")
    dot = str(BIN / "dot")
    failed = False
    for argv in (
        [dot, "--help"],  # for scale: start-up alone
        [dot, "logs", "--last", "20"],
        [dot, "logs", "--status", "FAILED", "--last", "20"],
        [dot, "logs", "--env", "ci", "--since", "30d", "--last", "20"],
        [dot, "logs", "--json", "--last", "20"],
    ):
        run(argv, cwd=base, env=env)  # warm the page cache and the bytecode
        times = [run(argv, cwd=base, env=env) for _ in range(n)]
        took = median(times)
        verdict = "ok" if took < TARGET_SECONDS else "OVER TARGET"
        failed |= took >= TARGET_SECONDS and argv[2:] in (
            ["--last", "20"],
            ["--status", "FAILED", "--last", "20"],
        )
        label = " ".join(["dot", *argv[1:]])
        print(
            f"{label:<52} median {took * 1000:6.1f} ms  max {max(times) * 1000:6.1f} ms  (n={n}) {verdict}"
        )
    if url is not None:
        for label, database in (("SQLite", None), ("PostgreSQL", url)):
            costs = recording_cost(base / f"cost-{label}", database)
            print(
                f"recording one run (begin, 20 lines, finish) on {label:<10}: median "
                f"{statistics.median(costs) * 1000:6.2f} ms  p95 "
                f"{sorted(costs)[int(len(costs) * 0.95)] * 1000:6.2f} ms  (n={len(costs)})"
            )
    print(machine())
    if failed:
        raise SystemExit(f"a timed command took {TARGET_SECONDS}s or more")


if __name__ == "__main__":
    main()

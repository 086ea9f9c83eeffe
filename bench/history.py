"""`dot logs` against a history of 100,000 runs: wall time of the whole process, median of N.

The history is made by RunStore (schema, WAL, one real run), then filled with a batch insert in
the same schema; the newest 1,000 runs get real folders (metadata.json and logs). A few RUNNING
records from another host are included, so every read does its stale-record check. The reads are
the installed `dot logs`, as a user runs it.

Run: .venv/bin/python bench/history.py [N] [RECORDS]
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import BIN, environment, machine, median, run

from datum_dot.history import RunEnd, RunStart, RunStore
from datum_dot.history.database import COUNT_COLUMNS, END_COLUMNS, START_COLUMNS
from datum_dot.runs.run import RunStatus

TARGET_SECONDS = 0.3
STATUSES = [("SUCCESS", 86), ("FAILED", 10), ("TIMEOUT", 2), ("CANCELLED", 1), ("ABORTED", 1)]
ENVS = ["prod", "prod", "prod", "dev", "ci"]


def fill(home: Path, records: int) -> None:
    """Make a history of `records` runs under `home`, the newest 1,000 with their folders."""
    store = RunStore(home)
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


def main() -> None:
    """Fill, then print the medians and whether each meets the target."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 11
    records = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    base = Path(tempfile.mkdtemp(prefix="dot-bench-history-"))
    env = environment(base)
    home = Path(env["DATUM_HOME"])
    began = time.perf_counter()
    fill(home, records)
    print(f"filled {records:,} records in {time.perf_counter() - began:.1f}s ({home})")
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
    print(machine())
    if failed:
        raise SystemExit(f"a timed command took {TARGET_SECONDS}s or more")


if __name__ == "__main__":
    main()

"""The SQLite side of the run history: schema, migrations, connections, rows <-> records.

Each unit of work opens its own connection (`Database.connect`), the way `sqlitefile` opens
every SQLite file of the tool: WAL, a busy timeout, foreign keys on, the schema checked on every
connection and migrated (under a file lock, so a fresh file is created once) when behind, every
write transaction `BEGIN IMMEDIATE` (`write`).

Timestamps are UTC ISO-8601 of fixed width (`records.iso`), so text order is time order and the
indexes serve `ORDER BY started_at`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from datum_dot.errors import DotError, HistoryError, LockTimeoutError
from datum_dot.history.artifacts import artifacts_from_json
from datum_dot.history.files import NodeCounts
from datum_dot.history.records import RunStart, StoredRun, iso
from datum_dot.home import sqlitefile
from datum_dot.runs.run import RunStatus

HISTORY_FILE = "history.sqlite"
APPLICATION_ID = 0x646F7431  # "dot1": tells our file from another program's SQLite file
# Ordered; never edit one once shipped: append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY NOT NULL,
        project TEXT NOT NULL,
        spec TEXT NOT NULL,
        env TEXT,
        ref TEXT,
        commit_sha TEXT,
        command TEXT NOT NULL,
        argv TEXT NOT NULL,
        runtime TEXT NOT NULL,
        trigger TEXT NOT NULL,
        hostname TEXT NOT NULL,
        pid INTEGER NOT NULL,
        boot_id TEXT NOT NULL,
        start_ticks INTEGER,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        duration_seconds REAL,
        status TEXT NOT NULL CHECK (status IN
            ('RUNNING', 'SUCCESS', 'FAILED', 'TIMEOUT', 'CANCELLED', 'ABORTED')),
        exit_code INTEGER,
        dbt_exit_code INTEGER,
        error_class TEXT,
        error_message TEXT,
        suggestion TEXT,
        models INTEGER, seeds INTEGER, snapshots INTEGER, tests INTEGER,
        failures INTEGER, warnings INTEGER, skipped INTEGER
    );
    CREATE INDEX runs_by_started ON runs (started_at, run_id);
    CREATE INDEX runs_by_status ON runs (status, started_at, run_id);
    CREATE INDEX runs_by_env ON runs (env, started_at, run_id);
    CREATE INDEX runs_by_project ON runs (project, started_at, run_id);
    """,
    # 2: the schedule that started a run, and the SKIPPED status (an overlapping cron firing).
    # SQLite cannot change a CHECK constraint in place: the table is rebuilt, as its docs advise.
    """
    CREATE TABLE runs_v2 (
        run_id TEXT PRIMARY KEY NOT NULL,
        project TEXT NOT NULL,
        spec TEXT NOT NULL,
        env TEXT,
        ref TEXT,
        commit_sha TEXT,
        command TEXT NOT NULL,
        argv TEXT NOT NULL,
        runtime TEXT NOT NULL,
        trigger TEXT NOT NULL,
        hostname TEXT NOT NULL,
        pid INTEGER NOT NULL,
        boot_id TEXT NOT NULL,
        start_ticks INTEGER,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        duration_seconds REAL,
        status TEXT NOT NULL CHECK (status IN
            ('RUNNING', 'SUCCESS', 'FAILED', 'TIMEOUT', 'CANCELLED', 'ABORTED', 'SKIPPED')),
        exit_code INTEGER,
        dbt_exit_code INTEGER,
        error_class TEXT,
        error_message TEXT,
        suggestion TEXT,
        models INTEGER, seeds INTEGER, snapshots INTEGER, tests INTEGER,
        failures INTEGER, warnings INTEGER, skipped INTEGER,
        schedule TEXT
    );
    INSERT INTO runs_v2 SELECT *, NULL FROM runs;
    DROP TABLE runs;
    ALTER TABLE runs_v2 RENAME TO runs;
    CREATE INDEX runs_by_started ON runs (started_at, run_id);
    CREATE INDEX runs_by_status ON runs (status, started_at, run_id);
    CREATE INDEX runs_by_env ON runs (env, started_at, run_id);
    CREATE INDEX runs_by_project ON runs (project, started_at, run_id);
    CREATE INDEX runs_by_schedule ON runs (project, schedule, started_at, run_id);
    """,
    # 3: the dbt node a failed run failed on (its message is error_message).
    """
    ALTER TABLE runs ADD COLUMN error_node TEXT;
    """,
    # 4: the artifacts kept with a run (name -> sha256 and size, JSON), the state a run deferred
    # to or compared against (JSON), and the relations each run built, indexed the first time
    # `dot which` reads the run's artifacts (`relations_indexed`).
    """
    ALTER TABLE runs ADD COLUMN artifacts TEXT;
    ALTER TABLE runs ADD COLUMN state TEXT;
    ALTER TABLE runs ADD COLUMN relations_indexed INTEGER;
    CREATE TABLE built_relations (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        unique_id TEXT NOT NULL,
        relation TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        PRIMARY KEY (run_id, unique_id)
    );
    CREATE INDEX built_by_relation ON built_relations (relation);
    CREATE INDEX built_by_name ON built_relations (name);
    CREATE INDEX runs_by_env_finished ON runs (project, env, status, finished_at);
    """,
    # 5: whether a child of the warm runner ran the run (1) rather than a fresh process.
    """
    ALTER TABLE runs ADD COLUMN warm INTEGER;
    """,
    # 6: the run this one retries (a webhook job taken over after its first host stopped).
    """
    ALTER TABLE runs ADD COLUMN retry_of TEXT;
    """,
)
SCHEMA = sqlitefile.Schema(APPLICATION_ID, MIGRATIONS, lock=".history.lock")
COUNT_COLUMNS = tuple(f.name for f in dataclasses.fields(NodeCounts))
NEWEST_FIRST = "ORDER BY started_at DESC, run_id DESC"


class Database:
    """The history file: connections with the schema checked, and errors said plainly.

    Args:
        path: The SQLite file (`$DATUM_HOME/history.sqlite`).
        timeout: Seconds to wait for another process's write lock.
    """

    def __init__(self, path: Path, *, timeout: float) -> None:
        self.path = path
        self.timeout = timeout

    @contextlib.contextmanager
    def connect(self, *, create: bool) -> Iterator[sqlite3.Connection]:
        """One connection for one unit of work, with the schema checked (and migrated).

        Args:
            create: Create the folder if needed (writers); readers check the file exists first.

        Yields:
            The connection; it is closed after the block.

        Raises:
            HistoryError: The file is corrupted, another program's, newer, or unwritable.
            LockTimeoutError: Another process held the write lock longer than the timeout.
        """
        if create:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # WAL with NORMAL: a commit survives a crash of the process, not of the machine.
        with sqlitefile.connect(
            self.path, schema=SCHEMA, errors=self, timeout=self.timeout, synchronous="NORMAL"
        ) as conn:
            yield conn

    def error(self, error: sqlite3.Error) -> DotError:
        """The product error for a SQLite error met on this file."""
        name = getattr(error, "sqlite_errorname", "") or ""
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return self.locked()
        if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
            return self.unusable(f"is corrupted or not a SQLite database ({error})")
        return HistoryError(
            f"cannot use the run history {self.path}: {error}",
            f"check that {self.path.parent} is writable and the disk has room",
        )

    def foreign(self) -> HistoryError:
        """The error for another program's SQLite file in the history's place."""
        return self.unusable("is not a datum-dot run history (another program's file)")

    def newer(self, version: int) -> HistoryError:
        """The error for a history written by a newer datum-dot."""
        return HistoryError(
            f"run history {self.path} has schema version {version}, newer than this "
            f"datum-dot knows ({len(MIGRATIONS)})",
            "upgrade datum-dot: pip install -U datum-dot",
        )

    def unusable(self, what: str) -> HistoryError:
        """The error for a file that cannot be our history: says to move it away."""
        home = self.path.parent
        return HistoryError(
            f"run history {self.path} {what}",
            f"move it away with its -wal and -shm files (mkdir -p {home}/broken && mv "
            f"{self.path}* {home}/broken/); the next run starts a new history",
        )

    def locked(self) -> LockTimeoutError:
        """The error for a write lock held too long by another process."""
        return LockTimeoutError(
            f"run history {self.path} stayed locked by another process for {self.timeout:g}s",
            f"retry; see which process holds it with `fuser -v {self.path}`",
        )


START_COLUMNS = (
    "run_id", "project", "spec", "env", "ref", "commit_sha", "command", "argv", "runtime",
    "trigger", "hostname", "pid", "boot_id", "start_ticks", "started_at", "schedule", "state",
    "warm", "retry_of",
)  # fmt: skip
INSERT = (
    f"INSERT INTO runs ({', '.join(START_COLUMNS)}, status) "  # noqa: S608 - constant text
    f"VALUES ({', '.join(':' + c for c in START_COLUMNS)}, 'RUNNING')"
)
END_COLUMNS = (
    "status", "finished_at", "duration_seconds", "exit_code", "dbt_exit_code", "error_class",
    "error_message", "suggestion", "error_node", "artifacts", *COUNT_COLUMNS,
)  # fmt: skip
FINISH = (
    f"UPDATE runs SET {', '.join(f'{c} = :{c}' for c in END_COLUMNS)} "  # noqa: S608 - constant text
    "WHERE run_id = :run_id"
)
ABORT = (
    "UPDATE runs SET status = 'ABORTED', finished_at = :finished_at, "
    "duration_seconds = :duration_seconds, error_class = :error_class, "
    "error_message = :error_message, suggestion = :suggestion "
    "WHERE run_id = :run_id AND status = 'RUNNING'"
)


def start_row(run_id: str, start: RunStart) -> dict[str, object]:
    """The named parameters of `INSERT` for a run's start."""
    assert start.started_at is not None  # noqa: S101 - begin() sets it
    return {
        "run_id": run_id,
        "project": start.project,
        "spec": start.spec,
        "env": start.env,
        "ref": start.ref,
        "commit_sha": start.commit,
        "command": json.dumps(list(start.command)),
        "argv": json.dumps(list(start.argv)),
        "runtime": start.runtime,
        "trigger": str(start.trigger),
        "hostname": start.hostname,
        "pid": start.pid,
        "boot_id": start.boot_id,
        "start_ticks": start.start_ticks,
        "started_at": iso(start.started_at),
        "schedule": start.schedule,
        "state": json.dumps(dict(start.state), sort_keys=True, default=str)
        if start.state
        else None,
        "warm": 1 if start.warm else None,
        "retry_of": start.retry_of,
    }


def counts_row(counts: NodeCounts | None) -> dict[str, int | None]:
    """The count columns' parameters (all NULL when nothing was counted)."""
    if counts is None:
        return dict.fromkeys(COUNT_COLUMNS)
    return dataclasses.asdict(counts)


def to_run(row: Mapping[str, Any], runs_dir: Path) -> StoredRun:
    """The record a `SELECT * FROM runs` row holds."""

    def when(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    start = RunStart(
        project=row["project"],
        spec=row["spec"],
        command=tuple(json.loads(row["command"])),
        argv=tuple(json.loads(row["argv"])),
        env=row["env"],
        ref=row["ref"],
        commit=row["commit_sha"],
        runtime=row["runtime"],
        trigger=row["trigger"],
        hostname=row["hostname"],
        pid=row["pid"],
        boot_id=row["boot_id"],
        start_ticks=row["start_ticks"],
        started_at=when(row["started_at"]),
        schedule=row["schedule"],
        state=_json_object(row["state"]),
        warm=bool(row["warm"]),
        retry_of=row["retry_of"],
    )
    counted = row["models"] is not None
    return StoredRun(
        run_id=row["run_id"],
        start=start,
        status=RunStatus(row["status"]),
        run_dir=runs_dir / row["run_id"],
        finished_at=when(row["finished_at"]),
        duration_seconds=row["duration_seconds"],
        exit_code=row["exit_code"],
        dbt_exit_code=row["dbt_exit_code"],
        error_class=row["error_class"],
        error_message=row["error_message"],
        suggestion=row["suggestion"],
        error_node=row["error_node"],
        artifacts=artifacts_from_json(row["artifacts"]),
        counts=NodeCounts(**{c: row[c] or 0 for c in COUNT_COLUMNS}) if counted else None,
    )


def _json_object(text: str | None) -> dict[str, Any] | None:
    """A JSON object column's value (None when empty or not an object)."""
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None

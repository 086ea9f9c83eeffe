"""The webhook's durable queue: `$DATUM_HOME/webhook.sqlite` (SQLite, WAL).

A request is committed here before the client is answered 202, so an answered request survives a
crash or a restart of the server. The queue allocates each run's id when it accepts the request;
a worker hands that id to `execute()`, and the history records the run under it. `RunStore.begin`
refuses an id it already holds, so dbt is started at most once per id, whatever happens to a
queue row in a crash (adr/0006).

Rows move `queued` -> `running` (a worker claimed it) -> `done`. A worker claims the oldest queued
row whose project and environment have no running row, which serializes the runs of one
environment while other environments run in parallel. A server starting up (`recover`) looks at
rows claimed by a process that is gone: a row whose run is in the history is done (its record is
ABORTED by the history's rules); a row whose run never began is queued again.

Every write is `BEGIN IMMEDIATE` and each unit of work has its own connection (see
`history/database.py` for why), so several server processes may share one queue.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from datum_dot.history.files import utc_now
from datum_dot.history.records import hostname, iso, new_run_id
from datum_dot.home.liveness import current_boot_id, is_writer_gone, process_start_ticks
from datum_dot.home.sqlitefile import write
from datum_dot.webhook.errors import QueueError, QueueFullError
from datum_dot.webhook.jobs import (
    Enqueued,
    Job,
    JobRequest,
    JobState,
    Recovered,
    job_from_row,
    same_request,
)
from datum_dot.webhook.queuefile import QueueFile

QUEUE_FILE = "webhook.sqlite"
DEFAULT_MAX_UNFINISHED = 1000
_CLAIMABLE = """
    SELECT * FROM jobs AS q WHERE q.state = 'queued' AND NOT EXISTS (
        SELECT 1 FROM jobs AS r
        WHERE r.state = 'running' AND r.project = q.project AND r.env = q.env
    ) ORDER BY q.seq LIMIT 1
"""


class JobQueue:
    """The queue under one `$DATUM_HOME`.

    Args:
        home: The `$DATUM_HOME` folder.
        max_unfinished: Queued plus running rows at most; more is `QueueFullError`.
        timeout: Seconds to wait for another process's write lock.
        clock: Gives the current UTC time (tests inject one).
    """

    def __init__(
        self,
        home: Path,
        *,
        max_unfinished: int = DEFAULT_MAX_UNFINISHED,
        timeout: float = 30.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.path = home / QUEUE_FILE
        self.max_unfinished = max_unfinished
        self._clock = clock
        self._file = QueueFile(self.path, timeout=timeout)

    def enqueue(
        self, request: JobRequest, *, idempotency_key: str | None, fingerprint: str
    ) -> Enqueued:
        """Commit a request as queued, or find the job an earlier request with its key made.

        Args:
            request: What to run.
            idempotency_key: The client's key (unique per project), or None.
            fingerprint: A digest of the request as the client sent it: a key used again
                must come with the same one.

        Returns:
            The job, and whether it is new.

        Raises:
            IdempotencyConflictError: The key was used for a different request.
            QueueFullError: `max_unfinished` rows are queued or running.
            QueueError: The queue file is unusable.
        """
        with self._connect(durable=True) as conn, write(conn):
            return self.enqueue_in(conn, request, idempotency_key, fingerprint)

    def enqueue_in(
        self,
        conn: sqlite3.Connection,
        request: JobRequest,
        idempotency_key: str | None,
        fingerprint: str,
    ) -> Enqueued:
        """`enqueue` inside a write transaction the caller holds (the group committer's).

        Nothing is written when it raises, so one request's error spoils no other request of
        the same transaction.

        Raises:
            IdempotencyConflictError: The key was used for a different request.
            QueueFullError: `max_unfinished` rows are queued or running.
            sqlite3.Error: The database failed.
        """
        if idempotency_key is not None:
            row = conn.execute(
                "SELECT * FROM jobs WHERE project = ? AND idempotency_key = ?",
                (request.project, idempotency_key),
            ).fetchone()
            if row is not None:
                return Enqueued(same_request(job_from_row(row), fingerprint), created=False)
        unfinished = conn.execute(
            "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')"
        ).fetchone()[0]
        if unfinished >= self.max_unfinished:
            raise QueueFullError(
                f"the queue is full: {unfinished} runs are queued or running",
                "retry after the time in the Retry-After header",
            )
        now = self._clock()
        while True:  # a run id is drawn again on the (unlikely) clash
            run_id = new_run_id(request.project_name, now)
            try:
                conn.execute(
                    "INSERT INTO jobs (run_id, project, env, idempotency_key, fingerprint,"
                    " request, state, accepted_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?)",
                    (run_id, request.project, request.env, idempotency_key, fingerprint,
                     json.dumps(request.to_json()), iso(now)),
                )  # fmt: skip
                break
            except sqlite3.IntegrityError as e:
                if "run_id" not in str(e):
                    raise
        row = conn.execute("SELECT * FROM jobs WHERE run_id = ?", (run_id,)).fetchone()
        return Enqueued(job_from_row(row), created=True)

    def find(self, project: str, idempotency_key: str, fingerprint: str) -> Job | None:
        """The job an earlier request of `project` with this key made, if there is one.

        Raises:
            IdempotencyConflictError: The key was used for a different request.
            QueueError: The queue file is unusable.
        """
        if not self.path.exists():
            return None
        with self._connect() as conn:
            row = conn.execute(
                "SELECT * FROM jobs WHERE project = ? AND idempotency_key = ?",
                (project, idempotency_key),
            ).fetchone()
        return None if row is None else same_request(job_from_row(row), fingerprint)

    def claim(self) -> Job | None:
        """Take the oldest queued job whose project and environment have nothing running.

        Returns:
            The job, now `running` and marked with this process; None if nothing can start.

        Raises:
            QueueError: The queue file is unusable.
        """
        pid = os.getpid()
        with self._connect() as conn, write(conn):
            row = conn.execute(_CLAIMABLE).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE jobs SET state = 'running', claimed_at = ?, worker_host = ?,"
                " worker_pid = ?, worker_boot_id = ?, worker_start_ticks = ? WHERE seq = ?",
                (iso(self._clock()), hostname(), pid, current_boot_id(),
                 process_start_ticks(pid), row["seq"]),
            )  # fmt: skip
            row = conn.execute("SELECT * FROM jobs WHERE seq = ?", (row["seq"],)).fetchone()
        return job_from_row(row)

    def has_claimable(self) -> bool:
        """Whether a job could be claimed now (a read: no write lock is taken).

        Raises:
            QueueError: The queue file is unusable.
        """
        if not self.path.exists():
            return False
        with self._connect() as conn:
            return conn.execute(_CLAIMABLE).fetchone() is not None

    @property
    def where(self) -> str:
        """Where the queue is, for people: its file."""
        return str(self.path)

    def renew(self, pids: list[int]) -> None:
        """Nothing: a job here is settled by its process's liveness on this host (`recover`),
        not by a lease (the PostgreSQL queue's jobs have one)."""
        del pids

    def retried_as(self, run_id: str) -> str | None:
        """None: a job here is never retried (its run is settled by `recover`)."""
        del run_id
        return None

    def claimed_by(self, pids: list[int]) -> list[str]:
        """The run ids of the running jobs claimed by these processes on this host.

        Raises:
            QueueError: The queue file is unusable.
        """
        if not pids or not self.path.exists():
            return []
        marks = ", ".join("?" * len(pids))
        sql = (
            "SELECT run_id FROM jobs WHERE state = 'running' AND worker_host = ?"  # noqa: S608
            f" AND worker_pid IN ({marks}) ORDER BY seq"
        )
        with self._connect() as conn:
            return [row[0] for row in conn.execute(sql, [hostname(), *pids])]

    def finish(self, run_id: str, outcome: str) -> None:
        """Mark a job done, with its run's final status.

        Raises:
            QueueError: The queue file is unusable.
        """
        with self._connect() as conn, write(conn):
            conn.execute(
                "UPDATE jobs SET state = 'done', finished_at = ?, outcome = ? WHERE run_id = ?",
                (iso(self._clock()), outcome, run_id),
            )

    def release(self, run_id: str) -> None:
        """Put a claimed job whose run never began back in the queue, in its old place.

        Raises:
            QueueError: The queue file is unusable.
        """
        with self._connect() as conn, write(conn):
            conn.execute(
                "UPDATE jobs SET state = 'queued', claimed_at = NULL, worker_host = NULL,"
                " worker_pid = NULL, worker_boot_id = NULL, worker_start_ticks = NULL"
                " WHERE run_id = ? AND state = 'running'",
                (run_id,),
            )

    def recover(self, history_status: Callable[[str], str | None]) -> Recovered:
        """Settle the jobs claimed by server processes on this host that are gone.

        Args:
            history_status: The status of a run in the history, or None if it never began.

        Returns:
            Which jobs went back to the queue and which were finished.

        Raises:
            QueueError: The queue file is unusable.
        """
        if not self.path.exists():
            return Recovered()
        host, boot = hostname(), current_boot_id()
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM jobs WHERE state = 'running'").fetchall()
        gone = [
            row
            for row in rows
            if row["worker_host"] == host
            and is_writer_gone(
                row["worker_pid"] or 0,
                row["worker_boot_id"] or "",
                row["worker_start_ticks"],
                now_boot_id=boot,
            )
        ]
        requeued: list[str] = []
        finished: list[str] = []
        for row in gone:
            status = history_status(row["run_id"])
            if status is None:
                self.release(row["run_id"])
                requeued.append(row["run_id"])
            else:
                self.finish(row["run_id"], status)
                finished.append(row["run_id"])
        return Recovered(tuple(requeued), tuple(finished))

    def get(self, run_id: str) -> Job | None:
        """The job with this run id, if the queue has one.

        Raises:
            QueueError: The queue file is unusable.
        """
        if not self.path.exists():
            return None
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else job_from_row(row)

    def unfinished(self, *, limit: int, project: str | None = None) -> list[Job]:
        """Queued and running jobs, newest first.

        Raises:
            QueueError: The queue file is unusable.
        """
        if not self.path.exists():
            return []
        sql = "SELECT * FROM jobs WHERE state IN ('queued', 'running')"
        params: list[Any] = []
        if project is not None:
            sql += " AND project = ?"
            params.append(project)
        with self._connect() as conn:
            rows = conn.execute(sql + " ORDER BY seq DESC LIMIT ?", [*params, limit]).fetchall()
        return [job_from_row(row) for row in rows]

    def position(self, job: Job) -> int:
        """How many queued jobs were accepted before this one (0: it is next in line).

        Raises:
            QueueError: The queue file is unusable.
        """
        with self._connect() as conn:
            ahead = conn.execute(
                "SELECT count(*) FROM jobs WHERE state = 'queued' AND seq < ?", (job.seq,)
            ).fetchone()[0]
        return int(ahead)

    def counts(self) -> dict[JobState, int]:
        """How many jobs are in each state.

        Raises:
            QueueError: The queue file is unusable.
        """
        found = dict.fromkeys(JobState, 0)
        if not self.path.exists():
            return found
        with self._connect() as conn:
            for state, count in conn.execute("SELECT state, count(*) FROM jobs GROUP BY state"):
                found[JobState(state)] = int(count)
        return found

    def remember_signature(self, signature: str, *, expires_at: float, now: float) -> bool:
        """Record a request signature; False if it was seen before (a replay).

        Signatures are kept until `expires_at` (Unix seconds): after that the timestamp they
        sign is too old to be accepted anyway.

        Raises:
            QueueError: The queue file is unusable.
        """
        with self._connect() as conn, write(conn):
            conn.execute("DELETE FROM signatures WHERE expires_at < ?", (now,))
            added = conn.execute(
                "INSERT OR IGNORE INTO signatures (signature, expires_at) VALUES (?, ?)",
                (signature, expires_at),
            ).rowcount
        return bool(added)

    def prune(self, *, older_than: timedelta) -> int:
        """Forget done jobs finished longer ago than `older_than` (and their idempotency keys).

        Returns:
            How many were removed.

        Raises:
            QueueError: The queue file is unusable.
        """
        if not self.path.exists():
            return 0
        cutoff = iso(self._clock() - older_than)
        with self._connect() as conn, write(conn):
            return conn.execute(
                "DELETE FROM jobs WHERE state = 'done' AND finished_at < ?", (cutoff,)
            ).rowcount

    def connect(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A durable connection with the schema checked (the group committer keeps one).

        Raises:
            QueueError: The queue file is unusable.
        """
        return self._file.connect(durable=True)

    def error(self, error: sqlite3.Error) -> QueueError:
        """The product error for a SQLite error met on this file."""
        return self._file.error(error)

    def _connect(
        self, *, durable: bool = False
    ) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self._file.connect(durable=durable)

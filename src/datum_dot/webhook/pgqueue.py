"""The webhook's queue in PostgreSQL, shared by the servers of every host (issue #18, adr/0020).

Used instead of `$DATUM_HOME/webhook.sqlite` when the run history is in PostgreSQL: every
`dot webhook serve` pointed at the database takes jobs from the same table (`jobs`, in the
`datum_dot` schema, migrated with the history's schema). The rules are the SQLite queue's
(`queue.py`), held across hosts:

- An idempotency key is unique per project in the table, so a key one server has seen is a
  duplicate on every other: the same request gets the first job, another request a conflict.
- A worker claims the oldest job it may start with `SELECT ... FOR UPDATE SKIP LOCKED`, so two
  workers never take the same row. At most one job per project and environment runs: a unique
  index on the running rows refuses the second claim of two made at once on two hosts.
- A claimed job has a lease (`lease_until`, by the database's clock) that its server renews
  while its worker lives. A job whose lease ran out, and whose run's history record is not
  running under a live lease of its own, is taken over by the next worker that looks: a run
  that never began is claimed again under the same run id; a run that began and did not end
  (its record RUNNING or ABORTED) is retried under a new run id that names the first
  (`retry_of`), up to `MAX_ATTEMPTS`; a run that ended is finished with its status.
  Nothing is taken over while the first host's lease is alive, so no run is begun twice.

`RunStore.begin` refuses a run id the history already holds, as on one host: whatever happens
to a queue row, dbt is started at most once per run id.

psycopg is imported only through this module, which is imported only for a database URL.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from datum_dot.errors import HistoryError
from datum_dot.history.files import utc_now
from datum_dot.history.index import Row, Session
from datum_dot.history.pgoutput import lease_seconds
from datum_dot.history.postgres import DuplicateRowError, PgIndex
from datum_dot.history.records import hostname, iso, new_run_id
from datum_dot.home.dburl import DatabaseUrl
from datum_dot.home.liveness import current_boot_id, process_start_ticks
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
from datum_dot.webhook.queue import DEFAULT_MAX_UNFINISHED

MAX_ATTEMPTS = 3
"""Attempts of one job at most: a job that takes its server down every time is not retried
for ever; its last attempt stays ABORTED."""
_TAKEABLE = """
    SELECT q.*, h.status AS run_status FROM jobs AS q LEFT JOIN runs AS h ON h.run_id = q.run_id
    WHERE (q.state = 'queued' AND NOT EXISTS (
            SELECT 1 FROM jobs AS r
            WHERE r.state = 'running' AND r.project = q.project AND r.env = q.env))
       OR (q.state = 'running' AND q.lease_until < now() AND NOT EXISTS (
            SELECT 1 FROM runs AS l
            WHERE l.run_id = q.run_id AND l.status = 'RUNNING' AND l.lease_until >= now()))
    ORDER BY q.seq LIMIT 1
"""
_CLAIM = (
    "UPDATE jobs SET state = 'running', claimed_at = :now, worker_host = :host,"
    " worker_pid = :pid, worker_boot_id = :boot, worker_start_ticks = :ticks,"
    " lease_until = now() + make_interval(secs => :lease), run_id = :run_id,"
    " retry_of = :retry_of, attempt = :attempt WHERE seq = :seq RETURNING *"
)


class PgJobQueue:
    """The queue in a PostgreSQL database, with `JobQueue`'s methods (see the module docstring).

    Args:
        url: The database (the run history's).
        max_unfinished: Queued plus running rows at most, across every server.
        clock: Gives the current UTC time (tests inject one).
    """

    def __init__(
        self,
        url: DatabaseUrl,
        *,
        max_unfinished: int = DEFAULT_MAX_UNFINISHED,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.index = PgIndex(url)
        self.max_unfinished = max_unfinished
        self._clock = clock

    @property
    def where(self) -> str:
        """Where the queue is, for people: the database, shared by every server using it."""
        return f"PostgreSQL {self.index.where}, shared by the servers using it"

    def enqueue(
        self, request: JobRequest, *, idempotency_key: str | None, fingerprint: str
    ) -> Enqueued:
        """Commit a request as queued, or find the job an earlier request with its key made
        (on any server).

        Raises:
            IdempotencyConflictError: The key was used for a different request.
            QueueFullError: `max_unfinished` rows are queued or running.
            QueueError: The database cannot be used.
        """
        with self._session() as s:
            if idempotency_key is not None:
                row = s.one(
                    "SELECT * FROM jobs WHERE project = ? AND idempotency_key = ?",
                    (request.project, idempotency_key),
                )
                if row is not None:
                    return Enqueued(same_request(job_from_row(row), fingerprint), created=False)
            found = s.one("SELECT count(*) AS n FROM jobs WHERE state IN ('queued', 'running')")
            unfinished = int(found["n"]) if found else 0
            if unfinished >= self.max_unfinished:
                raise QueueFullError(
                    f"the queue is full: {unfinished} runs are queued or running",
                    "retry after the time in the Retry-After header",
                )
            now = self._clock()
            while True:  # a run id is drawn again on the (unlikely) clash
                # ON CONFLICT waits for a server inserting the same key at this moment, then
                # inserts nothing: the key's job is then the other server's.
                row = s.one(
                    "INSERT INTO jobs (run_id, project, env, idempotency_key, fingerprint,"
                    " request, state, accepted_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?)"
                    " ON CONFLICT DO NOTHING RETURNING *",
                    (new_run_id(request.project_name, now), request.project, request.env,
                     idempotency_key, fingerprint, json.dumps(request.to_json()), iso(now)),
                )  # fmt: skip
                if row is not None:
                    return Enqueued(job_from_row(row), created=True)
                if idempotency_key is not None:
                    row = s.one(
                        "SELECT * FROM jobs WHERE project = ? AND idempotency_key = ?",
                        (request.project, idempotency_key),
                    )
                    if row is not None:
                        return Enqueued(same_request(job_from_row(row), fingerprint), created=False)

    def find(self, project: str, idempotency_key: str, fingerprint: str) -> Job | None:
        """The job an earlier request of `project` with this key made, on any server.

        Raises:
            IdempotencyConflictError: The key was used for a different request.
            QueueError: The database cannot be used.
        """
        with self._session() as s:
            row = s.one(
                "SELECT * FROM jobs WHERE project = ? AND idempotency_key = ?",
                (project, idempotency_key),
            )
        return None if row is None else same_request(job_from_row(row), fingerprint)

    def claim(self) -> Job | None:
        """Take the oldest job this worker may start: queued with its environment free, or
        another server's whose lease ran out (see the module docstring).

        Returns:
            The job, now `running` under this process's lease; None if nothing can start.

        Raises:
            QueueError: The database cannot be used.
        """
        for _ in range(MAX_ATTEMPTS + 2):  # rows settled on the way are passed over
            try:
                with self._session() as s, s.transaction():
                    row = s.one(_TAKEABLE + " FOR UPDATE OF q SKIP LOCKED")
                    if row is None:
                        return None
                    job = self._take(s, row)
            except DuplicateRowError:
                return None  # another server started a job of this environment just now
            if job is not None:
                return job
        return None

    def has_claimable(self) -> bool:
        """Whether a job could be claimed now (a read: nothing is locked).

        Raises:
            QueueError: The database cannot be used.
        """
        with self._session() as s:
            return s.one(_TAKEABLE) is not None

    def renew(self, pids: list[int]) -> None:
        """Extend the leases of the jobs these processes (this server's workers) hold.

        Raises:
            QueueError: The database cannot be used.
        """
        if not pids:
            return
        with self._session() as s:
            s.run(
                "UPDATE jobs SET lease_until = now() + make_interval(secs => ?)"
                " WHERE state = 'running' AND worker_host = ? AND worker_pid = ANY(?)",
                (lease_seconds(), hostname(), pids),
            )

    def claimed_by(self, pids: list[int]) -> list[str]:
        """The run ids of the running jobs claimed by these processes on this host.

        Raises:
            QueueError: The database cannot be used.
        """
        if not pids:
            return []
        with self._session() as s:
            rows = s.rows(
                "SELECT run_id FROM jobs WHERE state = 'running' AND worker_host = ?"
                " AND worker_pid = ANY(?) ORDER BY seq",
                (hostname(), pids),
            )
        return [row["run_id"] for row in rows]

    def finish(self, run_id: str, outcome: str) -> None:
        """Mark a job this process claimed done, with its run's final status (nothing if
        another server took it over meanwhile: it is that server's now).

        Raises:
            QueueError: The database cannot be used.
        """
        with self._session() as s:
            s.run(
                "UPDATE jobs SET state = 'done', finished_at = ?, outcome = ?, lease_until = NULL"
                " WHERE run_id = ? AND state = 'running' AND worker_host = ? AND worker_pid = ?",
                (iso(self._clock()), outcome, run_id, hostname(), os.getpid()),
            )

    def release(self, run_id: str) -> None:
        """Put a job this process claimed, whose run never began, back in the queue, in its
        old place (nothing if another server took it over meanwhile).

        Raises:
            QueueError: The database cannot be used.
        """
        with self._session() as s:
            s.run(
                "UPDATE jobs SET state = 'queued', claimed_at = NULL, worker_host = NULL,"
                " worker_pid = NULL, worker_boot_id = NULL, worker_start_ticks = NULL,"
                " lease_until = NULL WHERE run_id = ? AND state = 'running' AND worker_host = ?"
                " AND worker_pid = ?",
                (run_id, hostname(), os.getpid()),
            )

    def recover(self, history_status: Callable[[str], str | None]) -> Recovered:
        """Nothing to settle at start: a job of a server that is gone is taken over when its
        lease runs out (`claim`), by whichever server looks first.

        Unlike the SQLite queue, a process seen dead on this host does not settle its job at
        once: hosts sharing the database may share a host name, and only the lease is a sign
        of life every host can see.
        """
        del history_status
        return Recovered()

    def get(self, run_id: str) -> Job | None:
        """The job with this run id (its current attempt's), if the queue has one.

        Raises:
            QueueError: The database cannot be used.
        """
        with self._session() as s:
            row = s.one("SELECT * FROM jobs WHERE run_id = ?", (run_id,))
        return None if row is None else job_from_row(row)

    def retried_as(self, run_id: str) -> str | None:
        """The run id of the attempt that retried this one, if one did.

        Raises:
            QueueError: The database cannot be used.
        """
        with self._session() as s:
            row = s.one("SELECT retried_as FROM job_retries WHERE run_id = ?", (run_id,))
        return None if row is None else str(row["retried_as"])

    def unfinished(self, *, limit: int, project: str | None = None) -> list[Job]:
        """Queued and running jobs, newest first.

        Raises:
            QueueError: The database cannot be used.
        """
        sql = "SELECT * FROM jobs WHERE state IN ('queued', 'running')"
        params: list[Any] = []
        if project is not None:
            sql += " AND project = ?"
            params.append(project)
        with self._session() as s:
            rows = s.rows(sql + " ORDER BY seq DESC LIMIT ?", [*params, limit])
        return [job_from_row(row) for row in rows]

    def position(self, job: Job) -> int:
        """How many queued jobs were accepted before this one (0: it is next in line).

        Raises:
            QueueError: The database cannot be used.
        """
        with self._session() as s:
            row = s.one(
                "SELECT count(*) AS n FROM jobs WHERE state = 'queued' AND seq < ?", (job.seq,)
            )
        return int(row["n"]) if row else 0

    def counts(self) -> dict[JobState, int]:
        """How many jobs are in each state.

        Raises:
            QueueError: The database cannot be used.
        """
        found = dict.fromkeys(JobState, 0)
        with self._session() as s:
            for row in s.rows("SELECT state, count(*) AS n FROM jobs GROUP BY state"):
                found[JobState(row["state"])] = int(row["n"])
        return found

    def remember_signature(self, signature: str, *, expires_at: float, now: float) -> bool:
        """Record a request signature; False if any server saw it before (a replay).

        Raises:
            QueueError: The database cannot be used.
        """
        with self._session() as s:
            s.run("DELETE FROM job_signatures WHERE expires_at < ?", (now,))
            row = s.one(
                "INSERT INTO job_signatures (signature, expires_at) VALUES (?, ?)"
                " ON CONFLICT DO NOTHING RETURNING signature",
                (signature, expires_at),
            )
        return row is not None

    def prune(self, *, older_than: timedelta) -> int:
        """Forget done jobs finished longer ago than `older_than` (and their idempotency keys).

        Raises:
            QueueError: The database cannot be used.
        """
        with self._session() as s:
            rows = s.rows(
                "DELETE FROM jobs WHERE state = 'done' AND finished_at < ? RETURNING seq",
                (iso(self._clock() - older_than),),
            )
        return len(rows)

    def _take(self, s: Session, row: Row) -> Job | None:
        """Claim a row `_TAKEABLE` found (locked), or settle it and return None."""
        retry_of, attempt, run_id = row["retry_of"], int(row["attempt"]), row["run_id"]
        status = row["run_status"]
        if row["state"] == JobState.RUNNING.value and status is not None:
            # Taken over: its run began on a server that stopped renewing the lease.
            if status not in ("RUNNING", "ABORTED"):
                self._settle(s, row["seq"], status)  # it ended; only the queue was not told
                return None
            if attempt >= MAX_ATTEMPTS:
                self._settle(s, row["seq"], "ABORTED")
                return None
            retry_of, attempt = run_id, attempt + 1
            run_id = new_run_id(JobRequest.from_json(json.loads(row["request"])).project_name,
                                self._clock())  # fmt: skip
            s.run(
                "INSERT INTO job_retries (run_id, retried_as, seq) VALUES (?, ?, ?)",
                (retry_of, run_id, row["seq"]),
            )
        pid = os.getpid()
        claimed = s.one(
            _CLAIM,
            {
                "now": iso(self._clock()),
                "host": hostname(),
                "pid": pid,
                "boot": current_boot_id(),
                "ticks": process_start_ticks(pid),
                "lease": lease_seconds(),
                "run_id": run_id,
                "retry_of": retry_of,
                "attempt": attempt,
                "seq": row["seq"],
            },
        )
        return None if claimed is None else job_from_row(claimed)

    def _settle(self, s: Session, seq: int, outcome: str) -> None:
        s.run(
            "UPDATE jobs SET state = 'done', finished_at = ?, outcome = ?, lease_until = NULL"
            " WHERE seq = ?",
            (iso(self._clock()), outcome, seq),
        )

    @contextlib.contextmanager
    def _session(self) -> Iterator[Session]:
        """A session on this thread's connection; the history's errors become the queue's
        (an unreachable database is the server's trouble, 503, not the client's input)."""
        try:
            with self.index.session() as s:
                yield s
        except DuplicateRowError:
            raise
        except HistoryError as e:
            raise QueueError(e.message, e.hint) from e

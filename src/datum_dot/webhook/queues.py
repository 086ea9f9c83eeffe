"""Which queue a server uses: SQLite under `$DATUM_HOME`, or PostgreSQL beside the history.

The queue follows the run history: with `DATUM_DATABASE_URL` (or `database.url`) set, the
history is in PostgreSQL and so is the queue (`pgqueue`), shared by the servers of every host;
otherwise `$DATUM_HOME/webhook.sqlite` (`queue`), as before.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from datum_dot.home.dburl import database_url
from datum_dot.webhook.jobs import Enqueued, Job, JobRequest, JobState, Recovered
from datum_dot.webhook.queue import DEFAULT_MAX_UNFINISHED, JobQueue


class Queue(Protocol):
    """What the server, its routes and its workers ask of a queue (`JobQueue`, `PgJobQueue`)."""

    @property
    def where(self) -> str:
        """Where the queue is, for people."""

    def enqueue(
        self, request: JobRequest, *, idempotency_key: str | None, fingerprint: str
    ) -> Enqueued:
        """Commit a request, or find the job an earlier request with its key made."""

    def find(self, project: str, idempotency_key: str, fingerprint: str) -> Job | None:
        """The job an earlier request of `project` with this key made, if there is one."""

    def claim(self) -> Job | None:
        """Take the oldest job this worker may start."""

    def has_claimable(self) -> bool:
        """Whether a job could be claimed now."""

    def renew(self, pids: list[int]) -> None:
        """Extend the leases of the jobs these worker processes hold."""

    def claimed_by(self, pids: list[int]) -> list[str]:
        """The run ids of the running jobs claimed by these processes on this host."""

    def finish(self, run_id: str, outcome: str) -> None:
        """Mark a job done, with its run's final status."""

    def release(self, run_id: str) -> None:
        """Put a claimed job whose run never began back in the queue."""

    def recover(self, history_status: Callable[[str], str | None]) -> Recovered:
        """Settle the jobs of server processes that are gone."""

    def get(self, run_id: str) -> Job | None:
        """The job with this run id, if the queue has one."""

    def retried_as(self, run_id: str) -> str | None:
        """The run id of the attempt that retried this one, if one did."""

    def unfinished(self, *, limit: int, project: str | None = None) -> list[Job]:
        """Queued and running jobs, newest first."""

    def position(self, job: Job) -> int:
        """How many queued jobs were accepted before this one."""

    def counts(self) -> dict[JobState, int]:
        """How many jobs are in each state."""

    def remember_signature(self, signature: str, *, expires_at: float, now: float) -> bool:
        """Record a request signature; False if it was seen before."""

    def prune(self, *, older_than: timedelta) -> int:
        """Forget done jobs finished longer ago than `older_than`."""


def open_queue(home: Path, *, max_unfinished: int = DEFAULT_MAX_UNFINISHED) -> Queue:
    """The queue of a server whose `$DATUM_HOME` is `home`.

    Raises:
        ConfigError: config.yaml's `database.url` holds a password, or config.yaml is unusable.
        HistoryError: `DATUM_DATABASE_URL` is not a PostgreSQL URL.
    """
    url = database_url(home)
    if url is None:
        return JobQueue(home, max_unfinished=max_unfinished)
    # lazy: psycopg loads only for a queue kept in PostgreSQL
    from datum_dot.webhook.pgqueue import PgJobQueue

    return PgJobQueue(url, max_unfinished=max_unfinished)

"""Group commit: the requests accepted at the same moment share one transaction, one fsync.

A request is answered 202 only once it is on disk, and the queue commits with
`synchronous=FULL`, so each commit waits for the disk (2-10 ms here). Committing requests one by
one would put every concurrent request in line behind the others' fsyncs; this thread instead
takes every request waiting when a commit starts, writes them in one transaction, and answers
them all when it is on disk. Under load, a request waits for at most the commit in progress
and its own.

The thread keeps its connection for the server's lifetime. That also means no other connection
to the queue is ever the last one to close, which is when SQLite checkpoints the WAL: closing a
worker's connection stays cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from datum_dot.errors import DotError
from datum_dot.home.sqlitefile import write
from datum_dot.webhook.errors import QueueError
from datum_dot.webhook.jobs import Enqueued, JobRequest
from datum_dot.webhook.queue import JobQueue

log = logging.getLogger("datum_dot.webhook")
MAX_BATCH = 256
ANSWER_TIMEOUT_SECONDS = 60.0


@dataclass
class _Pending:
    request: JobRequest
    idempotency_key: str | None
    fingerprint: str
    done: threading.Event = field(default_factory=threading.Event)
    result: Enqueued | None = None
    error: DotError | None = None
    notify: Callable[[], None] | None = None

    def settle(self) -> None:
        self.done.set()
        if self.notify is not None:
            self.notify()


class GroupCommitter:
    """Commits queued requests in batches from one thread (see the module docstring).

    Args:
        jobs: The queue written to.
    """

    def __init__(self, jobs: JobQueue) -> None:
        self.jobs = jobs
        self._pending: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="dot-webhook-commit", daemon=True)

    def start(self) -> None:
        """Start the committing thread."""
        self._thread.start()

    def stop(self) -> None:
        """Commit what is waiting, then stop."""
        self._pending.put(None)
        self._thread.join(timeout=ANSWER_TIMEOUT_SECONDS)

    def enqueue(
        self, request: JobRequest, *, idempotency_key: str | None, fingerprint: str
    ) -> Enqueued:
        """`JobQueue.enqueue`, committed together with whatever else is waiting.

        Raises:
            IdempotencyConflictError: The key was used for a different request.
            QueueFullError: The queue is full.
            QueueError: The queue file is unusable, or the committer stopped.
        """
        item = _Pending(request, idempotency_key, fingerprint)
        self._pending.put(item)
        item.done.wait(ANSWER_TIMEOUT_SECONDS)
        return _outcome(item)

    async def enqueue_async(
        self, request: JobRequest, *, idempotency_key: str | None, fingerprint: str
    ) -> Enqueued:
        """`enqueue` for the event loop: waits for the commit without holding a thread.

        Raises:
            IdempotencyConflictError: The key was used for a different request.
            QueueFullError: The queue is full.
            QueueError: The queue file is unusable, or the committer stopped.
        """
        loop = asyncio.get_running_loop()
        committed: asyncio.Future[None] = loop.create_future()

        def notify() -> None:
            loop.call_soon_threadsafe(_resolve, committed)

        item = _Pending(request, idempotency_key, fingerprint, notify=notify)
        self._pending.put(item)
        with contextlib.suppress(TimeoutError):  # answered below, with the error
            await asyncio.wait_for(committed, ANSWER_TIMEOUT_SECONDS)
        return _outcome(item)

    def _run(self) -> None:
        try:
            with self.jobs.connect() as conn:
                while self._commit_next(conn):
                    pass
        except DotError as e:  # the file is unusable: answer everyone waiting with why
            log.error("the queue committer stopped: %s", e.message)
            self._fail_waiting(e)

    def _commit_next(self, conn: sqlite3.Connection) -> bool:
        first = self._pending.get()
        if first is None:
            return False
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                item = self._pending.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._pending.put(None)  # stop after this batch
                break
            batch.append(item)
        try:
            with write(conn):
                for item in batch:
                    try:
                        item.result = self.jobs.enqueue_in(
                            conn, item.request, item.idempotency_key, item.fingerprint
                        )
                    except DotError as e:  # this request's own problem (conflict, full)
                        item.error = e
        except sqlite3.Error as e:
            failure = self.jobs.error(e)
            for item in batch:
                item.result, item.error = None, failure
        finally:
            for item in batch:
                item.settle()
        return True

    def _fail_waiting(self, error: DotError) -> None:
        while True:
            try:
                item = self._pending.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item.error = error
                item.settle()


def _outcome(item: _Pending) -> Enqueued:
    if item.result is None:
        raise item.error or QueueError(
            "the webhook queue did not commit the request in time", "retry"
        )
    return item.result


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)

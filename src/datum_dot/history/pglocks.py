"""Locks shared by every host of a PostgreSQL history: advisory locks keyed by what they guard.

A build of `prod@main` into the warehouse's schema, or a schedule's firing, is one per project,
environment and commit (or schedule) across hosts, not only on one host (the file locks do
that). Each lock is a session-level `pg_try_advisory_lock` on a connection of its own, held for
the `with` block: the database drops it when the holder's connection ends, so a killed host never
leaves one behind. The holder writes its host and pid into `lock_holders`, which is what the
waiter's message and the timeout's name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence

import psycopg

from datum_dot.errors import LockTimeoutError
from datum_dot.history.files import utc_now
from datum_dot.history.index import Row
from datum_dot.history.postgres import PgIndex
from datum_dot.history.records import hostname, iso

_FIRST_POLL = 0.05
_MAX_POLL = 1.0


def lock_key(parts: Sequence[str]) -> int:
    """The advisory lock's 64-bit key for what it guards (`build`, project, env, commit)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def advisory_lock(
    index: PgIndex,
    parts: Sequence[str],
    *,
    name: str,
    timeout: float,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the advisory lock for `parts` for the `with` block, waiting up to `timeout` seconds.

    Args:
        index: The history's database.
        parts: What the lock guards (its key is their hash).
        name: What people call it (`the build of prod@main`).
        timeout: Seconds to wait for another holder; 0 tries once.
        on_wait: Told, once, who holds it, before waiting.

    Raises:
        LockTimeoutError: Another host still held it after `timeout` seconds (named).
        DatabaseUnavailableError: The database cannot be reached.
    """
    key = lock_key(parts)
    with index.session():  # the schema migrated (lock_holders), once per process
        pass
    with index.direct() as conn:
        deadline = time.monotonic() + max(timeout, 0.0)
        poll, told = _FIRST_POLL, False
        while True:
            row = conn.execute("SELECT pg_try_advisory_lock(%s) AS got", (key,)).fetchone()
            if row is not None and row["got"]:
                break
            holder = _holder(conn, key)
            if time.monotonic() >= deadline:
                raise LockTimeoutError(
                    f"{name} is held by {holder} (a shared lock in {index.where}); waited "
                    f"{timeout:g}s",
                    "retry once it has finished; `dot logs --status running` lists what runs",
                )
            if not told and on_wait is not None:
                on_wait(f"{name} is held by {holder}; waiting for it")
            told = True
            time.sleep(min(poll, max(deadline - time.monotonic(), 0.0)))
            poll = min(poll * 2, _MAX_POLL)
        conn.execute(
            "INSERT INTO lock_holders (key, name, hostname, pid, since) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (key) DO UPDATE SET name = excluded.name, hostname = excluded.hostname,"
            " pid = excluded.pid, since = excluded.since",
            (key, name, hostname(), os.getpid(), iso(utc_now())),
        )
        try:
            yield
        finally:
            with contextlib.suppress(psycopg.Error):  # a dropped connection dropped the lock too
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def _holder(conn: psycopg.Connection[Row], key: int) -> str:
    row = conn.execute(
        "SELECT hostname, pid, since FROM lock_holders WHERE key = %s", (key,)
    ).fetchone()
    if row is None:
        return "another host"
    return f"host {row['hostname']} (process {row['pid']}, since {str(row['since'])[:19]} UTC)"

"""What a process writing runs into PostgreSQL keeps doing while they run: ship output, renew leases.

One thread per process (started with the first run it begins) does both, every
`FLUSH_SECONDS`:

- the output lines of each running run, numbered in order, are inserted into `run_lines`
  (another host's `dot logs RUN_ID -f` reads them from there). A line is never lost to a database
  that went away: it waits in memory and goes with the next insert that succeeds; lines already
  inserted are skipped by their number, so a retry never doubles one.
- each running run's lease is renewed (`lease_until`, `LEASE_SECONDS` ahead by the database's
  clock). A RUNNING record whose lease has run out is ABORTED for every host: its writer stopped
  (killed, machine down) or lost the database for longer than the lease.

What is still unsent when a run finishes with the database away is spooled to local disk (see
`pgspool`) and sent, in order, as soon as the database answers again.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field

from datum_dot.history.postgres import DatabaseUnavailableError, PgIndex

FLUSH_SECONDS = 0.25
LEASE_VARIABLE = "DATUM_HISTORY_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 60.0
PENDING_LIMIT = 200_000
"""Lines kept in memory per run while the database is away; the output file keeps them all."""
INSERT_LINES = (
    "INSERT INTO run_lines (run_id, seq, stream, line) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (run_id, seq) DO NOTHING"
)


def lease_seconds() -> float:
    """How long a RUNNING record's lease lasts without renewal (`DATUM_HISTORY_LEASE_SECONDS`)."""
    try:
        value = float(os.environ.get(LEASE_VARIABLE, "") or DEFAULT_LEASE_SECONDS)
    except ValueError:
        return DEFAULT_LEASE_SECONDS
    return max(value, 1.0)


@dataclass
class _Run:
    index: PgIndex
    run_id: str
    seq: int = 0
    pending: list[tuple[int, str, str]] = field(default_factory=list)
    dropped: int = 0


class Shipper:
    """The process's output shipper and lease renewer (use `shipper()`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_renewal = float("-inf")

    def track(self, index: PgIndex, run_id: str) -> None:
        """Start shipping a run's lines and renewing its lease."""
        with self._lock:
            self._runs.setdefault(run_id, _Run(index, run_id))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="datum-dot-history", daemon=True
                )
                self._thread.start()

    def add(self, run_id: str, stream: str, lines: list[str]) -> None:
        """Queue a run's stamped output lines (in the order they were printed)."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                return
            for line in lines:
                if len(run.pending) >= PENDING_LIMIT:
                    run.dropped += 1
                    continue
                run.pending.append((run.seq, stream, line))
                run.seq += 1

    def release(self, run_id: str) -> list[tuple[int, str, str]]:
        """Stop tracking a run; returns its lines not sent yet (the caller sends them with the
        run's end, in one round trip)."""
        with self._flush_lock, self._lock:  # not while the thread is sending some of them
            run = self._runs.pop(run_id, None)
        return [] if run is None else run.pending

    def _loop(self) -> None:
        while True:
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            with contextlib.suppress(Exception):  # a thread that dies stops every run's lease
                self._flush()
                self._renew()

    def _flush(self, only: str | None = None) -> None:
        with self._flush_lock:
            with self._lock:
                batches = [
                    (run, list(run.pending))
                    for run in self._runs.values()
                    if run.pending and (only is None or run.run_id == only)
                ]
            for run, batch in batches:
                try:
                    with run.index.session() as s:
                        s.run_many(INSERT_LINES, [(run.run_id, *line) for line in batch])
                except DatabaseUnavailableError:
                    continue
                with self._lock:
                    del run.pending[: len(batch)]

    def _renew(self) -> None:
        lease = lease_seconds()
        now = time.monotonic()
        if now - self._last_renewal < lease / 4:
            return
        with self._lock:
            by_index: dict[int, tuple[PgIndex, list[str]]] = {}
            for run in self._runs.values():
                by_index.setdefault(id(run.index), (run.index, []))[1].append(run.run_id)
        for index, run_ids in by_index.values():
            with contextlib.suppress(DatabaseUnavailableError):
                renew(index, run_ids, lease)
        self._last_renewal = now


def renew(index: PgIndex, run_ids: list[str], lease: float) -> None:
    """Push the leases of these RUNNING runs `lease` seconds past the database's now."""
    with index.session() as s:
        s.run(
            "UPDATE runs SET lease_until = now() + make_interval(secs => ?)"
            " WHERE run_id = ANY(?) AND status = 'RUNNING'",
            (lease, run_ids),
        )


_SHIPPER = Shipper()


def shipper() -> Shipper:
    """This process's shipper."""
    return _SHIPPER

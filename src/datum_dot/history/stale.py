"""Runs whose writer is gone: a RUNNING record whose process died (a dead pid, another boot:
see `liveness`), or, in PostgreSQL, whose host stopped renewing its lease, is marked ABORTED
whenever the history is read, keeping the output it had.
"""

from __future__ import annotations

import contextlib

from datum_dot.history.database import ABORT
from datum_dot.history.files import OUTPUT_LOG, RESERVE, last_change
from datum_dot.history.index import Session
from datum_dot.history.records import StoredRun, hostname, iso
from datum_dot.history.storecore import StoreCore, rewrite_metadata
from datum_dot.home.liveness import current_boot_id, is_writer_gone
from datum_dot.runs.run import RunStatus

ABORTED_CLASS = "aborted"


class StaleRuns(StoreCore):
    """A store that marks the records of writers that are gone ABORTED (part of `RunStore`)."""

    def mark_aborted_stale(self) -> list[str]:
        """Mark RUNNING records whose process is gone (dead pid, another boot) as ABORTED.

        Reading the history (`get`, `query`, `prune`) does this first. Records written on
        another host are left alone: their processes cannot be seen from here.

        Returns:
            The ids marked ABORTED.

        Raises:
            HistoryError: The history file is unusable.
        """
        if not self._index.exists():
            return []
        with self._session(create=False) as s:
            return self._abort_stale(s)

    def _abort_stale(self, s: Session) -> list[str]:
        # A lease is the only sign of life another host's writer gives (PostgreSQL only).
        expired = "lease_until < now()" if self._pg is not None else "0"
        rows = s.rows(
            "SELECT run_id, hostname, pid, boot_id, start_ticks,"  # noqa: S608 - constant text
            f" {expired} AS expired FROM runs WHERE status = 'RUNNING'"
        )
        host, boot = hostname(), current_boot_id()
        stale = {
            row["run_id"]: bool(row["expired"])
            for row in rows
            if bool(row["expired"])
            or (
                row["hostname"] == host
                and is_writer_gone(row["pid"], row["boot_id"], row["start_ticks"], now_boot_id=boot)
            )
        }
        if not stale:
            return []
        aborted: list[StoredRun] = []
        with s.transaction():
            for run_id, by_lease in stale.items():
                run = self._select(s, run_id)
                if run.status is not RunStatus.RUNNING:
                    continue  # another reader got there first
                last_seen = (None if by_lease else last_change(run.run_dir)) or self._clock()
                why = (
                    f"the host recording this run ({run.start.hostname}, pid {run.start.pid}) "
                    "stopped renewing its lease: it was stopped, lost the database for longer "
                    "than the lease, or the machine went down"
                    if by_lease
                    else f"the process recording this run (pid {run.start.pid}) ended without "
                    "finishing it: it was killed (SIGKILL, out of memory) or the machine restarted"
                )
                s.run(
                    ABORT,
                    {
                        "run_id": run_id,
                        "finished_at": iso(last_seen),
                        "duration_seconds": max((last_seen - run.started_at).total_seconds(), 0.0),
                        "error_class": ABORTED_CLASS,
                        "error_message": why,
                        "suggestion": f"the output up to that moment is in {run.run_dir}/"
                        f"{OUTPUT_LOG}"
                        + (f" on {run.start.hostname}" if by_lease else "")
                        + "; run the command again",
                    },
                )
                aborted.append(self._select(s, run_id))
        for run in aborted:
            with contextlib.suppress(OSError):  # the space its recorder set aside, given back
                (run.run_dir / RESERVE).unlink(missing_ok=True)
            rewrite_metadata(run)
            self._log("warning", "run marked ABORTED", run_id=run.run_id)
        return [run.run_id for run in aborted]

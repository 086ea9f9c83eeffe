"""Pruning the run history: finished records removed with their folders, and folders an
interrupted prune left without a record swept.
"""

from __future__ import annotations

import shutil
from datetime import timedelta

from datum_dot.errors import HistoryError
from datum_dot.history.database import NEWEST_FIRST
from datum_dot.history.records import iso, run_time_of
from datum_dot.history.stale import StaleRuns


class RunPruning(StaleRuns):
    """`RunStore.prune`."""

    def prune(self, *, keep: int | None = None, older_than: timedelta | None = None) -> list[str]:
        """Remove finished records and their folders together; RUNNING ones are never removed.

        A record is removed when it is outside the newest `keep` records *and*, if given,
        started more than `older_than` ago: each limit protects records on its own.

        Args:
            keep: Keep at least the newest this many records (None: no count limit).
            older_than: Remove only records that started longer ago than this.

        Returns:
            The removed run ids, oldest first.

        Raises:
            HistoryError: Neither limit was given, a limit is negative, or the file is unusable.
        """
        if keep is None and older_than is None:
            raise HistoryError(
                "prune needs a limit: --keep N and/or --older-than AGE",
                "for example: dot logs prune --keep 500 --older-than 30d",
            )
        if (keep or 0) < 0 or (older_than or timedelta(0)) < timedelta(0):
            raise HistoryError(
                "prune limits cannot be negative", "for example: dot logs prune --keep 500"
            )
        if not self._index.exists():
            return []
        where = ["status != 'RUNNING'"]
        params: list[object] = []
        if keep is not None:
            where.append(f"run_id NOT IN (SELECT run_id FROM runs {NEWEST_FIRST} LIMIT ?)")  # noqa: S608
            params.append(keep)
        if older_than is not None:
            where.append("started_at < ?")
            params.append(iso(self._clock() - older_than))
        sql = f"SELECT run_id FROM runs WHERE {' AND '.join(where)} ORDER BY started_at, run_id"  # noqa: S608
        with self._session(create=False) as s:
            self._abort_stale(s)
            with s.transaction():
                ids = [row["run_id"] for row in s.rows(sql, params)]
                s.run_many("DELETE FROM runs WHERE run_id = ?", [(i,) for i in ids])
        for run_id in ids:
            shutil.rmtree(self.run_dir(run_id), ignore_errors=True)
        self._sweep_orphans()
        if ids:
            self._log("info", f"pruned {len(ids)} runs", keep=keep, older_than=older_than)
        return ids

    def _sweep_orphans(self) -> None:
        """Remove run folders left without a record by an interrupted prune (a day old or more)."""
        if not self.runs_dir.is_dir():
            return
        cutoff = self._clock() - timedelta(days=1)
        candidates = {
            p.name: p
            for p in self.runs_dir.iterdir()
            if (t := run_time_of(p.name)) is not None and t < cutoff
        }
        if not candidates:
            return
        names = sorted(candidates)
        known: set[str] = set()
        with self._session(create=False) as s:
            for chunk in (names[i : i + 500] for i in range(0, len(names), 500)):
                marks = ", ".join("?" * len(chunk))
                sql = f"SELECT run_id FROM runs WHERE run_id IN ({marks})"  # noqa: S608
                known.update(row["run_id"] for row in s.rows(sql, chunk))
        for name in names:
            if name not in known:
                shutil.rmtree(candidates[name], ignore_errors=True)

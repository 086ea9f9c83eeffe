"""The run history's store at its core: where the index is (SQLite under `$DATUM_HOME`, or
PostgreSQL), sessions on it, and the records its rows hold.

`RunStore` (`store`) is built on it, with `stale` (marking RUNNING records whose writer is gone
ABORTED), `reads` (the queries) and `prune`; the parts use one another's private members, being
one class split by concern.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datum_dot.errors import HistoryError
from datum_dot.history.database import Database, to_run
from datum_dot.history.files import METADATA, utc_now, write_json_atomic
from datum_dot.history.index import Index, Row, Session, SqliteIndex
from datum_dot.history.records import StoredRun, check_run_id_prefix
from datum_dot.home import sessionlog
from datum_dot.home.dburl import DatabaseUrl, database_url

if TYPE_CHECKING:
    from datum_dot.history.postgres import PgIndex

HISTORY_FILE = "history.sqlite"
_FROM_SETTINGS: Any = object()


class StoreCore:
    """The index of one `$DATUM_HOME`'s run history and its records (see `RunStore` for the
    arguments)."""

    def __init__(
        self,
        home: Path,
        *,
        clock: Callable[[], datetime] = utc_now,
        timeout: float = 30.0,
        database: DatabaseUrl | None = _FROM_SETTINGS,
    ) -> None:
        self.home = home
        self.path = home / HISTORY_FILE
        self.runs_dir = home / "runs"
        self._clock = clock
        self._db = Database(self.path, timeout=timeout)
        url = database_url(home) if database is _FROM_SETTINGS else database
        self._pg: PgIndex | None = None
        self._index: Index
        if url is None:
            self._index = SqliteIndex(self._db.connect, self.path)
        else:
            # lazy: psycopg loads only for a history kept in PostgreSQL
            from datum_dot.history.postgres import PgIndex

            self._pg = PgIndex(url)
            self._index = self._pg
        self._spool_checked = False

    @property
    def where(self) -> str:
        """Where the index is, for messages: the SQLite file, or `host:port/database`."""
        return self._index.where

    @property
    def in_postgres(self) -> bool:
        """Whether the index is in PostgreSQL (else SQLite under `home`)."""
        return self._pg is not None

    def index_exists(self) -> bool:
        """Whether there is an index to read yet (a fresh SQLite home has none)."""
        return self._index.exists()

    def session(self, *, create: bool) -> contextlib.AbstractContextManager[Session]:
        """One unit of work on the index itself (`copy` reads and writes rows through it).

        Raises:
            HistoryError: The index is unusable or, in PostgreSQL, unreachable.
        """
        return self._session(create=create)

    def to_run(self, row: Row) -> StoredRun:
        """The record a `SELECT * FROM runs` row of this store holds."""
        return self._run(row)

    def clock(self) -> datetime:
        """The current UTC time, by this store's clock."""
        return self._clock()

    def run_dir(self, run_id: str) -> Path:
        """The folder of a run; the id is checked before the path is built.

        Raises:
            HistoryError: `run_id` holds characters a run id never has.
        """
        return self.runs_dir / check_run_id_prefix(run_id)

    def output_lines(self, run_id: str, start: int = 0) -> list[str]:
        """A run's stamped output lines from number `start` on, as the database has them
        (PostgreSQL); the SQLite history reads them from the run's output.log instead.

        Raises:
            HistoryError: The database is unusable or away.
        """
        with self._index.session(create=False) as s:
            rows = s.rows(
                "SELECT line FROM run_lines WHERE run_id = ? AND seq >= ? ORDER BY seq",
                (run_id, start),
            )
        return [row["line"] for row in rows]

    def _select(self, s: Session, run_id: str) -> StoredRun:
        row = s.one("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        if row is None:
            raise self._unknown(run_id)
        return self._run(row)

    def _session(self, *, create: bool) -> contextlib.AbstractContextManager[Session]:
        if self._pg is not None and not self._spool_checked:
            self._spool_checked = True
            # lazy: psycopg loads only for a history kept in PostgreSQL
            from datum_dot.history import pgspool

            if pgspool.pending(self.home):
                for run_id in pgspool.send(self._pg, self.home):
                    self._log("info", "spooled end of run sent to the database", run_id=run_id)
        return self._index.session(create=create)

    def _run(self, row: Row) -> StoredRun:
        """The record a row holds; in PostgreSQL, its folder on its host, its lines from the
        database."""
        run = to_run(row, self.runs_dir)
        return run if self._pg is None else self._run_from(run, row.get("run_dir"))

    def _run_from(self, run: StoredRun, run_dir: str | None = None) -> StoredRun:
        if self._pg is None:
            return run
        return dataclasses.replace(
            run,
            run_dir=Path(run_dir) if run_dir else run.run_dir,
            lines=functools.partial(self.output_lines, run.run_id),
        )

    def _log(self, level: str, message: str, *, run_id: str | None = None, **context: Any) -> None:
        sessionlog.write_event(level, message, run_id=run_id, home=self.home, **context)

    def _unknown(self, run_id: str) -> HistoryError:
        return HistoryError(
            f"no run with id '{run_id}' in {self._index.where}",
            "run `dot logs --last 50` to list recent runs and their ids",
        )


def rewrite_metadata(run: StoredRun) -> None:
    """Rewrite metadata.json from the index, unless someone deleted the run's folder."""
    if run.run_dir.is_dir():
        write_json_atomic(run.run_dir / METADATA, run.to_json())

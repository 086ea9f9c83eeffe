"""The run history in PostgreSQL: connections, migrations, and the output lines of runs.

One connection per thread and database (psycopg 3), opened on first use and kept; one that
breaks (the database restarted, the network dropped) is thrown away and the next session opens
a new one. Not a pool: importing psycopg-pool costs about 100 ms (it loads asyncio), a third of
what `dot logs` may take, and a process here runs at most two sessions at once (its command, and
the thread shipping output lines). The first connection of a process checks the database is
reachable (an unreachable one is bad input: exit 20, naming host and port) and brings the schema
up to date under an advisory lock, so that two hosts starting at once migrate once. A schema
newer than this release is refused with both version numbers.

This module is imported only when `DATUM_DATABASE_URL` (or `database.url`) is set: psycopg is
an optional dependency (the `postgres-store` extra).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.rows import dict_row

from datum_dot.errors import HistoryError
from datum_dot.history.index import Dialect, Params, Row, Session
from datum_dot.history.pgschema import LOCK_KEY, MIGRATIONS, SCHEMA_NAME
from datum_dot.home.dburl import DatabaseUrl

CONNECT_TIMEOUT = 5
"""Seconds to wait for the database to answer a new connection."""
IDLE_CHECK = 2.0
"""Seconds a kept connection may sit unused before it is checked before its next use."""
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class DatabaseUnavailableError(HistoryError):
    """The run history's database cannot be reached (down, unreachable, refusing logins)."""


class DuplicateRowError(HistoryError):
    """A row with this key is already there (a run id another host recorded first)."""


@lru_cache(maxsize=256)
def to_psycopg(sql: str) -> str:
    """SQLite's `?` and `:name` parameters as psycopg's `%s` and `%(name)s`."""
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%").replace("?", "%s"))


class PgSession:
    """A `Session` over one psycopg connection (autocommit; `transaction` groups writes)."""

    dialect: Dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection[Row]) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        """The rows a query returns."""
        cur = self.conn.execute(to_psycopg(sql), params)
        return cur.fetchall() if cur.description else []

    def one(self, sql: str, params: Params = ()) -> Row | None:
        """The first row a query returns, or None."""
        cur = self.conn.execute(to_psycopg(sql), params)
        return cur.fetchone() if cur.description else None

    def run(self, sql: str, params: Params = ()) -> None:
        """Run one statement."""
        self.conn.execute(to_psycopg(sql), params)

    def run_many(self, sql: str, seq: Sequence[Params]) -> None:
        """Run one statement for each set of parameters (pipelined)."""
        if seq:
            with self.conn.cursor() as cur:
                cur.executemany(to_psycopg(sql), seq)

    def transaction(self) -> AbstractContextManager[None]:
        """A transaction around a block."""
        return _transaction(self.conn)


@contextlib.contextmanager
def _transaction(conn: psycopg.Connection[Row]) -> Iterator[None]:
    with conn.transaction():
        yield


class PgIndex:
    """The run history's index in a PostgreSQL database.

    Args:
        url: The database's connection string.
    """

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self.where = url.where()

    def exists(self) -> bool:
        """Always: the database is there or is an error (said when a session opens)."""
        return True

    @contextlib.contextmanager
    def session(self, *, create: bool = False) -> Iterator[Session]:
        """This thread's connection, as a session; database errors become `HistoryError`s.

        Raises:
            DatabaseUnavailableError: The database cannot be reached.
            HistoryError: Its schema is newer than this release, or a statement failed.
        """
        conn = self._connection()
        try:
            yield PgSession(conn)
        except psycopg.OperationalError as e:
            _forget(self.url.conninfo)
            conn.close()
            raise self.unavailable(_first_line(e)) from e
        except psycopg.errors.UniqueViolation as e:
            raise DuplicateRowError(_first_line(e)) from e
        except psycopg.Error as e:
            raise HistoryError(
                f"the run history database at {self.where} refused a statement: {_first_line(e)}",
                "check the role's rights on the datum_dot schema (`dot validate` checks them)",
            ) from e

    def unavailable(self, reason: str) -> DatabaseUnavailableError:
        """The error for a database that cannot be reached."""
        return DatabaseUnavailableError(
            f"cannot reach the run history database at {self.where}: {reason}",
            f"check that PostgreSQL runs there and that {self.url.source} names it; unset "
            "DATUM_DATABASE_URL (and database.url) to keep the history in SQLite",
        )

    def schema_version(self) -> int:
        """The schema version the database holds (0: none yet).

        Raises:
            DatabaseUnavailableError: The database cannot be reached.
        """
        with self.direct() as conn:
            return _version(conn)

    def _connection(self) -> psycopg.Connection[Row]:
        key = (self.url.conninfo, os.getpid())
        conns: dict[tuple[str, int], psycopg.Connection[Row]] = _LOCAL.__dict__.setdefault(
            "conns", {}
        )
        conn = conns.get(key)
        if conn is not None and not conn.closed and not conn.broken and self._alive(conn, key):
            return conn
        try:
            conn = psycopg.connect(self.url.conninfo, **_connect_kwargs())
        except psycopg.OperationalError as e:
            raise self.unavailable(_first_line(e)) from e
        try:
            with _MIGRATED_LOCK:
                if key not in _MIGRATED:
                    self._migrate(conn)
                    _MIGRATED.add(key)
        except BaseException:
            conn.close()
            raise
        conns[key] = conn
        _LOCAL.__dict__.setdefault("used", {})[key] = time.monotonic()
        return conn

    @staticmethod
    def _alive(conn: psycopg.Connection[Row], key: tuple[str, int]) -> bool:
        """Whether a kept connection still works: asked only after `IDLE_CHECK` seconds
        unused (the database may have restarted meanwhile), not before every session."""
        used: dict[tuple[str, int], float] = _LOCAL.__dict__.setdefault("used", {})
        now = time.monotonic()
        if now - used.get(key, now) < IDLE_CHECK:
            used[key] = now
            return True
        try:
            conn.execute("SELECT 1")
        except psycopg.Error:
            conn.close()
            return False
        used[key] = now
        return True

    @contextlib.contextmanager
    def direct(self) -> Iterator[psycopg.Connection[Row]]:
        """One connection of its own, outside the pool (migrations, `dot validate`).

        Raises:
            DatabaseUnavailableError: The database cannot be reached.
        """
        try:
            conn = psycopg.connect(self.url.conninfo, **_connect_kwargs())
        except psycopg.OperationalError as e:
            raise self.unavailable(_first_line(e)) from e
        try:
            yield conn
        except psycopg.OperationalError as e:
            raise self.unavailable(_first_line(e)) from e
        finally:
            conn.close()

    def _migrate(self, conn: psycopg.Connection[Row]) -> None:
        """Bring the schema up to date, once per process, under the advisory lock."""
        try:
            if _version(conn) == len(MIGRATIONS):
                return
            conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
            try:
                self._apply(conn)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        except psycopg.OperationalError as e:
            raise self.unavailable(_first_line(e)) from e
        except psycopg.errors.InsufficientPrivilege as e:
            raise HistoryError(
                f"the run history database at {self.where} refused to create the "
                f"{SCHEMA_NAME} schema: {_first_line(e)}",
                "grant the role CREATE on the database, or create the schema for it once",
            ) from e

    def _apply(self, conn: psycopg.Connection[Row]) -> None:
        """The migrations the database lacks, in one transaction (the advisory lock held)."""
        current = _version(conn)  # again: another host may have migrated meanwhile
        if current > len(MIGRATIONS):
            raise HistoryError(
                f"the run history database at {self.where} has schema version "
                f"{current}, newer than this datum-dot knows ({len(MIGRATIONS)})",
                "upgrade datum-dot on this host: pip install -U 'datum-dot[postgres-store]'",
            )
        with conn.transaction():
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA_NAME}")
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            for number in range(current, len(MIGRATIONS)):
                conn.execute(MIGRATIONS[number])
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (len(MIGRATIONS),))


def _version(conn: psycopg.Connection[Row]) -> int:
    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL AS present", (f"{SCHEMA_NAME}.schema_version",)
    ).fetchone()
    if row is None or not row["present"]:
        return 0
    found = conn.execute("SELECT max(version) AS version FROM schema_version").fetchone()
    return int(found["version"] or 0) if found else 0


def _connect_kwargs() -> dict[str, Any]:
    return {
        "autocommit": True,
        "row_factory": dict_row,
        "connect_timeout": CONNECT_TIMEOUT,
        "options": f"-c search_path={SCHEMA_NAME}",
        "application_name": "datum-dot",
    }


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _forget(conninfo: str) -> None:
    conns = _LOCAL.__dict__.get("conns", {})
    conns.pop((conninfo, os.getpid()), None)


_LOCAL = threading.local()
_MIGRATED: set[tuple[str, int]] = set()
_MIGRATED_LOCK = threading.Lock()


@dataclass(frozen=True)
class Probe:
    """What `dot validate` finds in the run history's database, without changing anything.

    Attributes:
        version: The schema version it holds (0: none yet).
        can_create: Whether the role may create the schema (needed while it is missing).
        can_lock: Whether the role can take (and give back) an advisory lock.
    """

    version: int
    can_create: bool
    can_lock: bool


def probe(index: PgIndex) -> Probe:
    """Look at the database: its schema version, and what the role may do there.

    Raises:
        DatabaseUnavailableError: The database cannot be reached.
    """
    with index.direct() as conn:
        version = _version(conn)
        row = conn.execute(
            "SELECT has_database_privilege(current_database(), 'CREATE') AS can_create,"
            " pg_try_advisory_lock(%s) AS locked",
            (LOCK_KEY + 1,),
        ).fetchone()
        assert row is not None  # noqa: S101 - a SELECT without FROM returns one row
        if row["locked"]:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY + 1,))
        return Probe(version, can_create=bool(row["can_create"]), can_lock=bool(row["locked"]))

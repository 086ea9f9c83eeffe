"""The run history's index, whichever database holds it: SQLite under `$DATUM_HOME`, or PostgreSQL.

`RunStore` speaks to the index through a `Session` (one unit of work): SQL written once, with
`?` and `:name` parameters as SQLite takes them (the PostgreSQL session translates them), rows
read by column name. The few statements the two databases spell differently ask
`Session.dialect`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

from datum_dot.home.sqlitefile import write

Row = Mapping[str, Any]
Params = Sequence[object] | Mapping[str, object]
Dialect = Literal["sqlite", "postgresql"]


class Session(Protocol):
    """One unit of work on the index."""

    dialect: Dialect

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        """The rows a query returns."""

    def one(self, sql: str, params: Params = ()) -> Row | None:
        """The first row a query returns, or None."""

    def run(self, sql: str, params: Params = ()) -> None:
        """Run one statement."""

    def run_many(self, sql: str, seq: Sequence[Params]) -> None:
        """Run one statement for each set of parameters."""

    def transaction(self) -> AbstractContextManager[None]:
        """A write transaction around a block."""


class Index(Protocol):
    """Where the index lives, and sessions on it."""

    where: str
    """What messages call it: the SQLite file's path, or `host:port/database`."""

    def exists(self) -> bool:
        """Whether there is anything to read yet (a fresh SQLite home has no file)."""

    def session(self, *, create: bool) -> AbstractContextManager[Session]:
        """A session; `create` makes the index where it does not exist yet (writers)."""


class SqliteSession:
    """A `Session` over one SQLite connection (see `database.Database.connect`)."""

    dialect: Dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        """The rows a query returns."""
        return self.conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: Params = ()) -> Row | None:
        """The first row a query returns, or None."""
        row: Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def run(self, sql: str, params: Params = ()) -> None:
        """Run one statement."""
        self.conn.execute(sql, params)

    def run_many(self, sql: str, seq: Sequence[Params]) -> None:
        """Run one statement for each set of parameters."""
        self.conn.executemany(sql, seq)

    def transaction(self) -> AbstractContextManager[None]:
        """`BEGIN IMMEDIATE` ... `COMMIT` (see `sqlitefile.write`)."""
        return write(self.conn)


class SqliteIndex:
    """The SQLite history file as an `Index`.

    Args:
        connect: Opens one checked connection (`database.Database.connect`).
        path: The file.
    """

    def __init__(
        self,
        connect: Callable[..., AbstractContextManager[sqlite3.Connection]],
        path: Any,
    ) -> None:
        self._connect = connect
        self.path = path
        self.where = str(path)

    def exists(self) -> bool:
        """Whether the history file exists."""
        return bool(self.path.exists())

    @contextlib.contextmanager
    def session(self, *, create: bool) -> Iterator[Session]:
        """One connection, as a session."""
        with self._connect(create=create) as conn:
            yield SqliteSession(conn)

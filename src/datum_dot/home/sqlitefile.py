"""Opening the tool's SQLite files (the run history, the webhook queue) one way.

Each unit of work opens its own connection (`connect`), with a busy timeout, foreign keys on
and a `synchronous` level the caller chooses; the schema is checked on every connection and
migrated when behind. Migrations are an ordered tuple tracked by `PRAGMA user_version`, never
edited once shipped; `PRAGMA application_id` tells our file from another program's, which is
refused rather than migrated. Migration happens under a file lock, so a fresh file is set to WAL
and created once, not raced. A new file is created private (0600) before SQLite opens it, so the
-wal and -shm files SQLite creates beside it get the same mode; a migrated file is made 0600.

Every write transaction is `BEGIN IMMEDIATE` (`write`): a deferred transaction that reads and
then writes fails at once with SQLITE_BUSY (busy_timeout does not apply) when another process
wrote in between; with IMMEDIATE the write lock is taken first, and waited for.

What a failure is called (a history error, a queue error) is the caller's: it passes a
`FileErrors` that words each one.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from datum_dot.errors import LockTimeoutError
from datum_dot.home.locks import file_lock

Synchronous = Literal["NORMAL", "FULL"]


@dataclass(frozen=True)
class Schema:
    """What a file of one kind holds.

    Attributes:
        application_id: `PRAGMA application_id` of this kind of file.
        migrations: The schema, as ordered migration scripts (version n = the first n applied).
        lock: The file lock's name, in the database's folder, taken while migrating.
    """

    application_id: int
    migrations: tuple[str, ...]
    lock: str


class FileErrors(Protocol):
    """The caller's wording of each way a file can be unusable."""

    def error(self, error: sqlite3.Error) -> Exception:
        """The error for a SQLite error met on the file."""

    def foreign(self) -> Exception:
        """The error for another program's file."""

    def newer(self, version: int) -> Exception:
        """The error for a file whose schema version is newer than this program knows."""

    def locked(self) -> Exception:
        """The error for a migration lock held by another process past the timeout."""


@contextlib.contextmanager
def connect(
    path: Path,
    *,
    schema: Schema,
    errors: FileErrors,
    timeout: float,
    synchronous: Synchronous = "NORMAL",
) -> Iterator[sqlite3.Connection]:
    """One connection for one unit of work, with the schema checked (and migrated).

    Args:
        path: The SQLite file; its folder must exist.
        schema: What the file holds.
        errors: Words the errors raised.
        timeout: Seconds to wait for another process's write lock (and the migration lock).
        synchronous: NORMAL (a commit survives a crash of the process) or FULL (also a crash
            of the machine).

    Yields:
        The connection (rows as `sqlite3.Row`, autocommit: use `write` for transactions); it
        is closed after the block.

    Raises:
        Exception: What `errors` makes of a SQLite error (in the block too), another program's
            file, a newer schema, or a migration lock held too long.
    """
    _create_private(path)
    try:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    except sqlite3.Error as e:
        raise errors.error(e) from e
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        if versions(conn) != (schema.application_id, len(schema.migrations)):
            _migrate(conn, path, schema, errors, timeout)
        yield conn
    except sqlite3.Error as e:
        raise errors.error(e) from e
    finally:
        conn.close()


@contextlib.contextmanager
def write(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction that holds the write lock from its start (see the module docstring)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _create_private(path: Path) -> None:
    # SQLite creates the -wal and -shm files with the mode the database file has when they are
    # created (during the first migration), so a new file is 0600 from the start, not after.
    # If it exists, or cannot be made, sqlite3.connect opens it or says what is wrong.
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    except OSError:
        pass
    # A file an earlier release made with the umask's mode: close it to others now, and its
    # companions, which hold committed rows too.
    for each in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
        with contextlib.suppress(OSError):
            if stat.S_IMODE(each.stat().st_mode) & 0o077:
                each.chmod(0o600)


def versions(conn: sqlite3.Connection) -> tuple[int, int]:
    """The file's application id and schema version (both 0 for a new file)."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    return int(app_id), int(version)


def _migrate(
    conn: sqlite3.Connection, path: Path, schema: Schema, errors: FileErrors, timeout: float
) -> None:
    # One migrator at a time: a fresh file is set to WAL and created once, not raced.
    try:
        with file_lock(path.with_name(schema.lock), timeout=timeout):
            app_id, version = versions(conn)
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app_id != schema.application_id and (app_id, version, tables) != (0, 0, 0):
                raise errors.foreign()
            if version > len(schema.migrations):
                raise errors.newer(version)
            conn.execute("PRAGMA journal_mode = WAL")
            for number in range(version, len(schema.migrations)):
                conn.executescript(
                    f"BEGIN IMMEDIATE; {schema.migrations[number]};"
                    f" PRAGMA user_version = {number + 1};"
                    f" PRAGMA application_id = {schema.application_id}; COMMIT;"
                )
    except LockTimeoutError as e:
        raise errors.locked() from e
    path.chmod(0o600)

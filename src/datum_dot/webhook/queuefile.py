"""The queue's SQLite file: schema, migrations, connections, and errors said plainly.

The same rules as the run history's file (`history/database.py`): WAL, a busy timeout, `BEGIN
IMMEDIATE` writes, migrations as an ordered tuple tracked by `PRAGMA user_version`, and an
`application_id` so another program's file is refused rather than migrated. One difference:
`connect(durable=True)` commits with `synchronous=FULL` (see `queue.py`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from datum_dot.errors import LockTimeoutError
from datum_dot.locks import file_lock
from datum_dot.webhook.errors import QueueError

APPLICATION_ID = 0x646F7471  # "dotq": tells our file from another program's SQLite file
# Ordered; never edit one once shipped: append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL UNIQUE,
        project TEXT NOT NULL,
        env TEXT NOT NULL,
        idempotency_key TEXT,
        fingerprint TEXT NOT NULL,
        request TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done')),
        accepted_at TEXT NOT NULL,
        claimed_at TEXT,
        finished_at TEXT,
        outcome TEXT,
        worker_host TEXT,
        worker_pid INTEGER,
        worker_boot_id TEXT,
        worker_start_ticks INTEGER,
        UNIQUE (project, idempotency_key)
    );
    CREATE INDEX jobs_by_state ON jobs (state, seq);
    CREATE INDEX jobs_by_key ON jobs (state, project, env);
    CREATE TABLE signatures (signature TEXT PRIMARY KEY NOT NULL, expires_at REAL NOT NULL);
    CREATE INDEX signatures_by_expiry ON signatures (expires_at);
    """,
)


class QueueFile:
    """The queue's SQLite file.

    Args:
        path: `$DATUM_HOME/webhook.sqlite`.
        timeout: Seconds to wait for another process's write lock.
    """

    def __init__(self, path: Path, *, timeout: float) -> None:
        self.path = path
        self._timeout = timeout

    @contextlib.contextmanager
    def connect(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One connection for one unit of work, with the schema checked (and migrated).

        Args:
            durable: Commit with `synchronous=FULL` (accepting requests); else NORMAL.

        Raises:
            QueueError: The file is unusable, another program's, newer, or locked too long.
        """
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
        except sqlite3.Error as e:
            raise self.error(e) from e
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            # FULL for accepting requests: one answered 202 is on disk, even if the machine loses
            # power next. NORMAL for the rest (claims, finishes): a commit survives a crash of the
            # process, and one lost to a power cut is settled as a crash is (`recover`; a run id
            # the history has already begun is never begun again).
            conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            if _versions(conn) != (APPLICATION_ID, len(MIGRATIONS)):
                self._migrate(conn)
            yield conn
        except sqlite3.Error as e:
            raise self.error(e) from e
        finally:
            conn.close()

    def _migrate(self, conn: sqlite3.Connection) -> None:
        try:
            with file_lock(self.path.with_name(".webhook.lock"), timeout=self._timeout):
                app_id, version = _versions(conn)
                tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if app_id != APPLICATION_ID and (app_id, version, tables) != (0, 0, 0):
                    raise QueueError(
                        f"{self.path} is not a datum-dot webhook queue (another program's file)",
                        f"move it away (mv {self.path} {self.path}.bak) and start the server again",
                    )
                if version > len(MIGRATIONS):
                    raise QueueError(
                        f"webhook queue {self.path} has schema version {version}, newer than "
                        f"this datum-dot knows ({len(MIGRATIONS)})",
                        "upgrade datum-dot: pip install -U datum-dot",
                    )
                conn.execute("PRAGMA journal_mode = WAL")
                for number in range(version, len(MIGRATIONS)):
                    conn.executescript(
                        f"BEGIN IMMEDIATE; {MIGRATIONS[number]};"
                        f" PRAGMA user_version = {number + 1};"
                        f" PRAGMA application_id = {APPLICATION_ID}; COMMIT;"
                    )
        except LockTimeoutError as e:
            raise QueueError(
                f"webhook queue {self.path} stayed locked for {self._timeout:g}s", "retry"
            ) from e
        self.path.chmod(0o600)

    def error(self, error: sqlite3.Error) -> QueueError:
        """The product error for a SQLite error met on this file."""
        name = getattr(error, "sqlite_errorname", "") or ""
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return QueueError(
                f"webhook queue {self.path} stayed locked for {self._timeout:g}s",
                f"retry; see which process holds it with `fuser -v {self.path}`",
            )
        return QueueError(
            f"cannot use the webhook queue {self.path}: {error}",
            f"check that {self.path.parent} is writable and the disk has room",
        )


@contextlib.contextmanager
def write(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction that holds the write lock from its start."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _versions(conn: sqlite3.Connection) -> tuple[int, int]:
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    return int(app_id), int(version)

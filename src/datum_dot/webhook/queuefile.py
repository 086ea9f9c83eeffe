"""The queue's SQLite file: schema, migrations, connections, and errors said plainly.

Opened as every SQLite file of the tool is (`sqlitefile`): WAL, a busy timeout, `BEGIN IMMEDIATE`
writes, migrations as an ordered tuple tracked by `PRAGMA user_version`, and an `application_id`
so another program's file is refused rather than migrated. One difference from the run history:
`connect(durable=True)` commits with `synchronous=FULL` (see `queue.py`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from datum_dot.home import sqlitefile
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


SCHEMA = sqlitefile.Schema(APPLICATION_ID, MIGRATIONS, lock=".webhook.lock")


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
        # FULL for accepting requests: one answered 202 is on disk, even if the machine loses
        # power next. NORMAL for the rest (claims, finishes): a commit survives a crash of the
        # process, and one lost to a power cut is settled as a crash is (`recover`; a run id
        # the history has already begun is never begun again).
        with sqlitefile.connect(
            self.path,
            schema=SCHEMA,
            errors=self,
            timeout=self._timeout,
            synchronous="FULL" if durable else "NORMAL",
        ) as conn:
            yield conn

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

    def foreign(self) -> QueueError:
        """The error for another program's SQLite file in the queue's place."""
        return QueueError(
            f"{self.path} is not a datum-dot webhook queue (another program's file)",
            f"move it away (mv {self.path} {self.path}.bak) and start the server again",
        )

    def newer(self, version: int) -> QueueError:
        """The error for a queue written by a newer datum-dot."""
        return QueueError(
            f"webhook queue {self.path} has schema version {version}, newer than "
            f"this datum-dot knows ({len(MIGRATIONS)})",
            "upgrade datum-dot: pip install -U datum-dot",
        )

    def locked(self) -> QueueError:
        """The error for the migration lock held too long by another process."""
        return QueueError(
            f"webhook queue {self.path} stayed locked for {self._timeout:g}s", "retry"
        )

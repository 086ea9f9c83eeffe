"""datum_dot.home.sqlitefile on real SQLite files: migrations, refusals, privacy, transactions."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from datum_dot.home import sqlitefile

SCHEMA = sqlitefile.Schema(
    0x74657374,
    (
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
        "ALTER TABLE items ADD COLUMN size INTEGER",
    ),
    lock=".test.lock",
)


class Wording:
    """FileErrors for the tests: each kind of failure is told apart by its message."""

    def error(self, error: sqlite3.Error) -> Exception:
        return RuntimeError(f"sqlite: {error}")

    def foreign(self) -> Exception:
        return RuntimeError("foreign")

    def newer(self, version: int) -> Exception:
        return RuntimeError(f"newer: {version}")

    def locked(self) -> Exception:
        return RuntimeError("locked")


def _connect(path: Path) -> contextlib.AbstractContextManager[sqlite3.Connection]:
    return sqlitefile.connect(path, schema=SCHEMA, errors=Wording(), timeout=5.0)


def test_sqlitefile_new_file_is_migrated_private_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    with sqlitefile.connect(path, schema=SCHEMA, errors=Wording(), timeout=5.0) as conn:
        conn.execute("INSERT INTO items (name, size) VALUES ('a', 1)")
        assert sqlitefile.versions(conn) == (SCHEMA.application_id, 2)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert path.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT name, size FROM items").fetchall() == [("a", 1)]


def test_sqlitefile_older_schema_is_migrated_forward(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA.migrations[0])
    old.execute("PRAGMA user_version = 1")
    old.execute(f"PRAGMA application_id = {SCHEMA.application_id}")
    old.execute("INSERT INTO items (name) VALUES ('kept')")
    old.commit()
    old.close()
    with sqlitefile.connect(
        path, schema=SCHEMA, errors=Wording(), timeout=5.0, synchronous="FULL"
    ) as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert sqlitefile.versions(conn)[1] == 2
        assert [tuple(r) for r in conn.execute("SELECT name, size FROM items")] == [("kept", None)]


def test_sqlitefile_refuses_another_programs_file(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE theirs (x)")
    with pytest.raises(RuntimeError, match=r"^foreign$"), _connect(path):
        pass
    with sqlite3.connect(path) as check:  # untouched
        assert check.execute("PRAGMA user_version").fetchone()[0] == 0


def test_sqlitefile_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    with sqlite3.connect(path) as newer:
        newer.execute(f"PRAGMA application_id = {SCHEMA.application_id}")
        newer.execute("PRAGMA user_version = 3")
    with pytest.raises(RuntimeError, match=r"^newer: 3$"), _connect(path):
        pass


def test_sqlitefile_errors_in_the_block_are_worded_and_write_rolls_back(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"

    def failing_write() -> None:
        with _connect(path) as conn, sqlitefile.write(conn):
            conn.execute("INSERT INTO items (name) VALUES ('lost')")
            conn.execute("SELECT * FROM missing")

    with pytest.raises(RuntimeError, match=r"^sqlite: no such table: missing$"):
        failing_write()
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT count(*) FROM items").fetchone()[0] == 0


def test_sqlitefile_unopenable_path_is_worded(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match=r"^sqlite: unable to open"),
        _connect(tmp_path / "no" / "t.sqlite"),
    ):
        pass


def test_sqlitefile_wal_and_shm_of_a_new_file_are_private(tmp_path: Path) -> None:
    # The -wal file holds committed rows until a checkpoint: it must be as private as the file
    # while connections are open, from the first one on.
    path = tmp_path / "t.sqlite"
    with _connect(path) as conn, _connect(path) as other:
        conn.execute("INSERT INTO items (name) VALUES ('a')")
        other.execute("SELECT count(*) FROM items").fetchone()
        for name in ("t.sqlite", "t.sqlite-wal", "t.sqlite-shm"):
            assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name


def test_sqlitefile_an_existing_open_file_is_made_private(tmp_path: Path) -> None:
    # an earlier release made history.sqlite with the umask's mode (0644)
    path = tmp_path / "t.sqlite"
    with _connect(path) as conn:
        conn.execute("INSERT INTO items (name) VALUES ('a')")
    path.chmod(0o644)
    with _connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 1
        for name in ("t.sqlite", "t.sqlite-wal", "t.sqlite-shm"):
            if (tmp_path / name).exists():
                assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name
    assert path.stat().st_mode & 0o777 == 0o600

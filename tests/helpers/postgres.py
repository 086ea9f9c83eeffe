"""A throwaway PostgreSQL cluster for tests: initdb in a temp folder, 127.0.0.1 only, own port.

The cluster runs as the `postgres` OS user when the tests run as root (initdb refuses root), and
as the current user otherwise. Programs run with list arguments, never through a shell. When no
PostgreSQL programs are installed the fixture fails (it does not skip): CI installs them
(`.ci/run`), and a skipped test would hide that the real-server tests never ran.

`postgres_server` is a session fixture; tests/conftest.py registers this module through
`pytest_plugins`. Under pytest-xdist every worker that runs a test using it starts its own
cluster on its own free port, so workers never share (or stop) each other's server.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from psycopg2 import sql

DATABASE = "shop"
SUPERUSER = "postgres"
OS_USER = "postgres"
START_ATTEMPTS = 3
# Where Debian installs the programs, one folder per major version (not on PATH by default).
LIB_DIR = Path("/usr/lib/postgresql")
INSTALL_HINT = (
    "install PostgreSQL (Debian: apt-get install -y postgresql; .ci/run does this) or put "
    "initdb and pg_ctl on PATH"
)


class PostgresUnavailableError(RuntimeError):
    """The PostgreSQL programs, or the means to run them, are missing or failed."""


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway cluster.

    Attributes:
        host: Always 127.0.0.1.
        port: The TCP port it listens on.
        user: The superuser.
        password: The superuser's password (scram-sha-256; no other login works over TCP).
        database: A database made for the tests (`shop`).
        data_dir: The cluster's data folder.
        bin_dir: The folder of initdb, pg_ctl and postgres.
    """

    host: str
    port: int
    user: str
    password: str
    database: str
    data_dir: Path
    bin_dir: Path

    def connect(self, database: str | None = None) -> Any:
        """Open a psycopg2 connection (autocommit) to `database` (default: the test database)."""
        con = psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database or self.database,
            connect_timeout=10,
        )
        con.autocommit = True
        return con

    def query(
        self, statement: str | sql.Composable, params: tuple[object, ...] = ()
    ) -> list[tuple[Any, ...]]:
        """Run one statement on the test database and return its rows."""
        con = self.connect()
        try:
            with con.cursor() as cur:
                cur.execute(statement, params)
                return list(cur.fetchall()) if cur.description else []
        finally:
            con.close()

    def rows(self, schema: str, table: str, columns: Sequence[str]) -> list[tuple[Any, ...]]:
        """`columns` of every row of `schema.table` (names quoted as identifiers), sorted."""
        statement = sql.SQL("select {} from {}.{} order by 1").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in columns),
            sql.Identifier(schema),
            sql.Identifier(table),
        )
        return self.query(statement)

    def schemas(self) -> set[str]:
        """The schemas of the test database, from information_schema.schemata."""
        return {
            str(r[0]) for r in self.query("select schema_name from information_schema.schemata")
        }

    def relations(self, schema: str) -> dict[str, str]:
        """Table or view name -> `BASE TABLE` / `VIEW`, for the relations in `schema`."""
        rows = self.query(
            "select table_name, table_type from information_schema.tables where table_schema = %s",
            (schema,),
        )
        return {str(name): str(kind) for name, kind in rows}


def find_bin_dir(environ: dict[str, str] | None = None) -> Path:
    """Find the folder holding initdb and pg_ctl: PATH first, then /usr/lib/postgresql/*/bin.

    Raises:
        PostgresUnavailableError: Neither place has both programs.
    """
    path = (environ if environ is not None else os.environ).get("PATH")
    found = [shutil.which(name, path=path) for name in ("initdb", "pg_ctl")]
    if found[0] and found[1]:
        # Debian links the programs into PATH; the real folder also holds `postgres`.
        return Path(found[1]).resolve().parent
    candidates = [p.parent for p in LIB_DIR.glob("*/bin/pg_ctl") if p.is_file()]
    candidates = [c for c in candidates if (c / "initdb").is_file()]
    if not candidates:
        raise PostgresUnavailableError(
            "PostgreSQL is not installed: initdb and pg_ctl are neither on PATH nor under "
            f"{LIB_DIR}/*/bin; {INSTALL_HINT}"
        )
    return max(candidates, key=lambda c: _version_key(c.parent.name))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(base: Path | None = None) -> Iterator[PostgresServer]:
    """Create, start and (always) stop and delete a throwaway cluster with database `shop`.

    Args:
        base: Where to make the cluster's folder (default: the system temp folder). As root, its
            folders must be traversable by the `postgres` user, so not pytest's 0700 tmp_path.

    Yields:
        The running server.

    Raises:
        PostgresUnavailableError: The programs are missing, or initdb or start-up failed.
    """
    bin_dir = find_bin_dir()
    run_as = _run_as_prefix()
    root = Path(tempfile.mkdtemp(prefix="dot-pg-", dir=base))
    try:
        root.chmod(0o700)
        data_dir = root / "data"
        password = secrets.token_urlsafe(24)
        _initdb(bin_dir, run_as, root, data_dir, password)
        try:
            port = _start(bin_dir, run_as, root, data_dir)
            server = PostgresServer(
                host="127.0.0.1",
                port=port,
                user=SUPERUSER,
                password=password,
                database=DATABASE,
                data_dir=data_dir,
                bin_dir=bin_dir,
            )
            admin = server.connect("postgres")
            try:
                with admin.cursor() as cur:
                    cur.execute(f"create database {DATABASE}")
            finally:
                admin.close()
            yield server
        finally:
            # Also after a failed start: a timed-out `pg_ctl start` may leave a server running.
            if (data_dir / "postmaster.pid").exists():
                _pg_ctl(bin_dir, run_as, root, "-D", str(data_dir), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for this test session (or xdist worker); fails if none can start."""
    problem = None
    try:
        with running_server() as server:
            yield server
    except PostgresUnavailableError as e:
        problem = str(e)
    if problem is not None:  # failed outside the handler: one clear message, no chained trace
        pytest.fail(f"the PostgreSQL test cluster failed: {problem}", pytrace=False)


def _run_as_prefix() -> list[str]:
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser") or next(
        (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if Path(p).is_file()), None
    )
    if runuser is None:
        raise PostgresUnavailableError(
            "running as root, and initdb refuses root, but `runuser` (util-linux) is missing"
        )
    try:
        pwd.getpwnam(OS_USER)
    except KeyError as e:
        raise PostgresUnavailableError(
            f"running as root, and initdb refuses root, but there is no `{OS_USER}` OS user; "
            f"{INSTALL_HINT} (the Debian package creates the user)"
        ) from e
    return [runuser, "-u", OS_USER, "--"]


def _initdb(bin_dir: Path, run_as: list[str], root: Path, data_dir: Path, password: str) -> None:
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    if run_as:
        user = pwd.getpwnam(OS_USER)
        for path in (root, pwfile):
            os.chown(path, user.pw_uid, user.pw_gid)
    try:
        _run(
            [
                *run_as,
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                SUPERUSER,
                "-A",
                "scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
            cwd=root,
            what="initdb",
        )
    finally:
        pwfile.unlink(missing_ok=True)


def _start(bin_dir: Path, run_as: list[str], root: Path, data_dir: Path) -> int:
    log = root / "server.log"
    last: PostgresUnavailableError | None = None
    for _ in range(START_ATTEMPTS):
        port = free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        try:
            _pg_ctl(bin_dir, run_as, root, "-D", str(data_dir), "-l", str(log), "-o", options,
                    "-w", "-t", "60", "start")  # fmt: skip
        except PostgresUnavailableError as e:
            # Another process may have taken the port between free_port() and the start.
            last = e
            continue
        return port
    assert last is not None
    raise last


def _pg_ctl(bin_dir: Path, run_as: list[str], root: Path, *args: str) -> None:
    _run([*run_as, str(bin_dir / "pg_ctl"), *args], cwd=root, what="pg_ctl " + args[-1])


def _run(argv: list[str], *, cwd: Path, what: str) -> None:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        log = cwd / "server.log"
        tail = log.read_text(errors="replace")[-2000:] if log.is_file() else ""
        raise PostgresUnavailableError(
            f"{what} failed (exit {result.returncode}): {result.stderr.strip() or result.stdout}"
            + (f"\nserver.log:\n{tail}" if tail else "")
        )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())

"""RunStore: record runs as they happen, and read them back.

A run is recorded as RUNNING (its folder, metadata.json and index row) before dbt starts; its
output is appended line by line (`RunOutput`); `finish` finalizes the row and rewrites
metadata.json. Whenever the history is read, a RUNNING record whose writer is gone (a dead pid, or
another boot: see `liveness`) is marked ABORTED, keeping the output it had.

The index is SQLite under `$DATUM_HOME`, or PostgreSQL when `DATUM_DATABASE_URL` (or
`database.url`) is set (see `dburl`): then the output lines go to the database too (`pgoutput`),
so that any host shows and follows them; a RUNNING record whose writer stopped renewing its
lease is ABORTED from any host; and the end of a run met with the database away is spooled
(`pgspool`) and sent when it is back. The run's folder (artifacts, log files) stays on the host
that ran it; the record names the host and the folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import shutil
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datum_dot.errors import HistoryError
from datum_dot.history import dbartifacts, relations
from datum_dot.history.artifacts import (
    ArtifactFile,
    artifacts_to_json,
    keep_artifacts,
)
from datum_dot.history.database import (
    ABORT,
    COUNT_COLUMNS,
    FINISH,
    INSERT,
    NEWEST_FIRST,
    Database,
    counts_row,
    start_row,
    to_run,
)
from datum_dot.history.files import (
    LOG_FILES,
    METADATA,
    OUTPUT_LOG,
    RESERVE,
    first_failed_node,
    last_change,
    node_counts,
    utc_now,
    write_json_atomic,
    written_since,
)
from datum_dot.history.index import Index, Row, Session, SqliteIndex
from datum_dot.history.output import RunOutput
from datum_dot.history.records import (
    RUN_ID,
    RunEnd,
    RunStart,
    StoredRun,
    check_run_id_prefix,
    hostname,
    iso,
    new_run_id,
    run_time_of,
)
from datum_dot.home import sessionlog
from datum_dot.home.dburl import DatabaseUrl, database_url
from datum_dot.home.liveness import current_boot_id, is_writer_gone
from datum_dot.runs.run import RunStatus

if TYPE_CHECKING:
    from datum_dot.history.postgres import PgIndex

HISTORY_FILE = "history.sqlite"
ABORTED_CLASS = "aborted"
SHORT_ID = 8
"""How many characters of a run id's end name it for people: its 8 random hex digits."""


_FROM_SETTINGS: Any = object()


class RunStore:
    """The run history under one `$DATUM_HOME` (its index in SQLite there, or in PostgreSQL).

    Args:
        home: The `$DATUM_HOME` folder.
        clock: Gives the current UTC time (tests inject one).
        timeout: Seconds to wait for another process's write lock.
        database: The PostgreSQL database to keep the index in; None for SQLite under `home`;
            by default, what `DATUM_DATABASE_URL` or config.yaml's `database.url` says.

    Raises:
        ConfigError: config.yaml's `database.url` holds a password, or config.yaml is unusable.
        HistoryError: `DATUM_DATABASE_URL` is not a PostgreSQL URL.
    """

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

    def shared_lock(
        self,
        parts: tuple[str, ...],
        *,
        name: str,
        timeout: float,
        on_wait: Callable[[str], None] | None = None,
    ) -> contextlib.AbstractContextManager[None]:
        """A lock every host sharing this history respects (a PostgreSQL advisory lock keyed
        by `parts`); nothing for a SQLite history, whose host's file locks are all there is.

        Args:
            parts: What it guards (`("schedule", project, name)`).
            name: What people call it (`the build of prod@main`).
            timeout: Seconds to wait for another host; 0 tries once.
            on_wait: Told, once, which host holds it, before waiting.

        Raises:
            LockTimeoutError: Another host held it past `timeout` (the message names it).
            HistoryError: The database cannot be reached.
        """
        if self._pg is None:
            return contextlib.nullcontext()
        # lazy: psycopg loads only for a history kept in PostgreSQL
        from datum_dot.history.pglocks import advisory_lock

        return advisory_lock(self._pg, parts, name=name, timeout=timeout, on_wait=on_wait)

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

    def begin(self, start: RunStart, *, run_id: str | None = None) -> str:
        """Record a run as RUNNING, before dbt starts: its folder, metadata.json and index row.

        Args:
            start: What the run starts with.
            run_id: The id to record the run under, allocated earlier (the webhook's queue
                hands out ids when it accepts a request); None draws a new one.

        Returns:
            The run id.

        Raises:
            HistoryError: The history file is corrupted, another program's, or unwritable;
                or `run_id` is not a run id, or is already in the history (a run given an id
                is recorded once: this is what keeps a queued run from running twice).
            LockTimeoutError: Another process held the history's write lock too long.
        """
        start = dataclasses.replace(start, started_at=start.started_at or self._clock())
        assert start.started_at is not None  # noqa: S101 - set just above
        if run_id is not None and not RUN_ID.fullmatch(run_id):
            raise HistoryError(
                f"{run_id!r} is not a run id", "run ids look like shop-20240501T060000Z-1a2b3c4d"
            )
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.runs_dir.mkdir(mode=0o700, exist_ok=True)
        while True:  # the folder is made exclusively: an id already taken is drawn again
            chosen = run_id or new_run_id(start.project, start.started_at)
            try:
                (self.runs_dir / chosen).mkdir(mode=0o700)
                break
            except FileExistsError:
                if run_id is not None:
                    raise HistoryError(
                        f"run {run_id} is already in the history: a run is recorded once",
                        f"see it with `dot logs {run_id}`",
                    ) from None
        run_id = chosen
        run = StoredRun(run_id, start, RunStatus.RUNNING, self.run_dir(run_id))
        try:
            for name in LOG_FILES:
                (run.run_dir / name).touch(mode=0o600)
            write_json_atomic(run.run_dir / METADATA, run.to_json())
            if self._pg is not None:
                self._pg_begin(run)
            else:
                with self._session(create=True) as s, s.transaction():
                    s.run(INSERT, start_row(run_id, start))
        except BaseException as e:
            shutil.rmtree(run.run_dir, ignore_errors=True)
            if self._pg is not None and _duplicate(e):  # another host recorded it first
                raise HistoryError(
                    f"run {run_id} is already in the history: a run is recorded once",
                    f"see it with `dot logs {run_id}`",
                ) from None
            raise
        self._log(
            "info", "run started", run_id=run_id, spec=start.spec, command=list(start.command)
        )
        return run_id

    def output(self, run_id: str) -> RunOutput:
        """A writer appending the run's output to its log files (close it, or use `with`).

        Raises:
            HistoryError: `run_id` is not a run id.
            OSError: The run's folder is gone.
        """
        output = RunOutput(self.run_dir(run_id), clock=self._clock)
        output.tee = self.output_tee(run_id)
        return output

    def output_tee(self, run_id: str) -> Callable[[str, list[str]], None] | None:
        """Where a run's stamped output lines go besides its log files: the database's
        `run_lines` when the history is in PostgreSQL (None for SQLite)."""
        if self._pg is None:
            return None
        # lazy: psycopg loads only for a history kept in PostgreSQL
        from datum_dot.history.pgoutput import shipper

        return functools.partial(shipper().add, run_id)

    def finish(self, run_id: str, end: RunEnd) -> StoredRun:
        """Finalize a run's record: status, codes, error, counts; copy run_results.json.

        Args:
            run_id: The id `begin` returned.
            end: How the run ended. Without `counts`, they are read from `end.run_results`,
                which is copied only if it was written after the run started (a file left in
                the target folder by an earlier run is not this run's). A run that did not
                succeed gets its first failed node from that file, and that node's message
                when `end` carries none: dbt reports a failed model there, not as an error.

        Returns:
            The finished record.

        Raises:
            ValueError: `end.status` is RUNNING or PLANNED.
            HistoryError: No such run, or the history file is unusable.
            LockTimeoutError: Another process held the history's write lock too long.
        """
        if end.status in (RunStatus.RUNNING, RunStatus.PLANNED):
            raise ValueError(f"a run cannot finish as {end.status.value}")
        run_dir = self.run_dir(run_id)
        counts = end.counts
        since = run_time_of(run_id)
        failed = None
        kept: dict[str, ArtifactFile] = {}
        if end.run_results and since and run_dir.is_dir():
            kept = self._keep_artifacts(run_id, end.run_results.parent, run_dir, since)
        if end.run_results and since and written_since(end.run_results, since):
            counts = counts or node_counts(end.run_results)
            if end.status is not RunStatus.SUCCESS:
                failed = first_failed_node(end.run_results)
        finished = end.finished_at or self._clock()

        def params(started: datetime) -> dict[str, object]:
            return {
                "run_id": run_id,
                "status": end.status.value,
                "finished_at": iso(finished),
                "duration_seconds": max((finished - started).total_seconds(), 0.0),
                "exit_code": end.exit_code,
                "dbt_exit_code": end.dbt_exit_code,
                "error_class": end.error_class,
                "error_message": end.error_message or (failed.message if failed else None),
                "error_node": end.error_node or (failed.unique_id if failed else None),
                "suggestion": end.suggestion,
                "artifacts": artifacts_to_json(kept),
                **counts_row(counts),
            }

        if self._pg is not None:
            run = self._pg_finish(run_id, params, kept if end.artifacts_to_db else None)
        else:
            with self._session(create=True) as s, s.transaction():
                s.run(FINISH, params(self._select(s, run_id).started_at))
                run = self._select(s, run_id)
        _rewrite_metadata(run)
        self._log(
            "info", f"run finished {run.status.value}", run_id=run_id, exit_code=end.exit_code
        )
        return run

    def get(self, run_id_or_part: str) -> StoredRun:
        """One run, by its id or a unique prefix or suffix of it (`1a2b3c4d`, `shop-20240501`).

        Raises:
            HistoryError: The text is not a run id (checked before any file is read), no run
                matches, several do (the message lists them), or the history file is unusable.
        """
        part = check_run_id_prefix(run_id_or_part)
        if not self._index.exists():
            raise self._unknown(part)
        with self._session(create=False) as s:
            self._abort_stale(s)
            rows = s.rows("SELECT * FROM runs WHERE run_id = ?", (part,))
            rows = rows or s.rows(
                "SELECT * FROM runs WHERE (run_id >= ? AND run_id < ?)"
                " OR substr(run_id, length(run_id) + 1 - ?) = ? ORDER BY run_id LIMIT 11",
                # Every character a run id may hold sorts below DEL: this is a prefix range.
                (part, part + "\x7f", len(part), part),
            )
        if len(rows) == 1:
            return self._run(rows[0])
        if not rows:
            raise self._unknown(part)
        shown = ", ".join(row["run_id"] for row in rows[:10]) + (", ..." if len(rows) > 10 else "")
        raise HistoryError(
            f"run id '{part}' is ambiguous: it matches {shown}",
            f"give more of the id, for example: dot logs {rows[0]['run_id']}",
        )

    def short_ids(self, run_ids: Collection[str]) -> dict[str, str]:
        """The short name of each run for people: the last 8 characters of its id (its random
        hex digits), or the whole id where `get` would find another run by them too.

        Eight characters, not the fewest that are unique today: a name someone noted down keeps
        naming the same run as the history grows.

        Raises:
            HistoryError: The history file is unusable.
        """
        if not run_ids or not self._index.exists():
            return {run_id: run_id for run_id in run_ids}
        shorts = sorted({run_id[-SHORT_ID:] for run_id in run_ids})
        taken: Counter[str] = Counter()
        # SQLite reads a negative start from the end; PostgreSQL has right() (and an index on it)
        tail = f"substr(run_id, -{SHORT_ID})" if self._pg is None else f"right(run_id, {SHORT_ID})"
        with self._session(create=False) as s:
            for chunk in (shorts[i : i + 500] for i in range(0, len(shorts), 500)):
                marks = ", ".join("?" * len(chunk))
                sql = (
                    f"SELECT {tail} AS tail, count(*) AS n FROM runs"  # noqa: S608
                    f" WHERE {tail} IN ({marks}) GROUP BY {tail}"
                )
                taken.update({row["tail"]: row["n"] for row in s.rows(sql, chunk)})
            for short in shorts:  # an id that starts with them (a project named in hex)
                row = s.one(
                    "SELECT count(*) AS n FROM runs WHERE run_id >= ? AND run_id < ?",
                    (short, short + "\x7f"),
                )
                taken[short] += row["n"] if row else 0
        return {
            run_id: run_id[-SHORT_ID:] if taken[run_id[-SHORT_ID:]] == 1 else run_id
            for run_id in run_ids
        }

    def query(
        self,
        *,
        last: int | None = 10,
        status: Collection[RunStatus] | None = None,
        env: str | None = None,
        since: datetime | None = None,
        project: str | None = None,
        schedule: str | None = None,
    ) -> list[StoredRun]:
        """Runs, newest first, filtered.

        Args:
            last: At most this many (None: all).
            status: Only these statuses.
            env: Only runs of this environment.
            since: Only runs started at or after this time.
            project: Only runs of this project.
            schedule: Only runs started by the schedule of this name.

        Returns:
            The matching runs, newest first.

        Raises:
            HistoryError: The history file is unusable.
        """
        if not self._index.exists():
            return []
        where: list[str] = []
        params: list[object] = []
        if status is not None:
            where.append(f"status IN ({', '.join('?' * len(status))})")
            params += [s.value for s in status]
        for column, value in (("env", env), ("project", project), ("schedule", schedule)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            where.append("started_at >= ?")
            params.append(iso(since))
        # Only constant column names and `?` are spliced in; every value is a bound parameter.
        sql = "SELECT * FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "")  # noqa: S608
        sql += f" {NEWEST_FIRST}" + (" LIMIT ?" if last is not None else "")
        params += [last] if last is not None else []
        with self._session(create=False) as s:
            self._abort_stale(s)
            return [self._run(row) for row in s.rows(sql, params)]

    def last_isolated_runs(self, *, project: str, commits: Collection[str]) -> dict[str, StoredRun]:
        """The newest isolated run (one with a ref) of each commit, for `dot builds`.

        Args:
            project: Only runs of this project.
            commits: Full commit hashes.

        Returns:
            Commit -> its newest run; commits without an isolated run are left out.

        Raises:
            HistoryError: The history file is unusable.
        """
        wanted = sorted(set(commits))
        if not wanted or not self._index.exists():
            return {}
        found: dict[str, StoredRun] = {}
        with self._session(create=False) as s:
            self._abort_stale(s)
            for chunk in (wanted[i : i + 500] for i in range(0, len(wanted), 500)):
                marks = ", ".join("?" * len(chunk))
                sql = (
                    "SELECT * FROM runs WHERE project = ? AND ref IS NOT NULL"  # noqa: S608
                    f" AND commit_sha IN ({marks}) {NEWEST_FIRST}"
                )
                for row in s.rows(sql, [project, *chunk]):
                    found.setdefault(row["commit_sha"], self._run(row))
        return found

    def plain_successes(self, *, project: str, env: str, limit: int = 50) -> list[StoredRun]:
        """Successful runs of an environment without a ref (plain, or cron and webhook runs of
        the working tree), newest finished first: the runs that wrote its live schema(s).

        Raises:
            HistoryError: The history file is unusable.
        """
        if not self._index.exists():
            return []
        sql = (
            "SELECT * FROM runs WHERE project = ? AND env = ? AND status = 'SUCCESS'"
            " AND ref IS NULL ORDER BY finished_at DESC, run_id DESC LIMIT ?"
        )
        with self._session(create=False) as s:
            rows = s.rows(sql, (project, env, limit))
        return [self._run(row) for row in rows]

    def last_built(
        self, relation: str, *, env: str | None = None, project: str | None = None
    ) -> tuple[StoredRun, relations.BuiltNode] | None:
        """The newest finished run that built `relation` (`analytics.orders`, a full name, or a
        model's name), and the node's result; None when no kept artifacts name it.

        Runs not yet in the relation index are read first (see `relations.last_built`).

        Raises:
            HistoryError: The history file is unusable.
        """
        if not self._index.exists():
            return None
        with self._session(create=False) as s:
            found = relations.last_built(s, self.runs_dir, relation, env=env, project=project)
        return None if found is None else (self._run_from(found[0]), found[1])

    def artifact(self, run: StoredRun, name: str) -> bytes:
        """The bytes of an artifact kept with a run: its file in the run's folder when that is
        on this host and still what the run wrote, else the copy in the PostgreSQL history
        (`--artifacts-to-db`), checked against the same sha256.

        Raises:
            HistoryError: The run kept no such artifact, or it is neither on this host nor in
                the database, or the database's copy is damaged.
        """
        artifact = run.artifacts.get(name)
        if artifact is None:
            kept = ", ".join(sorted(run.artifacts)) or "none"
            raise HistoryError(
                f"run {run.run_id} kept no {name} (it kept: {kept})",
                f"list them with: dot logs {run.run_id} --artifacts",
            )
        local = dbartifacts.local_copy(run, name)
        if local is not None:
            return local.read_bytes()
        if not artifact.in_db or self._pg is None:
            raise HistoryError(
                f"{name} of run {run.run_id} is not on this host ({run.run_dir / name} on "
                f"{run.start.hostname}) nor in the database",
                f"read it on {run.start.hostname}; keep the artifacts of later runs in the "
                "database with --artifacts-to-db",
            )
        with self._session(create=False) as s:
            return dbartifacts.read(s, run, name)

    def fetch_artifacts(self, run: StoredRun) -> Path:
        """A folder on this host holding the artifacts of `run` the PostgreSQL history keeps
        (`$DATUM_HOME/artifacts/<run_id>/`), written once and reused: dbt's `--state` for a
        run made on another host.

        Raises:
            HistoryError: The history is not in PostgreSQL, or an artifact is missing or
                damaged there.
            OSError: The folder cannot be written.
        """
        if self._pg is None:
            raise HistoryError(
                f"the artifacts of run {run.run_id} are in no database: the history is SQLite",
                f"read them in {run.run_dir}",
            )
        with self._session(create=False) as s:
            return dbartifacts.fetch(s, run, self.home)

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

    # --- private --------------------------------------------------------------------------------

    def _keep_artifacts(
        self, run_id: str, target: Path, run_dir: Path, since: datetime
    ) -> dict[str, ArtifactFile]:
        """Copy the run's artifacts into its folder; a failed copy is logged, never raised."""
        kept, failed = keep_artifacts(target, run_dir, since)
        for line in failed:
            # The copies are a convenience; the record (counted from dbt's own file) is not.
            self._log("warning", line, run_id=run_id)
        return kept

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
            _rewrite_metadata(run)
            self._log("warning", "run marked ABORTED", run_id=run.run_id)
        return [run.run_id for run in aborted]

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

    def _pg_begin(self, run: StoredRun) -> None:
        """Insert a run's record with its folder and first lease (one statement, one round
        trip), and start shipping its lines and renewing its lease."""
        # lazy: psycopg loads only for a history kept in PostgreSQL
        from datum_dot.history.pgoutput import lease_seconds, shipper

        assert self._pg is not None  # noqa: S101 - called for PostgreSQL only
        with self._session(create=True) as s:
            s.run(
                INSERT.replace(") VALUES (", ", run_dir, lease_until) VALUES (").replace(
                    "'RUNNING')", "'RUNNING', :run_dir, now() + make_interval(secs => :lease))"
                ),
                {
                    **start_row(run.run_id, run.start),
                    "run_dir": str(run.run_dir),
                    "lease": lease_seconds(),
                },
            )
        shipper().track(self._pg, run.run_id)

    def _pg_finish(
        self,
        run_id: str,
        params: Callable[[datetime], dict[str, object]],
        to_db: Mapping[str, ArtifactFile] | None = None,
    ) -> StoredRun:
        """Finish a run in PostgreSQL: its last lines, its artifacts `to_db`, then its record;
        spooled to local disk when the database is away (see `pgspool`)."""
        # lazy: psycopg loads only for a history kept in PostgreSQL
        from datum_dot.history import pgspool
        from datum_dot.history.pgoutput import INSERT_LINES, shipper
        from datum_dot.history.postgres import DatabaseUnavailableError

        unsent = shipper().release(run_id)
        # Two round trips: the last lines (pipelined), then the record; duration by the
        # database from the start it holds. Lines sent twice (after an outage) are skipped.
        finish_sql = FINISH.replace(
            ":duration_seconds",
            "greatest(extract(epoch FROM CAST(:finished_ts AS timestamptz)"
            " - CAST(started_at AS timestamptz)), 0)",
        )
        values = params(self._clock())
        values["finished_ts"] = values["finished_at"]
        row: Row | None = None
        try:
            for attempt in (1, 2):  # a kept connection the database dropped fails once
                try:
                    with self._session(create=True) as s:
                        s.run_many(INSERT_LINES, [(run_id, *line) for line in unsent])
                        if to_db:  # before the record that says they are there
                            stored = dbartifacts.store(s, run_id, self.run_dir(run_id), to_db)
                            values["artifacts"] = artifacts_to_json(stored)
                        row = s.one(finish_sql + " RETURNING *", values)
                    break
                except DatabaseUnavailableError:
                    if attempt == 2:
                        raise
            if row is None:
                raise self._unknown(run_id)
            return self._run(row)
        except DatabaseUnavailableError as e:
            row = _row_from_metadata(self.run_dir(run_id))
            if row is None:
                raise
            finish = params(datetime.fromisoformat(str(row["started_at"])))
            pgspool.spool(self.home, run_id, unsent, finish)
            self._log(
                "warning",
                f"the run's end is kept in {self.home / pgspool.SPOOL_DIR} until the database is "
                f"back: {e.message}"
                + (f"; its artifacts are in {self.run_dir(run_id)} only" if to_db else ""),
                run_id=run_id,
            )
            return to_run({**row, **finish}, self.runs_dir)

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

    def _log(self, level: str, message: str, *, run_id: str | None = None, **context: Any) -> None:
        sessionlog.write_event(level, message, run_id=run_id, home=self.home, **context)

    def _unknown(self, run_id: str) -> HistoryError:
        return HistoryError(
            f"no run with id '{run_id}' in {self._index.where}",
            "run `dot logs --last 50` to list recent runs and their ids",
        )


def _duplicate(error: BaseException) -> bool:
    """Whether PostgreSQL refused a row for a key it holds (a history in PostgreSQL only)."""
    # lazy: psycopg loads only for a history kept in PostgreSQL
    from datum_dot.history.postgres import DuplicateRowError

    return isinstance(error, DuplicateRowError)


def _row_from_metadata(run_dir: Path) -> dict[str, Any] | None:
    """A run's start as an index row, from the metadata.json `begin` wrote (None if unreadable)."""
    try:
        data = json.loads((run_dir / METADATA).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    row = dict.fromkeys((*COUNT_COLUMNS, "start_ticks", "artifacts"))
    row.update({k: data.get(k) for k in ("run_id", "project", "spec", "env", "ref", "runtime")})
    row.update({k: data.get(k) for k in ("trigger", "hostname", "pid", "boot_id", "schedule")})
    row.update(
        commit_sha=data.get("commit"),
        command=json.dumps(data.get("command") or []),
        argv=json.dumps(data.get("argv") or []),
        started_at=data.get("started_at"),
        state=json.dumps(data["state"]) if data.get("state") else None,
        error_node=None,
        warm=1 if data.get("warm") else None,
    )
    return row


def _rewrite_metadata(run: StoredRun) -> None:
    """Rewrite metadata.json from the index, unless someone deleted the run's folder."""
    if run.run_dir.is_dir():
        write_json_atomic(run.run_dir / METADATA, run.to_json())

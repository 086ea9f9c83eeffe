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

The store is one class split by concern: `storecore` (the index, sessions, records), `stale`
(ABORTED detection), `reads` (the queries), `prune`, and here the writes (a run's beginning,
output and end, and the locks shared by hosts).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import shutil
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from datum_dot.errors import HistoryError
from datum_dot.history import dbartifacts
from datum_dot.history.artifacts import ArtifactFile, artifacts_to_json, keep_artifacts
from datum_dot.history.database import COUNT_COLUMNS, FINISH, INSERT, counts_row, start_row, to_run
from datum_dot.history.files import (
    LOG_FILES,
    METADATA,
    first_failed_node,
    node_counts,
    write_json_atomic,
    written_since,
)
from datum_dot.history.index import Row
from datum_dot.history.output import RunOutput
from datum_dot.history.prune import RunPruning
from datum_dot.history.reads import RunReads
from datum_dot.history.records import (
    RUN_ID,
    RunEnd,
    RunStart,
    StoredRun,
    iso,
    new_run_id,
    run_time_of,
)
from datum_dot.history.stale import ABORTED_CLASS
from datum_dot.history.storecore import HISTORY_FILE, rewrite_metadata
from datum_dot.runs.run import RunStatus

__all__ = ["ABORTED_CLASS", "HISTORY_FILE", "RunStore"]


class RunStore(RunReads, RunPruning):
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
        rewrite_metadata(run)
        self._log(
            "info", f"run finished {run.status.value}", run_id=run_id, exit_code=end.exit_code
        )
        return run

    def _keep_artifacts(
        self, run_id: str, target: Path, run_dir: Path, since: datetime
    ) -> dict[str, ArtifactFile]:
        """Copy the run's artifacts into its folder; a failed copy is logged, never raised."""
        kept, failed = keep_artifacts(target, run_dir, since)
        for line in failed:
            # The copies are a convenience; the record (counted from dbt's own file) is not.
            self._log("warning", line, run_id=run_id)
        return kept

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
            folder = self.run_dir(run_id)
            pgspool.spool(self.home, run_id, unsent, finish, (folder, to_db) if to_db else None)
            self._log(
                "warning",
                f"the run's end is kept in {self.home / pgspool.SPOOL_DIR} until the database is "
                f"back: {e.message}",
                run_id=run_id,
            )
            return to_run({**row, **finish}, self.runs_dir)


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
        retry_of=data.get("retry_of"),
    )
    return row

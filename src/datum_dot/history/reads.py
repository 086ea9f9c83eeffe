"""Reading the run history: one run by (part of) its id, lists of runs, runs' short ids, the
runs `dot builds`, `--defer ENV` and `dot which` ask for, and a run's kept artifacts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import datetime
from pathlib import Path

from datum_dot.errors import HistoryError
from datum_dot.history import dbartifacts, relations
from datum_dot.history.database import NEWEST_FIRST
from datum_dot.history.records import StoredRun, check_run_id_prefix, iso
from datum_dot.history.stale import StaleRuns
from datum_dot.runs.run import RunStatus

SHORT_ID = 8
"""How many characters of a run id's end name it for people: its 8 random hex digits."""


class RunReads(StaleRuns):
    """The queries of `RunStore`."""

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

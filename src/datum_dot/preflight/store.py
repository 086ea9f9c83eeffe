"""`dot validate`'s check of the run history's store: SQLite under `$DATUM_HOME`, or PostgreSQL.

For PostgreSQL: the database answers, its schema is this release's (or the next run migrates
it), and the role can take advisory locks. Nothing is created or migrated by the check.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from datum_dot.errors import DotError
from datum_dot.home.dburl import URL_VARIABLE, database_url
from datum_dot.preflight.model import Check, Status

NAME = "run history"


def check_history_store(home: Path, environ: Mapping[str, str]) -> Check:
    """Where the run history is kept, and whether it can be used."""
    try:
        url = database_url(home, environ)
    except DotError as e:
        return Check(NAME, Status.FAIL, e.message, e.hint)
    if url is None:
        return Check(NAME, Status.OK, f"SQLite: {home / 'history.sqlite'}")
    # lazy: psycopg loads only for a history kept in PostgreSQL
    from datum_dot.history.pgschema import MIGRATIONS
    from datum_dot.history.postgres import PgIndex, probe

    index = PgIndex(url)
    where = f"PostgreSQL at {index.where} (from {url.source})"
    try:
        found = probe(index)
    except DotError as e:
        return Check(NAME, Status.FAIL, e.message, e.hint)
    latest = len(MIGRATIONS)
    if found.version > latest:
        return Check(
            NAME,
            Status.FAIL,
            f"{where}: schema version {found.version}, newer than this datum-dot knows ({latest})",
            "upgrade datum-dot on this host: pip install -U 'datum-dot[postgres-store]'",
        )
    if not found.can_lock:
        return Check(
            NAME,
            Status.FAIL,
            f"{where}: the role cannot take an advisory lock (another session holds the check's)",
            "retry; if it persists, see pg_locks for advisory locks held by other sessions",
        )
    if found.version < latest and not found.can_create:
        return Check(
            NAME,
            Status.FAIL,
            f"{where}: schema version {found.version} of {latest}, and the role may not create "
            "the datum_dot schema to migrate it",
            "grant the role CREATE on the database, or run the first `dot` command as one that has it",
        )
    if found.version < latest:
        return Check(
            NAME,
            Status.WARN,
            f"{where}: schema version {found.version} of {latest}; the next command migrates it",
            f"nothing to do; or unset {URL_VARIABLE} to keep the history in SQLite",
        )
    return Check(NAME, Status.OK, f"{where}: schema version {latest}, advisory locks work")

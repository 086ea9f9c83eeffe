"""`dot history copy --to TARGET`: copy the run history between SQLite and PostgreSQL.

```
dot history copy --to postgresql://dot@db.internal:5432/datum     this home's SQLite -> PostgreSQL
DATUM_DATABASE_URL=postgresql://... dot history copy --to sqlite  PostgreSQL -> this home's SQLite
```

The source is the history this home uses now (`DATUM_DATABASE_URL` / `database.url`, else
SQLite); the target is the other kind. Copying again copies what changed, nothing twice.
`--artifacts-to-db` stores the runs' artifacts in a PostgreSQL target too; a copy to SQLite
writes the artifacts the database keeps into the runs' folders.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from datum_dot.errors import UsageError

HISTORY_HELP = "the run history's store: copy it between SQLite and PostgreSQL"
SQLITE = "sqlite"


def add_history_parser(sub: argparse._SubParsersAction[Any]) -> None:
    """The `history` sub-command's arguments."""
    cmd = sub.add_parser(
        "history",
        help=HISTORY_HELP,
        description="Copy the run history this home uses (SQLite under $DATUM_HOME, or the "
        "PostgreSQL database DATUM_DATABASE_URL or database.url names) into the other kind of "
        "store: records, output lines, the artifacts' index. Copying again is harmless.",
        epilog="examples: %(prog)s copy --to postgresql://dot@db.internal:5432/datum | "
        "DATUM_DATABASE_URL=postgresql://... %(prog)s copy --to sqlite",
    )
    cmd.add_argument("action", choices=("copy",), help="what to do: copy")
    cmd.add_argument(
        "--to",
        required=True,
        metavar="TARGET",
        help="a postgresql:// URL (its password from PGPASSWORD, ~/.pgpass or a service file), "
        "or `sqlite` for this home's history.sqlite",
    )
    cmd.add_argument(
        "--artifacts-to-db",
        action="store_true",
        help="to PostgreSQL: store the runs' dbt artifacts in the database too (compressed)",
    )
    cmd.add_argument("--json", action="store_true", help="print what was copied as JSON")


def run_history_command(args: argparse.Namespace, *, prog: str) -> int:
    """`dot history copy --to TARGET`: open both stores, copy, say what was copied."""
    # lazy: the history (and psycopg, for PostgreSQL) load only for this command
    from datum_dot.history import RunStore
    from datum_dot.history.copy import copy_history
    from datum_dot.home.dburl import DatabaseUrl
    from datum_dot.home.settings import datum_home

    home = datum_home()
    source = RunStore(home)
    to = str(args.to).strip()
    if to.lower() == SQLITE:
        target = RunStore(home, database=None)
    elif to.startswith(("postgresql://", "postgres://")) or "=" in to:
        target = RunStore(home, database=DatabaseUrl(to, "--to"))
    else:
        raise UsageError(
            f"--to {to!r} is neither a PostgreSQL URL nor `sqlite`",
            f"for example: {prog} history copy --to postgresql://dot@db.internal:5432/datum",
        )
    if target.in_postgres == source.in_postgres:
        kind = "PostgreSQL" if source.in_postgres else "SQLite"
        raise UsageError(
            f"this home's history is already in {kind} ({source.where}): nothing to copy to",
            f"copy to the other kind: {prog} history copy --to "
            + ("sqlite" if source.in_postgres else "postgresql://USER@HOST:5432/DATABASE"),
        )
    if args.artifacts_to_db and not target.in_postgres:
        raise UsageError(
            "--artifacts-to-db stores artifacts in a PostgreSQL target, and this copy is to SQLite",
            "drop it: a copy to SQLite writes the artifacts the database keeps into the runs' "
            "folders anyway",
        )
    with _Bar(enabled=not args.json and sys.stderr.isatty()) as bar:
        result = copy_history(
            source, target, progress=bar.update, artifacts_to_db=args.artifacts_to_db
        )
    if args.json:
        # lazy: rich loads only for what is shown
        from datum_dot.cli.render import print_json

        print_json(
            {
                "from": source.where,
                "to": target.where,
                "runs": result.runs,
                "lines": result.lines,
                "folders": result.folders,
                "artifacts": result.artifacts,
            }
        )
        return 0
    extra = f", {result.lines} output lines" if target.in_postgres else ""
    extra += f", {result.folders} run folders made" if result.folders else ""
    if result.artifacts:
        extra += f", {result.artifacts} artifacts " + (
            "stored in the database" if target.in_postgres else "written from the database"
        )
    runs = f"{result.runs} run" + ("" if result.runs == 1 else "s")
    print(f"copied {runs}{extra} from {source.where} to {target.where}")
    return 0


class _Bar:
    """A progress bar on stderr while the copy runs (on a terminal only)."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Bar:
        if self.enabled:
            # lazy: rich loads only for what is shown
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            from datum_dot.cli.console import make_console

            self._progress = Progress(
                TextColumn("copying runs"),
                BarColumn(),
                MofNCompleteColumn(),
                console=make_console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("copy", total=None)
        return self

    def update(self, done: int, total: int) -> None:
        """Show `done` of `total` records copied."""
        if self._progress is not None:
            self._progress.update(self._task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

"""The dbt commands a run may name, and the options each accepts, as dbt itself says.

dbt's option table only changes with dbt-core's version, and reading it means importing dbt's
command line (a second or more), so it is kept under `$DATUM_HOME/cache/` after the first
time: planning a run, splitting dbt's flags before `--`, and a diff (which runs no dbt command
at all) then read the file instead. The webhook checks a request's command and warms dbt up
through here too, since it never imports the dbt adapter (`dbtcore`) itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from datum_dot import dbtcore

DBT_COMMANDS = dbtcore.DBT_COMMANDS
"""Every dbt command dot runs, with its subcommands (`docs generate`, `source freshness`)."""


@cache
def command_options(command: tuple[str, ...]) -> frozenset[str]:
    """The option strings a dbt command accepts (`--select`, `-s`, `--no-partial-parse`).

    Args:
        command: The command words, such as `("build",)` or `("docs", "generate")`.
    """
    return frozenset(option_arities(command))


def option_arities(command: tuple[str, ...]) -> Mapping[str, str]:
    """How many words each option of a dbt command takes (see `dbtcore.option_arities`): from
    the cache of this dbt-core version, or from dbt itself (then kept for next time).

    Args:
        command: The command words, such as `("build",)` or `("docs", "generate")`.
    """
    path = _cache_file()
    name = " ".join(command)
    tables = _read_tables(path) if path is not None else {}
    if name in tables:
        return tables[name]
    table = dbtcore.option_arities(command)
    if path is not None:
        _write_tables(path, {**tables, name: dict(table)})
    return table


def _cache_file() -> Path | None:
    from datum_dot.home.settings import datum_home

    version = _dbt_core_version()
    return None if version is None else datum_home() / "cache" / f"dbt-options-{version}.json"


@cache
def _dbt_core_version() -> str | None:
    """The installed dbt-core's version (`dbtcore.versions`, from the dist-info folders' names),
    looked up once: a plan asks for every command's table. A process that outlives an upgrade
    (the warm runner) restarts when dbt-core changes."""
    return dbtcore.versions().get("dbt-core")


# The file as last read, by (path, mtime, size): a plan asks for every command's table.
_READ: dict[tuple[str, int, int], dict[str, dict[str, str]]] = {}


def _read_tables(path: Path) -> dict[str, dict[str, str]]:
    try:
        stat = path.stat()
        stamp = (str(path), stat.st_mtime_ns, stat.st_size)
        if stamp in _READ:
            return _READ[stamp]
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: dbt is asked, and the file written again
    if not isinstance(data, dict):
        return {}
    tables = {
        str(command): {str(k): str(v) for k, v in table.items()}
        for command, table in data.items()
        if isinstance(table, dict)
    }
    _READ.clear()
    _READ[stamp] = tables
    return tables


def _write_tables(path: Path, tables: dict[str, dict[str, str]]) -> None:
    from datum_dot.home.privatefiles import make_private_dirs, write_private

    try:
        make_private_dirs(path.parent)
        write_private(path, json.dumps(tables, sort_keys=True).encode())
    except OSError:
        pass  # a read-only or full $DATUM_HOME: dbt is asked again next time, nothing is lost

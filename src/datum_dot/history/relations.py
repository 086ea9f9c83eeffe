"""Which run built a relation: an index of the relations each run built, from its artifacts.

A run's relations are read from the artifacts kept with it (run_results.json says which nodes
ran and how; manifest.json names each node's relation) the first time `dot which` needs them,
and kept in `built_relations`; a run is read once. Only runs that write (build, run, seed,
snapshot, clone) count, and only their models, seeds and snapshots not skipped.

With the history in PostgreSQL, a run another host made is read from the artifacts the database
keeps of it (`--artifacts-to-db`) when its folder is not on this host.

Relations are matched without quotes and case: `analytics.orders` matches
`"warehouse"."analytics"."orders"`; a bare name matches the node's name (`orders`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datum_dot.errors import HistoryError
from datum_dot.history import dbartifacts
from datum_dot.history.artifacts import MANIFEST
from datum_dot.history.database import to_run
from datum_dot.history.files import RUN_RESULTS
from datum_dot.history.index import Session
from datum_dot.history.records import StoredRun
from datum_dot.runs.state import WRITING_RUNS

BUILT_KINDS = ("model.", "seed.", "snapshot.")
_SKIPPED = frozenset({"skipped"})


@dataclass(frozen=True)
class BuiltNode:
    """One relation a run built (or tried to).

    Attributes:
        unique_id: dbt's id of the node (`model.shop.orders`).
        relation: The relation, unquoted and lower case (`warehouse.analytics.orders`).
        name: The node's name (`orders`).
        status: Its status in the run's run_results.json (`success`, `error`).
    """

    unique_id: str
    relation: str
    name: str
    status: str


def normalize(text: str) -> str:
    """A relation name as the index keeps it: no quotes, lower case."""
    return ".".join(part.strip().strip('"`[]').lower() for part in text.split("."))


def match_clause(relation: str) -> tuple[str, tuple[str | int, ...]]:
    """The SQL condition (on `built_relations`) and parameters matching what the user typed."""
    wanted = normalize(relation)
    parts = wanted.split(".")
    if len(parts) == 1:
        return "b.name = ?", (wanted,)
    if len(parts) == 2:
        suffix = "." + wanted
        return (
            "(b.relation = ? OR substr(b.relation, length(b.relation) + 1 - ?) = ?)",
            (wanted, len(suffix), suffix),
        )
    return "b.relation = ?", (wanted,)


def read_built(
    run_dir: Path,
    command: tuple[str, ...],
    load: Callable[[str], dict[str, Any]] | None = None,
) -> list[BuiltNode]:
    """The relations a run built, from its kept artifacts (none when they are missing or bad).

    Args:
        run_dir: The run's folder.
        command: The dbt command words it ran.
        load: Reads one artifact by name as JSON (`{}` when missing or bad); by default from
            `run_dir`.
    """
    if not command or command[0] not in WRITING_RUNS:
        return []
    read = load or (lambda name: _load(run_dir / name))
    results = read(RUN_RESULTS).get("results")
    nodes = read(MANIFEST).get("nodes")
    if not isinstance(results, list) or not isinstance(nodes, dict):
        return []
    built: dict[str, BuiltNode] = {}
    for result in results:
        if not isinstance(result, dict):
            continue
        unique_id = str(result.get("unique_id", ""))
        status = str(result.get("status", "")).lower()
        node = nodes.get(unique_id)
        if (
            not unique_id.startswith(BUILT_KINDS)
            or status in _SKIPPED
            or not isinstance(node, dict)
        ):
            continue
        relation = node.get("relation_name") or ".".join(
            str(node.get(key) or "") for key in ("database", "schema", "alias")
        )
        built[unique_id] = BuiltNode(
            unique_id, normalize(str(relation)), str(node.get("name", "")).lower(), status
        )
    return list(built.values())


def index_run(s: Session, run_id: str, nodes: list[BuiltNode]) -> None:
    """Keep a run's relations in the index and mark it read (inside the caller's transaction)."""
    s.run_many(
        "INSERT INTO built_relations (run_id, unique_id, relation, name, status)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, unique_id) DO UPDATE SET"
        " relation = excluded.relation, name = excluded.name, status = excluded.status",
        [(run_id, n.unique_id, n.relation, n.name, n.status) for n in nodes],
    )
    s.run("UPDATE runs SET relations_indexed = 1 WHERE run_id = ?", (run_id,))


def _reader(s: Session, run: StoredRun) -> Callable[[str], dict[str, Any]]:
    """Reads a run's artifact as JSON: its file on this host, else the copy the PostgreSQL
    history keeps (`--artifacts-to-db`), for a run another host made."""

    def load(name: str) -> dict[str, Any]:
        data = _load(run.run_dir / name)
        artifact = run.artifacts.get(name)
        if data or artifact is None or not artifact.in_db or s.dialect != "postgresql":
            return data
        try:
            found = json.loads(dbartifacts.read(s, run, name))
        except (HistoryError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    return load


def _readable_here(s: Session, run: StoredRun) -> bool:
    """Whether this host can read what the run built: its folder is here, or the PostgreSQL
    history keeps its artifacts. A run another host made is not marked read from here, or that
    host would never index it."""
    if s.dialect != "postgresql" or run.run_dir.is_dir():
        return True
    return any(artifact.in_db for artifact in run.artifacts.values())


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def last_built(
    s: Session,
    runs_dir: Path,
    relation: str,
    *,
    env: str | None = None,
    project: str | None = None,
) -> tuple[StoredRun, BuiltNode] | None:
    """The newest finished run that built `relation`, and the node's result.

    The newest match already indexed is found first; then only runs finished after it that are
    not indexed yet are read, newest first, stopping at the first that built the relation.
    """
    clause, params = match_clause(relation)
    scope, scope_params = "", []
    for column, value in (("env", env), ("project", project)):
        if value is not None:
            scope += f" AND r.{column} = ?"
            scope_params.append(value)
    sql = (
        "SELECT r.*, b.unique_id AS b_id, b.relation AS b_relation, b.name AS b_name,"  # noqa: S608
        f" b.status AS b_status FROM built_relations b JOIN runs r ON r.run_id = b.run_id"
        f" WHERE {clause}{scope} {{extra}} ORDER BY r.finished_at DESC, r.run_id DESC LIMIT 1"
    )
    row = s.one(sql.format(extra=""), [*params, *scope_params])
    after = row["finished_at"] if row is not None else ""
    pending = s.rows(
        "SELECT * FROM runs r WHERE relations_indexed IS NULL AND status != 'RUNNING'"  # noqa: S608
        f" AND artifacts IS NOT NULL AND finished_at > ?{scope}"
        " ORDER BY finished_at DESC, run_id DESC",
        [after, *scope_params],
    )
    for candidate in pending:
        run = to_run(candidate, runs_dir)
        if not _readable_here(s, run):
            continue  # another host's run: that host (or a copy in the database) indexes it
        nodes = read_built(run.run_dir, run.start.command, _reader(s, run))
        with s.transaction():
            index_run(s, run.run_id, nodes)
        found = s.one(sql.format(extra="AND r.run_id = ?"), [*params, *scope_params, run.run_id])
        if found is not None:
            row = found
            break
    if row is None:
        return None
    node = BuiltNode(row["b_id"], row["b_relation"], row["b_name"], row["b_status"])
    return to_run(row, runs_dir), node

"""Parsing a project in process: the nodes a run writes (`parse_targets`) and a selection's graph."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from datum_dot.dbtcore.collector import importing_dbt
from datum_dot.dbtcore.events import level_callback
from datum_dot.dbtcore.guards import INVOKE_LOCK, released_connections, scoped_environ
from datum_dot.outcomes import NodeTarget


def parse_targets(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    on_level: Callable[[str], None] | None = None,
) -> tuple[object, list[NodeTarget]]:
    """Parse a project in process and list where each materialized node would be written.

    Args:
        args: Global and project arguments for `dbt parse` (project, profiles, target, vars, paths).
        env: Environment variables set for the duration of the parse.
        on_level: Called with each dbt event's level, as in `invoke`.

    Returns:
        The manifest (to hand to the run that follows) and the node targets; ephemeral models,
        tests and disabled nodes are left out.

    Raises:
        DbtParseFailed: dbt could not parse the project.
        KeyboardInterrupt: The parse was interrupted (Ctrl-C, or a signal that raises it).
    """
    with importing_dbt():
        from dbt.cli.main import dbtRunner

    # No manifest.json: the run this parse is for writes it (with the same nodes) when it
    # ends, and writing it twice costs a few tenths of a second. partial_parse.msgpack is still
    # written, for the runs after.
    with INVOKE_LOCK, scoped_environ(env or {}), released_connections():
        callbacks = [level_callback(on_level)] if on_level is not None else []
        result = dbtRunner(callbacks=callbacks).invoke(["parse", *args, "--no-write-json"])
    if isinstance(result.exception, KeyboardInterrupt):
        # dbtRunner catches every exception, the interrupt meant for the caller included: a
        # cancelled parse is a cancellation, not a project that fails to parse.
        raise result.exception
    if not result.success or result.result is None:
        raise DbtParseFailed(result.exception)
    manifest: Any = result.result
    targets: list[NodeTarget] = []
    for node in manifest.nodes.values():
        resource_type = str(node.resource_type)
        materialized = getattr(node.config, "materialized", None)
        if resource_type not in {"model", "seed", "snapshot"} or materialized == "ephemeral":
            continue
        if not getattr(node.config, "enabled", True):
            continue
        targets.append(
            NodeTarget(
                unique_id=node.unique_id,
                resource_type=resource_type,
                database=str(node.database or ""),
                schema=str(node.schema or ""),
                path=str(node.original_file_path),
                database_overridden=getattr(node.config, "database", None) is not None,
            )
        )
    return manifest, targets


class DbtParseFailed(Exception):
    """dbt parse failed; `cause` holds dbt's exception, if it gave one."""

    def __init__(self, cause: BaseException | None) -> None:
        super().__init__(str(cause) if cause else "dbt parse failed")
        self.cause = cause


@dataclass(frozen=True)
class GraphNode:
    """One node of a parsed project, as the missing-parents check sees it.

    Attributes:
        unique_id: dbt's id (`model.shop.orders`).
        resource_type: `model`, `seed`, `snapshot`, `test`, ...
        parents: The unique ids it depends on (models, seeds, snapshots, sources).
        database: Where it is written (empty for tests).
        schema: Where it is written.
        identifier: Its relation's name (the alias).
        materialized: Its materialization (`view`, `table`, `ephemeral`, ...).
    """

    unique_id: str
    resource_type: str
    parents: tuple[str, ...]
    database: str
    schema: str
    identifier: str
    materialized: str


@dataclass(frozen=True)
class SelectedGraph:
    """What a dbt command would select, and the project's nodes (sources left out)."""

    selected: frozenset[str]
    nodes: Mapping[str, GraphNode]


def select_graph(
    parse_args: Sequence[str], ls_args: Sequence[str], *, env: Mapping[str, str] | None = None
) -> SelectedGraph:
    """Parse a project (a partial parse, after the isolation check's) and resolve a selection.

    The selection is dbt's own: `dbt ls` on the parsed manifest, with the run's selection
    options. Nothing is printed. The static parser stays off, because this also runs in the
    webhook's warm worker, which must never start its threads (see `warm_parse`).

    Args:
        parse_args: Project, profile, target, vars and path arguments for `dbt parse`.
        ls_args: The same, with the run's selection options, for `dbt ls`.
        env: Environment variables set for the duration.

    Returns:
        The selected unique ids and every node of the manifest.

    Raises:
        DbtParseFailed: dbt could not parse the project or resolve the selection.
        KeyboardInterrupt: The parse was interrupted.
    """
    import json

    with importing_dbt():
        from dbt.cli.main import dbtRunner

    quiet = ["--log-level", "none"]
    with (
        INVOKE_LOCK,
        scoped_environ({**(env or {}), "DBT_STATIC_PARSER": "false"}),
        released_connections(),
    ):
        parsed = dbtRunner().invoke(["parse", *parse_args, "--no-write-json", *quiet])
        if isinstance(parsed.exception, KeyboardInterrupt):
            raise parsed.exception
        if not parsed.success or parsed.result is None:
            raise DbtParseFailed(parsed.exception)
        keys = ["--output", "json", "--output-keys", "unique_id"]
        listed = dbtRunner(manifest=parsed.result).invoke(["ls", *ls_args, *keys, *quiet])  # type: ignore[arg-type]
    if isinstance(listed.exception, KeyboardInterrupt):
        raise listed.exception
    if not listed.success or not isinstance(listed.result, list):
        raise DbtParseFailed(listed.exception)
    selected = frozenset(str(json.loads(line)["unique_id"]) for line in listed.result)
    manifest: Any = parsed.result
    nodes = {
        node.unique_id: GraphNode(
            unique_id=node.unique_id,
            resource_type=str(node.resource_type),
            parents=tuple(getattr(getattr(node, "depends_on", None), "nodes", ()) or ()),
            database=str(getattr(node, "database", "") or ""),
            schema=str(getattr(node, "schema", "") or ""),
            identifier=str(getattr(node, "alias", "") or node.name),
            materialized=str(getattr(node.config, "materialized", "") or ""),
        )
        for node in manifest.nodes.values()
    }
    return SelectedGraph(selected=selected, nodes=nodes)

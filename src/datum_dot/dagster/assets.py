"""`dot_assets`: one Dagster asset per dbt model, seed and snapshot of a pinned commit.

The graph is the manifest of the commit the spec pins (`pinned.py`), so the assets Dagster shows
are those that commit builds, whatever is checked out. Materializing a selection of them runs
`build(spec, select=...)` through the API: one run, at that commit, in its isolated schema,
recorded with trigger `dagster`. Each node dbt built becomes a materialization with the run's
identity as metadata; each test on one asset becomes that asset's check. A node that failed, and
the nodes dbt skipped after it, get no materialization, and the step fails naming them in its
metadata (`failed`, `skipped`), as dagster-dbt's step fails when `dbt build` does: Dagster 1.13
has no public event by which a step fails one of its assets alone.
"""

# mypy: allow-subclassing-any, allow-untyped-decorators
# The main environment type-checks this package without Dagster installed (Dagster's types
# are Any there); scripts/test-dagster checks it against Dagster's own types.

# No `from __future__ import annotations` here: Dagster reads the type of the asset function's
# `context` parameter at definition time and refuses a string.
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg  # type: ignore[import-not-found, unused-ignore]
from dagster import AssetExecutionContext  # type: ignore[import-not-found, unused-ignore]

from datum_dot.api.result import NodeResult, Result
from datum_dot.dagster.graph import DbtAsset, DbtGraph, read_graph
from datum_dot.dagster.pinned import PinnedManifest, pinned_manifest
from datum_dot.dagster.resource import DatumDotResource
from datum_dot.dagster.selection import selected_ids

RESOURCE_KEY = "dot"
RUNTIME_TAG = "datum_dot/runtime"
_BUILT = frozenset({"success"})
_PASSED = frozenset({"pass", "success"})


def dot_assets(
    resource: DatumDotResource,
    spec: str,
    *,
    select: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    name: str | None = None,
    resource_key: str = RESOURCE_KEY,
    group_name: str | None = None,
) -> dg.AssetsDefinition:
    """A multi-asset of the dbt project's models, seeds and snapshots at the commit `spec` pins.

    Args:
        resource: The project and runtime: the graph is read with it now, and the resource
            bound to `resource_key` in the definitions runs the builds.
        spec: `env@ref` (`"prod@v1.2"`, or a full commit hash after @).
        select: dbt's `--select`: only these nodes become assets.
        exclude: dbt's `--exclude`.
        name: The op's name; default `dot_<env>_<short hash>`.
        resource_key: The key the definitions bind a `DatumDotResource` to.
        group_name: The Dagster group of every asset.

    Returns:
        The multi-asset. Its assets depend on each other as in the manifest, and on the
        project's sources by their keys (assets defined elsewhere, or external ones).

    Raises:
        BadInputError: The spec has no ref or does not plan; the selection matches no asset.
        DbtError: The commit could not be parsed.
    """
    project = resource.project()
    pinned = pinned_manifest(project, spec, runtime=resource.runtime)
    graph = read_graph(pinned.manifest)
    chosen = selected_ids(project, pinned, graph, select=select, exclude=exclude,
                          runtime=resource.runtime)  # fmt: skip
    specs = [_asset_spec(graph, graph.assets[uid], pinned, group_name) for uid in chosen]
    check_specs = [
        dg.AssetCheckSpec(check.name, asset=dg.AssetKey(graph.assets[check.asset].key))
        for check in graph.checks.values()
        if check.asset in chosen
    ]
    runtime = resource.runtime_name(spec)
    parallel = resource.supports_parallel_execution(spec)
    op_name = name or f"dot_{_word(pinned.environment or 'default')}_{pinned.commit[:8]}"
    by_key = {graph.assets[uid].key: uid for uid in chosen}
    every = frozenset(by_key)

    @dg.multi_asset(
        name=op_name,
        specs=specs,
        check_specs=check_specs,
        can_subset=True,
        required_resource_keys={resource_key},
        op_tags={RUNTIME_TAG: runtime},
        # the runtime cannot run two dbt commands in one process: one pool slot at a time
        pool=None if parallel else f"datum_dot_{_word(runtime)}",
    )
    def _materialize(context: AssetExecutionContext) -> Iterator[Any]:
        dot: DatumDotResource = getattr(context.resources, resource_key)
        keys = frozenset(tuple(key.path) for key in context.selected_asset_keys)
        if keys == every:
            result = dot.project().build(spec, select=select, exclude=exclude,
                                         runtime=dot.runtime)  # fmt: skip
        else:
            fqns = [f"fqn:{'.'.join(graph.assets[by_key[key]].fqn)}" for key in sorted(keys)]
            result = dot.project().build(spec, select=fqns, runtime=dot.runtime)
        checks = {(tuple(k.asset_key.path), k.name) for k in context.selected_asset_check_keys}
        yield from _events(graph, result, keys, checks)
        if not result.ok:
            raise _failure(graph, result)

    return _materialize


def _asset_spec(
    graph: DbtGraph, asset: DbtAsset, pinned: PinnedManifest, group_name: str | None
) -> dg.AssetSpec:
    deps = [dg.AssetKey(key) for uid in asset.parents if (key := graph.key_of(uid)) is not None]
    metadata: dict[str, Any] = {"dbt/unique_id": asset.unique_id, "dot/spec": pinned.spec,
                                "dot/commit": pinned.commit}  # fmt: skip
    return dg.AssetSpec(
        dg.AssetKey(asset.key),
        deps=deps,
        description=asset.description,
        metadata=metadata,
        skippable=True,
        group_name=group_name,
        kinds={"dbt"},
    )


def _events(
    graph: DbtGraph,
    result: Result,
    keys: frozenset[tuple[str, ...]],
    checks: set[tuple[tuple[str, ...], str]],
) -> Iterator[dg.MaterializeResult[None] | dg.AssetCheckResult]:
    for node in result.nodes:
        asset = graph.assets.get(node.unique_id)
        if asset is not None and asset.key in keys and node.status in _BUILT:
            yield dg.MaterializeResult(asset_key=dg.AssetKey(asset.key),
                                       metadata=node_metadata(result, node))  # fmt: skip
        check = graph.checks.get(node.unique_id)
        if check is None or node.status == "skipped":
            continue
        checked = graph.assets[check.asset].key
        if (checked, check.name) in checks:
            yield dg.AssetCheckResult(
                asset_key=dg.AssetKey(checked),
                check_name=check.name,
                passed=node.status in _PASSED or node.status == "warn",
                severity=dg.AssetCheckSeverity.WARN
                if node.status == "warn"
                else dg.AssetCheckSeverity.ERROR,
                metadata=node_metadata(result, node),
                description=node.message,
            )


def node_metadata(result: Result, node: NodeResult) -> dict[str, Any]:
    """What a materialization or check records: the run's identity and dbt's figures."""
    metadata: dict[str, Any] = {
        "commit": result.commit or "",
        "schema": result.schema or "",
        "run_id": result.run_id or "",
        "dot_logs": f"dot logs {result.run_id}" if result.run_id else "",
        "execution_time": round(node.execution_time, 3),
        "status": node.status,
    }
    if node.rows is not None:
        metadata["rows_affected"] = node.rows
    return metadata


def _failure(graph: DbtGraph, result: Result) -> dg.Failure:
    failed = _ids(result.nodes, {"error", "fail", "runtime error"})
    skipped = _ids(result.nodes, {"skipped"})
    lines = result.errors or [f"dbt failed (exit code {result.exit_code})"]
    metadata: Mapping[str, Any] = {
        "run_id": result.run_id or "",
        "dot_logs": f"dot logs {result.run_id}" if result.run_id else "",
        "failed": [_label(graph, uid) for uid in failed],
        "skipped": [_label(graph, uid) for uid in skipped],
        "exit_code": result.exit_code,
    }
    return dg.Failure(
        description=f"dot build {result.spec} failed: {lines[0]} (dot logs {result.run_id})",
        metadata=metadata,
        allow_retries=False,
    )


def _ids(nodes: Sequence[NodeResult], statuses: set[str]) -> list[str]:
    return [node.unique_id for node in nodes if node.status in statuses]


def _label(graph: DbtGraph, unique_id: str) -> str:
    key = graph.key_of(unique_id)
    return "/".join(key) if key is not None else unique_id


def _word(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text)

"""A dbt manifest read as Dagster sees dbt: assets, their dependencies, sources, checks.

Pure data, no Dagster import: the keys follow dagster-dbt's default translator
(`DagsterDbtTranslator.get_asset_key`), so a team moving from dagster-dbt keeps its lineage:

- `meta.dagster.asset_key` (in `config.meta`, else `meta`) when the node sets one;
- a source: `[source_name, name]`;
- a versioned model: `[alias]`;
- otherwise `[schema, name]` when the node's config sets a schema, else `[name]`.

Models (not ephemeral), seeds and snapshots are assets; an ephemeral model is looked through to
its parents. A test on exactly one asset (its `attached_node`, else its only asset parent) is an
asset check of that asset, named as the test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ASSET_TYPES = frozenset({"model", "seed", "snapshot"})

AssetKey = tuple[str, ...]


@dataclass(frozen=True)
class DbtAsset:
    """One dbt node that is a Dagster asset.

    Attributes:
        unique_id: dbt's id (`model.jaffle_dot.orders`).
        key: Its asset key, as dagster-dbt's default translator makes it.
        resource_type: `model`, `seed` or `snapshot`.
        fqn: dbt's fully qualified name, for `--select fqn:...`.
        parents: The unique ids of the assets and sources it reads.
        description: The node's description, else `dbt model orders`.
        relation: `database.schema.alias` as the manifest names it (before isolation).
    """

    unique_id: str
    key: AssetKey
    resource_type: str
    fqn: tuple[str, ...]
    parents: tuple[str, ...]
    description: str
    relation: str | None


@dataclass(frozen=True)
class DbtCheck:
    """A dbt test that checks one asset.

    Attributes:
        unique_id: The test's id.
        name: The test's name: the check's name.
        asset: The unique id of the asset it checks.
    """

    unique_id: str
    name: str
    asset: str


@dataclass(frozen=True)
class DbtGraph:
    """The assets, sources and checks of one manifest.

    Attributes:
        assets: Each asset, by unique id, in the manifest's order.
        sources: Each source's asset key, by unique id.
        checks: Each test that checks one asset, by unique id.
    """

    assets: dict[str, DbtAsset]
    sources: dict[str, AssetKey]
    checks: dict[str, DbtCheck]

    def key_of(self, unique_id: str) -> AssetKey | None:
        """The asset key of an asset or source, None for any other node."""
        asset = self.assets.get(unique_id)
        if asset is not None:
            return asset.key
        return self.sources.get(unique_id)


def read_graph(manifest: Mapping[str, Any]) -> DbtGraph:
    """The assets, sources and checks of a parsed manifest.json."""
    nodes: Mapping[str, Mapping[str, Any]] = manifest.get("nodes") or {}
    sources: Mapping[str, Mapping[str, Any]] = manifest.get("sources") or {}
    source_keys = {uid: asset_key(props) for uid, props in sources.items()}
    assets: dict[str, DbtAsset] = {}
    for uid, props in nodes.items():
        if is_asset(props):
            parents = _asset_parents(props, nodes, source_keys)
            assets[uid] = DbtAsset(
                unique_id=uid,
                key=asset_key(props),
                resource_type=str(props["resource_type"]),
                fqn=tuple(str(part) for part in props.get("fqn") or ()),
                parents=parents,
                description=str(props.get("description") or "")
                or f"dbt {props['resource_type']} {props.get('name')}",
                relation=_relation(props),
            )
    checks: dict[str, DbtCheck] = {}
    for uid, props in nodes.items():
        if props.get("resource_type") == "test":
            checked = _checked_asset(props, assets)
            if checked is not None:
                checks[uid] = DbtCheck(uid, str(props.get("name") or uid), checked)
    return DbtGraph(assets=assets, sources=source_keys, checks=checks)


def asset_key(props: Mapping[str, Any]) -> AssetKey:
    """The asset key dagster-dbt's default translator gives a node or source."""
    config = props.get("config") or {}
    meta = config.get("meta") or props.get("meta") or {}
    configured = (meta.get("dagster") or {}).get("asset_key")
    if configured:
        return tuple(str(part) for part in configured)
    if props.get("resource_type") == "source":
        return (str(props["source_name"]), str(props["name"]))
    if props.get("version"):
        return (str(props["alias"]),)
    schema = config.get("schema")
    if schema is not None:
        return (str(schema), str(props["name"]))
    return (str(props["name"]),)


def is_asset(props: Mapping[str, Any]) -> bool:
    """A model that is not ephemeral, a seed or a snapshot."""
    kind = props.get("resource_type")
    if kind not in ASSET_TYPES:
        return False
    return not (kind == "model" and (props.get("config") or {}).get("materialized") == "ephemeral")


def _asset_parents(
    props: Mapping[str, Any],
    nodes: Mapping[str, Mapping[str, Any]],
    sources: Mapping[str, AssetKey],
) -> tuple[str, ...]:
    found: list[str] = []
    queue = list(_depends_on(props))
    seen: set[str] = set()
    while queue:
        uid = queue.pop(0)
        if uid in seen:
            continue
        seen.add(uid)
        parent = nodes.get(uid)
        if uid in sources or (parent is not None and is_asset(parent)):
            found.append(uid)
        elif parent is not None and parent.get("resource_type") == "model":
            # an ephemeral model is no asset: its parents are the reader's parents
            queue.extend(_depends_on(parent))
    return tuple(found)


def _checked_asset(props: Mapping[str, Any], assets: Mapping[str, DbtAsset]) -> str | None:
    attached = props.get("attached_node")
    if isinstance(attached, str) and attached in assets:
        return attached
    parents = [uid for uid in _depends_on(props) if uid in assets]
    return parents[0] if len(parents) == 1 else None


def _depends_on(props: Mapping[str, Any]) -> Sequence[str]:
    nodes = (props.get("depends_on") or {}).get("nodes") or []
    return [str(uid) for uid in nodes]


def _relation(props: Mapping[str, Any]) -> str | None:
    parts = [props.get("database"), props.get("schema"), props.get("alias")]
    if all(isinstance(part, str) and part for part in parts):
        return ".".join(str(part) for part in parts)
    return None

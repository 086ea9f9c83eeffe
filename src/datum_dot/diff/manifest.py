"""Level 1 of a diff: nodes added, removed and modified, from two manifest.json files."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datum_dot.errors import BadInputError

RELATION_TYPES = frozenset({"model", "seed", "snapshot"})
"""Resource types a diff compares: the ones dbt writes a relation for."""


@dataclass(frozen=True)
class NodeInfo:
    """What a diff needs of one model, seed or snapshot in a manifest.

    Attributes:
        unique_id: dbt's id (`model.shop.orders`).
        name: The node's name.
        resource_type: `model`, `seed` or `snapshot`.
        checksum: dbt's checksum of the node's file.
        materialized: Its materialization.
        contract: Whether its contract is enforced.
        tests: The names of the data tests attached to it.
        database: Where its relation is.
        schema: Where its relation is.
        identifier: Its relation's name (the alias).
        parents: The unique ids it depends on.
        tags: Its tags.
        path: Its file, relative to the project.
        unique_keys: Each unique key its tests or contract declare, with where it came from,
            in the order a diff tries them.
    """

    unique_id: str
    name: str
    resource_type: str
    checksum: str
    materialized: str
    contract: bool
    tests: frozenset[str]
    database: str
    schema: str
    identifier: str
    parents: tuple[str, ...] = ()
    tags: frozenset[str] = frozenset()
    path: str = ""
    unique_keys: tuple[tuple[tuple[str, ...], str], ...] = ()


@dataclass(frozen=True)
class ManifestChange:
    """One config difference of a node: the field and its value on each side."""

    field: str
    left: object
    right: object


@dataclass(frozen=True)
class NodeChanges:
    """How a node present on both sides differs between the manifests.

    Attributes:
        checksum: dbt's checksum differs (the SQL or seed file changed).
        config: Materialization and contract changes.
        tests_added: Tests only the right side has.
        tests_removed: Tests only the left side has.
    """

    checksum: bool = False
    config: tuple[ManifestChange, ...] = ()
    tests_added: tuple[str, ...] = ()
    tests_removed: tuple[str, ...] = ()

    @property
    def modified(self) -> bool:
        """Whether anything of the node differs."""
        return bool(self.checksum or self.config or self.tests_added or self.tests_removed)


@dataclass(frozen=True)
class Manifest:
    """The relation nodes of one manifest.json, by unique id."""

    path: Path
    nodes: Mapping[str, NodeInfo] = field(default_factory=dict)


def load_manifest(path: Path) -> Manifest:
    """Read a manifest.json and keep its models, seeds and snapshots.

    Raises:
        BadInputError: The file cannot be read or is not a dbt manifest.
    """
    try:
        data = json.loads(path.read_bytes())
        raw_nodes: Mapping[str, Any] = data["nodes"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BadInputError(
            f"{path} is not a readable dbt manifest ({type(e).__name__}: {e})",
            "rebuild that side (dot build SPEC), or pass --build",
        ) from e
    tests: dict[str, set[str]] = {}
    keys: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for node in raw_nodes.values():
        if node.get("resource_type") == "test":
            _attach_test(node, tests, keys)
    nodes = {
        uid: _node_info(node, tests.get(uid, set()), keys.get(uid, []))
        for uid, node in raw_nodes.items()
        if node.get("resource_type") in RELATION_TYPES
        and (node.get("config") or {}).get("enabled", True)
    }
    return Manifest(path=path, nodes=nodes)


def _attach_test(
    node: Mapping[str, Any],
    tests: dict[str, set[str]],
    keys: dict[str, list[tuple[tuple[str, ...], str]]],
) -> None:
    attached = node.get("attached_node") or next(
        iter((node.get("depends_on") or {}).get("nodes") or ()), None
    )
    if not attached:
        return
    tests.setdefault(attached, set()).add(str(node.get("name", "")))
    meta = node.get("test_metadata") or {}
    kwargs = meta.get("kwargs") or {}
    if meta.get("name") == "unique" and kwargs.get("column_name"):
        keys.setdefault(attached, []).append(((str(kwargs["column_name"]),), "unique test"))
    elif meta.get("name") == "unique_combination_of_columns" and kwargs.get(
        "combination_of_columns"
    ):
        columns = tuple(str(c) for c in kwargs["combination_of_columns"])
        keys.setdefault(attached, []).append((columns, "unique_combination_of_columns test"))


def _node_info(
    node: Mapping[str, Any], tests: set[str], keys: list[tuple[tuple[str, ...], str]]
) -> NodeInfo:
    config = node.get("config") or {}
    contract = config.get("contract") or {}
    return NodeInfo(
        unique_id=str(node["unique_id"]),
        name=str(node.get("name", "")),
        resource_type=str(node.get("resource_type", "")),
        checksum=str((node.get("checksum") or {}).get("checksum", "")),
        materialized=str(config.get("materialized", "")),
        contract=bool(contract.get("enforced", False)),
        tests=frozenset(tests),
        database=str(node.get("database") or ""),
        schema=str(node.get("schema") or ""),
        identifier=str(node.get("alias") or node.get("name", "")),
        parents=tuple((node.get("depends_on") or {}).get("nodes") or ()),
        tags=frozenset(str(t) for t in node.get("tags") or ()),
        path=str(node.get("original_file_path", "")),
        unique_keys=(*sorted(keys, key=lambda k: len(k[0])), *_primary_keys(node)),
    )


def _primary_keys(node: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """The contract's primary key: a model-level constraint, else column-level ones."""
    found = [
        (tuple(str(c) for c in constraint["columns"]), "contract primary key")
        for constraint in node.get("constraints") or ()
        if constraint.get("type") == "primary_key" and constraint.get("columns")
    ]
    columns = tuple(
        str(name)
        for name, column in (node.get("columns") or {}).items()
        if any(c.get("type") == "primary_key" for c in column.get("constraints") or ())
    )
    if columns:
        found.append((columns, "contract primary key"))
    return found


def compare_nodes(left: NodeInfo, right: NodeInfo) -> NodeChanges:
    """How a node differs between two manifests: checksum, config and tests."""
    config = tuple(
        ManifestChange(name, a, b)
        for name, a, b in (
            ("materialized", left.materialized, right.materialized),
            ("contract", left.contract, right.contract),
        )
        if a != b
    )
    return NodeChanges(
        checksum=left.checksum != right.checksum,
        config=config,
        tests_added=tuple(sorted(right.tests - left.tests)),
        tests_removed=tuple(sorted(left.tests - right.tests)),
    )

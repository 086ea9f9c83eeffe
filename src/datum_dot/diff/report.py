"""The result of a diff, and its JSON form (`dot diff --json`, schema version 1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from datum_dot.diff.manifest import NodeChanges
from datum_dot.diff.sides import Side

CATEGORIES = ("added", "removed", "modified", "columns", "row-count", "changed-rows")
"""What `--fail-on` can name (with `any`), in the order a summary lists them."""

VERDICTS = ("added", "removed", "modified", "data-changed", "unchanged")
"""How a model is grouped: its code or config changed (`modified`), only its data did
(`data-changed`), or neither."""

JSON_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RelationDiff:
    """Level 2: a relation's columns (from the warehouse's catalog) and row counts.

    Attributes:
        left: The left relation's name, as the adapter renders it.
        right: The right relation's name.
        columns_added: (name, type) of columns only the right side has.
        columns_removed: (name, type) of columns only the left side has.
        columns_retyped: (name, left type, right type).
        rows_left: The left side's row count.
        rows_right: The right side's row count.
    """

    left: str
    right: str
    columns_added: tuple[tuple[str, str], ...] = ()
    columns_removed: tuple[tuple[str, str], ...] = ()
    columns_retyped: tuple[tuple[str, str, str], ...] = ()
    rows_left: int = 0
    rows_right: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready data."""
        return {
            "left": self.left,
            "right": self.right,
            "columns_added": [{"name": n, "type": t} for n, t in self.columns_added],
            "columns_removed": [{"name": n, "type": t} for n, t in self.columns_removed],
            "columns_retyped": [
                {"name": n, "left": a, "right": b} for n, a, b in self.columns_retyped
            ],
            "row_count": {"left": self.rows_left, "right": self.rows_right},
        }


@dataclass(frozen=True)
class RowDiff:
    """Level 3: rows compared in the warehouse.

    Attributes:
        mode: `key` (joined on a unique key) or `whole-row` (rows as multisets).
        key: The key columns (`key` mode).
        key_source: Where the key came from (`--key`, `unique test`, `contract primary key`).
        columns: The columns compared (those both sides have, the key left out).
        only_left: Rows only the left side has (by key; or rows not matched whole).
        only_right: Rows only the right side has.
        changed: Rows whose key is on both sides and some compared value differs (`key` mode).
        changed_by_column: Per compared column, how many of those rows differ in it.
        samples: Up to `--sample` example rows of each kind: `only_left` and `only_right`
            rows as column -> value, `changed` rows as `key` and `columns` (column -> left,
            right, for the columns that differ).
    """

    mode: str
    key: tuple[str, ...] = ()
    key_source: str = ""
    columns: tuple[str, ...] = ()
    only_left: int = 0
    only_right: int = 0
    changed: int = 0
    changed_by_column: Mapping[str, int] = field(default_factory=dict)
    samples: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def differs(self) -> bool:
        """Whether any row differs."""
        return bool(self.only_left or self.only_right or self.changed)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready data."""
        return {
            "mode": self.mode,
            "key": list(self.key),
            "key_source": self.key_source or None,
            "columns": list(self.columns),
            "only_left": self.only_left,
            "only_right": self.only_right,
            "changed": self.changed if self.mode == "key" else None,
            "changed_by_column": dict(self.changed_by_column),
            "samples": {k: list(v) for k, v in self.samples.items()},
        }


@dataclass(frozen=True)
class ModelDiff:
    """Everything a diff found about one model, seed or snapshot.

    Attributes:
        unique_id: dbt's id.
        name: Its name.
        resource_type: `model`, `seed` or `snapshot`.
        presence: `both`, `added` (right only) or `removed` (left only).
        changes: Level 1 (for `both`).
        relation: Level 2, when both relations exist and were compared.
        rows: Level 3, when rows were compared.
        notes: What people should know (a fallback to whole-row comparison, a cast to text,
            a relation missing from the warehouse).
    """

    unique_id: str
    name: str
    resource_type: str
    presence: str
    changes: NodeChanges = field(default_factory=NodeChanges)
    relation: RelationDiff | None = None
    rows: RowDiff | None = None
    notes: tuple[str, ...] = ()

    @property
    def categories(self) -> tuple[str, ...]:
        """The `--fail-on` categories this model shows, in `CATEGORIES` order."""
        found: set[str] = set()
        if self.presence != "both":
            found.add(self.presence)
        if self.changes.modified:
            found.add("modified")
        rel = self.relation
        if rel is not None and (rel.columns_added or rel.columns_removed or rel.columns_retyped):
            found.add("columns")
        if rel is not None and rel.rows_left != rel.rows_right:
            found.add("row-count")
        if self.rows is not None and self.rows.differs:
            found.add("changed-rows")
        return tuple(c for c in CATEGORIES if c in found)

    @property
    def verdict(self) -> str:
        """Which group of `VERDICTS` the model is shown in."""
        if self.presence != "both":
            return self.presence
        if self.changes.modified:
            return "modified"
        return "data-changed" if self.categories else "unchanged"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready data."""
        changes = self.changes
        return {
            "unique_id": self.unique_id,
            "name": self.name,
            "resource_type": self.resource_type,
            "verdict": self.verdict,
            "categories": list(self.categories),
            "manifest": {
                "checksum_changed": changes.checksum,
                "config": [
                    {"field": c.field, "left": c.left, "right": c.right} for c in changes.config
                ],
                "tests_added": list(changes.tests_added),
                "tests_removed": list(changes.tests_removed),
            },
            "relation": None if self.relation is None else self.relation.to_json(),
            "rows": None if self.rows is None else self.rows.to_json(),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class DiffResult:
    """A whole diff: both sides, every selected model, and what `--fail-on` matched.

    Attributes:
        left: The left side.
        right: The right side.
        adapter: The warehouse's adapter type ("" when the warehouse was not asked).
        models: One entry per selected node, by name.
        levels: Which levels ran (`manifest`, `relation`, `rows`).
        fail_on: The categories `--fail-on` named.
        run_id: The diff's run in the history, where it was recorded.
        warnings: What the diff could not do (a history it could not write).
    """

    left: Side
    right: Side
    adapter: str
    models: tuple[ModelDiff, ...]
    levels: tuple[str, ...]
    fail_on: frozenset[str] = frozenset()
    run_id: str | None = None
    warnings: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        """How many models show each category, and how many fall in each verdict."""
        found = {c: sum(c in m.categories for m in self.models) for c in CATEGORIES}
        verdicts = {v: sum(m.verdict == v for m in self.models) for v in VERDICTS}
        return {**found, **{f"verdict:{v}": n for v, n in verdicts.items()}}

    @property
    def failed_on(self) -> tuple[str, ...]:
        """The `--fail-on` categories that occurred (all found ones, for `any`)."""
        found = [c for c in CATEGORIES if any(c in m.categories for m in self.models)]
        if "any" in self.fail_on:
            return tuple(found)
        return tuple(c for c in found if c in self.fail_on)

    def to_json(self) -> dict[str, Any]:
        """The diff as JSON-ready data (what `--json` prints; schema documented in the README)."""
        counts = self.counts()
        return {
            "schema_version": JSON_SCHEMA_VERSION,
            "left": self.left.to_json(),
            "right": self.right.to_json(),
            "adapter": self.adapter or None,
            "levels": list(self.levels),
            "counts": {c: counts[c] for c in CATEGORIES},
            "verdicts": {v: counts[f"verdict:{v}"] for v in VERDICTS},
            "fail_on": sorted(self.fail_on),
            "failed_on": list(self.failed_on),
            "run_id": self.run_id,
            "models": [m.to_json() for m in self.models],
            "warnings": list(self.warnings),
        }

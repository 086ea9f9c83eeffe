"""Levels 2 and 3 of a diff for one model: columns and row counts, then rows, in the warehouse."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from datum_dot.dbtcore import Warehouse, WarehouseColumn
from datum_dot.diff import queries
from datum_dot.diff.manifest import NodeInfo
from datum_dot.diff.queries import Compared
from datum_dot.diff.report import RelationDiff, RowDiff

# Types with no equality operator in PostgreSQL (`json`, geometric types): compared as text.
_TEXT_ONLY = frozenset({"json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle"})


@dataclass(frozen=True)
class RowRequest:
    """What level 3 is asked: the key to join on, if any, and how many samples to show.

    Attributes:
        key: `--key` columns; empty to take the model's declared unique key.
        sample: Example rows of each kind.
    """

    key: tuple[str, ...] = ()
    sample: int = 5


@dataclass(frozen=True)
class DataDiff:
    """What levels 2 and 3 found for one model, and the notes they left."""

    relation: RelationDiff | None
    rows: RowDiff | None
    notes: tuple[str, ...]


def compare_data(
    warehouse: Warehouse,
    left: NodeInfo,
    right: NodeInfo,
    *,
    rows: RowRequest | None,
) -> DataDiff:
    """Compare a model's two relations: columns and row counts, then (unless `rows` is None)
    its rows.

    Raises:
        WarehouseQueryFailed: The warehouse failed a query.
    """
    lname = warehouse.relation_name(left.database, left.schema, left.identifier)
    rname = warehouse.relation_name(right.database, right.schema, right.identifier)
    lcols = warehouse.columns(left.database, left.schema, left.identifier)
    rcols = warehouse.columns(right.database, right.schema, right.identifier)
    missing = [f"{name} is not in the warehouse" for name, cols in ((lname, lcols), (rname, rcols))
               if not cols]  # fmt: skip
    if missing:
        return DataDiff(None, None, tuple(missing))
    counts = warehouse.query(queries.row_counts(lname, rname))[0]
    relation = _relation(lname, rname, lcols, rcols, int(_num(counts[0])), int(_num(counts[1])))
    if rows is None:
        return DataDiff(relation, None, ())
    found, notes = _rows(warehouse, lname, rname, lcols, rcols, left, right, rows)
    return DataDiff(relation, found, notes)


def _relation(
    lname: str,
    rname: str,
    lcols: Sequence[WarehouseColumn],
    rcols: Sequence[WarehouseColumn],
    nleft: int,
    nright: int,
) -> RelationDiff:
    lmap = {c.name.lower(): c for c in lcols}
    rmap = {c.name.lower(): c for c in rcols}
    return RelationDiff(
        left=lname,
        right=rname,
        columns_added=tuple((c.name, c.data_type) for c in rcols if c.name.lower() not in lmap),
        columns_removed=tuple((c.name, c.data_type) for c in lcols if c.name.lower() not in rmap),
        columns_retyped=tuple(
            (c.name, c.data_type, rmap[c.name.lower()].data_type)
            for c in lcols
            if c.name.lower() in rmap
            and c.data_type.lower() != rmap[c.name.lower()].data_type.lower()
        ),
        rows_left=nleft,
        rows_right=nright,
    )


def _rows(
    warehouse: Warehouse,
    lname: str,
    rname: str,
    lcols: Sequence[WarehouseColumn],
    rcols: Sequence[WarehouseColumn],
    left: NodeInfo,
    right: NodeInfo,
    request: RowRequest,
) -> tuple[RowDiff, tuple[str, ...]]:
    notes: list[str] = []
    common = _common(warehouse, lcols, rcols, notes)
    by_name = {c.name.lower(): c for c in common}
    key, source = _key(request, left, right)
    if key:
        absent = [k for k in key if k.lower() not in by_name]
        if absent:
            notes.append(f"key column {', '.join(absent)} ({source}) is missing on a side: "
                         "rows compared whole")  # fmt: skip
            key = ()
    if key:
        kcols = [by_name[k.lower()] for k in key]
        dupes = warehouse.query(
            queries.duplicate_keys(lname, rname, [c.left for c in kcols], [c.right for c in kcols])
        )[0]
        sides = [s for s, n in zip(("left", "right"), dupes, strict=True) if _num(n)]
        if sides:
            notes.append(f"key ({', '.join(key)}, {source}) is not unique on the "
                         f"{' and '.join(sides)} side: rows compared whole")  # fmt: skip
            key = ()
    if not key:
        return _whole(warehouse, lname, rname, common, request.sample), tuple(notes)
    kcols = [by_name[k.lower()] for k in key]
    cols = [c for c in common if c.name.lower() not in {k.lower() for k in key}]
    return _keyed(warehouse, lname, rname, kcols, cols, source, request.sample), tuple(notes)


def _common(
    warehouse: Warehouse,
    lcols: Sequence[WarehouseColumn],
    rcols: Sequence[WarehouseColumn],
    notes: list[str],
) -> list[Compared]:
    rmap = {c.name.lower(): c for c in rcols}
    found: list[Compared] = []
    for col in lcols:
        other = rmap.get(col.name.lower())
        if other is None:
            continue
        lq, rq = warehouse.quote(col.name), warehouse.quote(other.name)
        ltype, rtype = col.data_type.lower(), other.data_type.lower()
        if ltype != rtype or ltype in _TEXT_ONLY:
            why = f"{col.data_type} and {other.data_type}" if ltype != rtype else col.data_type
            notes.append(f"column {col.name} ({why}) compared as text")
            lq, rq = f"cast({lq} as text)", f"cast({rq} as text)"
        found.append(Compared(col.name, lq, rq))
    return found


def _key(request: RowRequest, left: NodeInfo, right: NodeInfo) -> tuple[tuple[str, ...], str]:
    if request.key:
        return request.key, "--key"
    for node in (right, left):
        if node.unique_keys:
            return node.unique_keys[0]
    return (), ""


def _keyed(
    warehouse: Warehouse,
    lname: str,
    rname: str,
    key: Sequence[Compared],
    cols: Sequence[Compared],
    source: str,
    sample: int,
) -> RowDiff:
    counts = [
        int(_num(v)) for v in warehouse.query(queries.keyed_counts(lname, rname, key, cols))[0]
    ]
    samples: dict[str, list[dict[str, Any]]] = {"only_left": [], "only_right": [], "changed": []}
    if sample > 0 and any(counts[:3]):
        query = queries.keyed_samples(lname, rname, key, cols, sample)
        for row in warehouse.query(query):
            samples[str(row[0])].append(_keyed_sample(str(row[0]), row[1:], key, cols))
    return RowDiff(
        mode="key",
        key=tuple(k.name for k in key),
        key_source=source,
        columns=tuple(c.name for c in cols),
        only_left=counts[0],
        only_right=counts[1],
        changed=counts[2],
        changed_by_column={c.name: n for c, n in zip(cols, counts[3:], strict=True) if n},
        samples=samples,
    )


def _keyed_sample(
    kind: str, values: Sequence[object], key: Sequence[Compared], cols: Sequence[Compared]
) -> dict[str, Any]:
    keys = {k.name: _plain(v) for k, v in zip(key, values, strict=False)}
    pairs = values[len(key) :]
    lefts, rights = pairs[0::2], pairs[1::2]
    if kind == "only_left":
        return {**keys, **{c.name: _plain(v) for c, v in zip(cols, lefts, strict=True)}}
    if kind == "only_right":
        return {**keys, **{c.name: _plain(v) for c, v in zip(cols, rights, strict=True)}}
    changed = {
        c.name: {"left": _plain(a), "right": _plain(b)}
        for c, a, b in zip(cols, lefts, rights, strict=True)
        if _plain(a) != _plain(b)
    }
    return {"key": keys, "columns": changed}


def _whole(
    warehouse: Warehouse, lname: str, rname: str, cols: Sequence[Compared], sample: int
) -> RowDiff:
    counts = warehouse.query(queries.whole_row_counts(lname, rname, cols))[0]
    only_left, only_right = int(_num(counts[0])), int(_num(counts[1]))
    samples: dict[str, list[dict[str, Any]]] = {"only_left": [], "only_right": []}
    if sample > 0 and (only_left or only_right):
        for row in warehouse.query(queries.whole_row_samples(lname, rname, cols, sample)):
            samples[str(row[0])].append(
                {c.name: _plain(v) for c, v in zip(cols, row[1:], strict=True)}
            )
    return RowDiff(
        mode="whole-row",
        columns=tuple(c.name for c in cols),
        only_left=only_left,
        only_right=only_right,
        samples=samples,
    )


def _num(value: object) -> int:
    if isinstance(value, int | float | Decimal):
        return int(value)
    return int(str(value))


def _plain(value: object) -> Any:
    """A sample value as JSON has it: numbers as numbers, dates as ISO text, the rest as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    return str(value)

"""The SQL of a diff's levels 2 and 3, for DuckDB and PostgreSQL.

Every identifier is quoted with the adapter's quoting (`quote`); the columns of the joined
rows get positional aliases (`k0`, `l0`, `r0`) so that no user name needs escaping twice.
Only aggregates and a few sample rows come back: the rows are compared in the warehouse.
"""

# Queries are built from relation names and identifiers the adapter rendered and quoted, and
# positional aliases; no value is interpolated.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

SUPPORTED_ADAPTERS = ("duckdb", "postgres")
"""Adapters whose SQL the diff speaks (full outer join, `filter`, `is distinct from`, `except
all`, window functions)."""

Quote = Callable[[str], str]


@dataclass(frozen=True)
class Compared:
    """How one column is read on each side: its quoted name, cast to text when needed."""

    name: str
    left: str
    right: str


def row_counts(left: str, right: str) -> str:
    """Both sides' row counts."""
    return f"select (select count(*) from {left}), (select count(*) from {right})"


def duplicate_keys(left: str, right: str, key_left: Sequence[str], key_right: Sequence[str]) -> str:
    """How many key values occur more than once on each side."""

    def dupes(relation: str, key: Sequence[str]) -> str:
        cols = ", ".join(key)
        return (
            f"(select count(*) from (select {cols} from {relation} group by {cols} "
            "having count(*) > 1) d)"
        )

    return f"select {dupes(left, key_left)}, {dupes(right, key_right)}"


def _joined(left: str, right: str, key: Sequence[Compared], cols: Sequence[Compared]) -> str:
    l_cols = [f"{k.left} as k{i}" for i, k in enumerate(key)]
    l_cols += [f"{c.left} as c{i}" for i, c in enumerate(cols)]
    r_cols = [f"{k.right} as k{i}" for i, k in enumerate(key)]
    r_cols += [f"{c.right} as c{i}" for i, c in enumerate(cols)]
    on = " and ".join(f"l.k{i} = r.k{i}" for i in range(len(key)))
    out = ["l.dot_in as li", "r.dot_in as ri"]
    out += [f"coalesce(l.k{i}, r.k{i}) as k{i}" for i in range(len(key))]
    out += [f"l.c{i} as l{i}, r.c{i} as r{i}" for i in range(len(cols))]
    return (
        f"with l as (select {', '.join([*l_cols, '1 as dot_in'])} from {left}), "
        f"r as (select {', '.join([*r_cols, '1 as dot_in'])} from {right}), "
        f"j as (select {', '.join(out)} from l full outer join r on {on})"
    )


def _differs(count: int) -> str:
    return " or ".join(f"l{i} is distinct from r{i}" for i in range(count)) or "false"


def keyed_counts(left: str, right: str, key: Sequence[Compared], cols: Sequence[Compared]) -> str:
    """Rows only left, only right, changed, and changed per column, joined on the key."""
    both = "li is not null and ri is not null"
    parts = [
        "count(*) filter (where ri is null)",
        "count(*) filter (where li is null)",
        f"count(*) filter (where {both} and ({_differs(len(cols))}))",
        *(
            f"count(*) filter (where {both} and l{i} is distinct from r{i})"
            for i in range(len(cols))
        ),
    ]
    return f"{_joined(left, right, key, cols)} select {', '.join(parts)} from j"


def keyed_samples(
    left: str, right: str, key: Sequence[Compared], cols: Sequence[Compared], limit: int
) -> str:
    """Up to `limit` rows of each kind: kind, the key, then each column's left and right."""
    kind = (
        "case when ri is null then 'only_left' when li is null then 'only_right' else 'changed' end"
    )
    keys = ", ".join(f"k{i}" for i in range(len(key)))
    values = [f"l{i}, r{i}" for i in range(len(cols))]
    picked = ", ".join(["dot_kind", keys, *values])
    return (
        f"{_joined(left, right, key, cols)}, "
        f"d as (select {kind} as dot_kind, j.* from j "
        f"where ri is null or li is null or {_differs(len(cols))}), "
        f"s as (select d.*, row_number() over (partition by dot_kind order by {keys}) as dot_rn "
        "from d) "
        f"select {picked} from s where dot_rn <= {int(limit)} order by dot_kind, dot_rn"
    )


def whole_row_counts(left: str, right: str, cols: Sequence[Compared]) -> str:
    """Rows of each side that the other lacks, comparing whole rows as multisets."""
    lsel = ", ".join(c.left for c in cols)
    rsel = ", ".join(c.right for c in cols)
    return (
        f"select (select count(*) from (select {lsel} from {left} except all "
        f"select {rsel} from {right}) a), "
        f"(select count(*) from (select {rsel} from {right} except all "
        f"select {lsel} from {left}) b)"
    )


def whole_row_samples(left: str, right: str, cols: Sequence[Compared], limit: int) -> str:
    """Up to `limit` rows of each side that the other lacks, tagged with the side."""
    lsel = ", ".join(c.left for c in cols)
    rsel = ", ".join(c.right for c in cols)
    return (
        f"select * from (select 'only_left' as dot_kind, a.* from (select {lsel} from {left} "
        f"except all select {rsel} from {right}) a limit {int(limit)}) x "
        f"union all select * from (select 'only_right' as dot_kind, b.* from (select {rsel} "
        f"from {right} except all select {lsel} from {left}) b limit {int(limit)}) y"
    )

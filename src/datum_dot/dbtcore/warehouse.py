"""Read-only questions to a profile's warehouse through dbt's adapter (for `dot diff`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datum_dot.dbtcore.guards import INVOKE_LOCK, released_connections, silenced_events
from datum_dot.dbtcore.runtimeconfig import runtime_config


@dataclass(frozen=True)
class WarehouseIdentity:
    """Which warehouse a profile's target connects to, rendered without connecting.

    Attributes:
        adapter_type: The profile's `type:` (`duckdb`, `postgres`).
        database: The target's database, as dbt rendered it.
        location: Where the warehouse is (dbt's `unique_field`: a DuckDB file, a host name).
        schema: The target's schema.
    """

    adapter_type: str
    database: str
    location: str
    schema: str


@dataclass(frozen=True)
class WarehouseColumn:
    """One column of a relation, from the warehouse's catalog: its name and data type."""

    name: str
    data_type: str


class Warehouse:
    """An open adapter on one profile's target, for read-only questions (`open_warehouse`)."""

    def __init__(self, adapter: Any) -> None:
        self._adapter = adapter

    @property
    def adapter_type(self) -> str:
        """The adapter's type (`duckdb`, `postgres`)."""
        return str(self._adapter.type())

    def quote(self, identifier: str) -> str:
        """An identifier quoted as the adapter quotes it."""
        return str(self._adapter.quote(identifier))

    def relation_name(self, database: str, schema: str, identifier: str) -> str:
        """A relation's fully qualified name, rendered by the adapter's Relation class."""
        relation = self._adapter.Relation.create(
            database=database or None, schema=schema, identifier=identifier
        )
        return str(relation.render())

    def columns(self, database: str, schema: str, identifier: str) -> tuple[WarehouseColumn, ...]:
        """A relation's columns in order, from the warehouse's catalog (`information_schema`);
        empty when it does not exist.

        Raises:
            WarehouseQueryFailed: The warehouse failed the catalog query.
        """

        def literal(text: str) -> str:
            return "'" + text.replace("'", "''") + "'"

        # information_schema rather than the adapter's `get_columns_in_relation` macro: that
        # needs dbt's macros loaded, which costs about 1.5 s of parsing on every diff.
        where = [
            f"lower(table_schema) = lower({literal(schema)})",
            f"lower(table_name) = lower({literal(identifier)})",
        ]
        if database:
            where.append(f"lower(table_catalog) = lower({literal(database)})")
        rows = self.query(
            "select column_name, data_type from information_schema.columns where "  # noqa: S608
            f"{' and '.join(where)} order by ordinal_position"
        )
        return tuple(WarehouseColumn(str(name), str(kind)) for name, kind in rows)

    def query(self, sql: str) -> list[tuple[object, ...]]:
        """Run one query and return its rows as tuples (small results: counts and samples).

        Raises:
            WarehouseQueryFailed: The warehouse refused or failed the query.
        """
        try:
            _, table = self._adapter.execute(sql, fetch=True)
        # dbt's, the adapter's or the driver's class (a missing relation, a lost connection)
        except Exception as e:
            raise WarehouseQueryFailed(f"{type(e).__name__}: {e}".strip()) from e
        return [tuple(row.values()) for row in table.rows]


def warehouse_identity(
    project_dir: Path,
    profiles_dir: Path,
    *,
    target: str | None,
    variables: Mapping[str, Any],
) -> WarehouseIdentity:
    """Render a profile's target (as `drop_target_schema` does) and say which warehouse it is.

    Raises:
        WarehouseUnavailable: The profile or project could not be loaded.
    """
    with INVOKE_LOCK, silenced_events():
        try:
            config = runtime_config(project_dir, profiles_dir, target, variables)
            creds = config.credentials
            return WarehouseIdentity(
                adapter_type=str(creds.type),
                database=str(creds.database or ""),
                location=str(getattr(creds, "unique_field", "") or ""),
                schema=str(creds.schema or ""),
            )
        # dbt raises its own classes for a profile it cannot render: whichever it is, say so
        except Exception as e:
            raise WarehouseUnavailable(f"{type(e).__name__}: {e}".strip()) from e


@contextmanager
def open_warehouse(
    project_dir: Path,
    profiles_dir: Path,
    *,
    target: str | None,
    variables: Mapping[str, Any],
) -> Iterator[Warehouse]:
    """Open dbt's adapter on a profile's target, for read-only queries, and release it after.

    No macros are loaded (the queries are plain SQL, the catalog is `information_schema`);
    connections are released when the block ends, so a DuckDB file is not left locked. One at a
    time per process.

    Raises:
        WarehouseUnavailable: The profile could not be loaded or the warehouse not reached.
        WarehouseQueryFailed: A query inside the block failed (raised by the block's code).
    """
    from dbt.adapters.factory import get_adapter, register_adapter
    from dbt.mp_context import get_mp_context

    with INVOKE_LOCK, silenced_events(), released_connections():
        try:
            config = runtime_config(project_dir, profiles_dir, target, variables)
            register_adapter(config, get_mp_context())
            adapter: Any = get_adapter(config)
        # dbt's, the adapter's or the driver's class: whichever it is, the warehouse is out of reach
        except Exception as e:
            raise WarehouseUnavailable(f"{type(e).__name__}: {e}".strip()) from e
        with adapter.connection_named("dot-diff"):
            yield Warehouse(adapter)


class WarehouseUnavailable(Exception):
    """dbt could not load a profile or reach its warehouse; the message says why."""


class WarehouseQueryFailed(Exception):
    """The warehouse failed a query `Warehouse.query` ran; the message says why."""

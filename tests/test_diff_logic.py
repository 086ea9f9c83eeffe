"""The pure parts of `dot diff`: node selection over two manifests, and which warehouses a diff
can compare. The command itself, on real builds, is in test_diff.py and test_diff_postgres.py."""

from __future__ import annotations

import pytest

from datum_dot.dbtcore import WarehouseIdentity
from datum_dot.diff.compare import check_warehouses
from datum_dot.diff.manifest import NodeInfo
from datum_dot.diff.selection import select_nodes
from datum_dot.errors import BadInputError, ExitCode, UsageError


def _node(name: str, *parents: str, tags: tuple[str, ...] = (), kind: str = "model") -> NodeInfo:
    return NodeInfo(
        unique_id=f"{kind}.shop.{name}",
        name=name,
        resource_type=kind,
        checksum=name,
        materialized="table" if kind == "model" else kind,
        contract=False,
        tests=frozenset(),
        database="db",
        schema="s",
        identifier=name,
        parents=tuple(f"model.shop.{p}" for p in parents),
        tags=frozenset(tags),
        path=f"models/{name}.sql",
        unique_keys=(),
    )


# raw -> staged -> orders -> revenue ; staged -> customers ; an unrelated seed
NODES = {
    n.unique_id: n
    for n in (
        _node("raw", tags=("nightly",)),
        _node("staged", "raw"),
        _node("orders", "staged", tags=("nightly", "finance")),
        _node("revenue", "orders", tags=("finance",)),
        _node("customers", "staged"),
        _node("countries", kind="seed"),
    )
}


def _names(ids: frozenset[str]) -> set[str]:
    return {NODES[i].name for i in ids}


@pytest.mark.parametrize(
    ("select", "exclude", "expected"),
    [
        ((), (), {"raw", "staged", "orders", "revenue", "customers", "countries"}),
        (("orders+",), (), {"orders", "revenue"}),
        (("+orders",), (), {"raw", "staged", "orders"}),
        (("1+orders",), (), {"staged", "orders"}),
        (("@orders",), (), {"raw", "staged", "orders", "revenue"}),
        (("tag:finance",), (), {"orders", "revenue"}),
        (("tag:nightly,tag:finance",), (), {"orders"}),  # comma: intersection
        (("orders customers",), (), {"orders", "customers"}),  # space: union
        (("resource_type:seed",), (), {"countries"}),
        (("staged+",), ("revenue",), {"staged", "orders", "customers"}),
        ((), ("tag:finance", "countries"), {"raw", "staged", "customers"}),
        (("cust*",), (), {"customers"}),
    ],
)
def test_selection_follows_dbts_rules(
    select: tuple[str, ...], exclude: tuple[str, ...], expected: set[str]
) -> None:
    assert _names(select_nodes(select, NODES, exclude)) == expected


def test_a_selection_that_ends_empty_says_which_options_emptied_it() -> None:
    with pytest.raises(UsageError) as caught:
        select_nodes(("orders",), NODES, ("tag:finance",))
    assert (
        str(caught.value.message)
        == "-s orders --exclude tag:finance selects no model, seed or snapshot of either side"
    )
    assert caught.value.exit_code == ExitCode.BAD_INPUT


def test_an_unknown_selector_method_is_bad_input() -> None:
    with pytest.raises(UsageError) as caught:
        select_nodes(("state:modified",), NODES)
    assert "'state:' is not one dot diff supports" in caught.value.message
    with pytest.raises(UsageError) as caught:
        select_nodes((), NODES, ("state:modified",))
    assert caught.value.message.startswith("--exclude state:modified: the method 'state:'")


def _where(adapter: str, location: str = "/w.duckdb", database: str = "w") -> WarehouseIdentity:
    return WarehouseIdentity(adapter, database, location, "analytics")


def test_an_adapter_the_diff_cannot_speak_is_named_with_the_supported_ones() -> None:
    with pytest.raises(UsageError) as caught:
        check_warehouses(("prod@v1", _where("snowflake")), ("prod@main", _where("snowflake")))
    assert caught.value.message == "prod@v1 is on snowflake; dot diff supports duckdb and postgres"
    assert caught.value.exit_code == ExitCode.BAD_INPUT == 20
    assert caught.value.hint


def test_two_databases_of_one_server_are_two_warehouses() -> None:
    left = ("prod@v1", _where("postgres", "localhost", "shop"))
    right = ("dev", _where("postgres", "localhost", "shop_dev"))
    with pytest.raises(BadInputError) as caught:
        check_warehouses(left, right)
    assert "database shop," in caught.value.message
    assert "database shop_dev)" in caught.value.message
    assert (
        check_warehouses(left, ("prod@main", _where("postgres", "localhost", "shop"))) == "postgres"
    )

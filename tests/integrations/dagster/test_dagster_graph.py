"""The asset keys, dependencies and checks `dot_assets` reads from a manifest, rule by rule of
dagster-dbt's default translator (`DagsterDbtTranslator.get_asset_key`)."""

from __future__ import annotations

from typing import Any

import pytest

from datum_dot.dagster.graph import read_graph

pytestmark = pytest.mark.dagster


def _node(kind: str, name: str, parents: list[str] | None = None, **props: Any) -> dict[str, Any]:
    return {"resource_type": kind, "name": name, "fqn": ["shop", name],
            "depends_on": {"nodes": parents or []}, "config": props.pop("config", {}),
            **props}  # fmt: skip


MANIFEST: dict[str, Any] = {
    "sources": {
        "source.shop.raw.events": {
            "resource_type": "source",
            "source_name": "raw",
            "name": "events",
            "config": {},
        },
    },
    "nodes": {
        "model.shop.stg_events": _node("model", "stg_events", ["source.shop.raw.events"]),
        "model.shop.eph": _node(
            "model", "eph", ["model.shop.stg_events"], config={"materialized": "ephemeral"}
        ),
        "model.shop.daily": _node(
            "model", "daily", ["model.shop.eph"], config={"schema": "reporting"}
        ),
        "model.shop.dim_v2": _node("model", "dim", ["model.shop.daily"], version=2, alias="dim_v2"),
        "seed.shop.codes": _node(
            "seed", "codes", config={"meta": {"dagster": {"asset_key": ["lookup", "codes"]}}}
        ),
        "snapshot.shop.snap": _node("snapshot", "snap", ["seed.shop.codes"]),
        "test.shop.unique_daily_id": _node(
            "test", "unique_daily_id", ["model.shop.daily"], attached_node="model.shop.daily"
        ),
        "test.shop.not_null_snap_id": _node("test", "not_null_snap_id", ["snapshot.shop.snap"]),
        "test.shop.two_parents": _node(
            "test", "two_parents", ["model.shop.daily", "seed.shop.codes"]
        ),
        "analysis.shop.a": _node("analysis", "a", ["model.shop.daily"]),
    },
}


def test_dagster_graph_keys_follow_dagster_dbts_default_translator() -> None:
    graph = read_graph(MANIFEST)
    keys = {uid: asset.key for uid, asset in graph.assets.items()}
    assert keys == {
        "model.shop.stg_events": ("stg_events",),
        "model.shop.daily": ("reporting", "daily"),
        "model.shop.dim_v2": ("dim_v2",),
        "seed.shop.codes": ("lookup", "codes"),
        "snapshot.shop.snap": ("snap",),
    }
    assert graph.sources == {"source.shop.raw.events": ("raw", "events")}


def test_dagster_graph_deps_look_through_ephemeral_models_to_sources() -> None:
    graph = read_graph(MANIFEST)
    assert graph.assets["model.shop.stg_events"].parents == ("source.shop.raw.events",)
    assert graph.assets["model.shop.daily"].parents == ("model.shop.stg_events",)
    assert graph.key_of("source.shop.raw.events") == ("raw", "events")
    assert graph.key_of("model.shop.eph") is None


def test_dagster_graph_checks_are_tests_of_one_asset() -> None:
    checks = {uid: (c.name, c.asset) for uid, c in read_graph(MANIFEST).checks.items()}
    assert checks == {
        "test.shop.unique_daily_id": ("unique_daily_id", "model.shop.daily"),
        "test.shop.not_null_snap_id": ("not_null_snap_id", "snapshot.shop.snap"),
    }

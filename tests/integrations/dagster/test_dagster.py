"""The Dagster integration on real Dagster, dbt and DuckDB (`scripts/test-dagster`).

One example project per module: tag `v1.2` (the example) and branch `broken` (a model that fails
and one downstream of it). The README's definitions file (examples/dagster/definitions.py) is
loaded from the project's folder and its assets materialized in process once; the tests read
that run. Dagster is imported inside the tests only: the main suite collects this module
without Dagster installed and deselects it (marker `dagster`).
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.example import ExampleProject, make_example

pytestmark = [pytest.mark.dagster, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE_FILE = ROOT / "examples" / "dagster" / "definitions.py"
BROKEN_MODEL = "select id, no_such_column from {{ ref('stg_orders') }}\n"
AFTER_BROKEN = "select * from {{ ref('broken') }}\n"
# a test of one model that fails: order_events has rows
FAILING_TEST = "select * from {{ ref('order_events') }}\n"
MODELS = {"stg_customers", "stg_orders", "stg_payments", "customers", "orders", "order_events"}
SEEDS = {"raw_customers", "raw_orders", "raw_payments"}


@dataclass(frozen=True)
class Materialized:
    """The example built through the README's definitions, and what the run left."""

    example: ExampleProject
    home: Path
    sha: str
    defs: Any
    result: Any


@pytest.fixture(scope="module")
def materialized(
    module_monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Materialized:
    import dagster as dg

    base = tmp_path_factory.mktemp("dagster")
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(base / "warehouse.duckdb"))
    module_monkeypatch.delenv("DAGSTER_HOME", raising=False)
    example = make_example(base, monkeypatch_env=False)
    repo = example.repo
    repo.tag("v1.2")
    sha = repo.head()
    repo.git("checkout", "--quiet", "-b", "broken")
    repo.commit(
        {
            "models/marts/broken.sql": BROKEN_MODEL,
            "models/marts/after_broken.sql": AFTER_BROKEN,
            "tests/assert_no_order_events.sql": FAILING_TEST,
        },
        "a model that fails, one after it, and a test that fails",
    )
    repo.checkout("main")
    home = Path(os.environ["DATUM_HOME"])
    cwd = Path.cwd()
    os.chdir(example.path)
    try:
        defs = runpy.run_path(str(EXAMPLE_FILE))["defs"]
        result = dg.materialize(
            list(defs.assets), resources=dict(defs.resources), raise_on_error=False
        )
    finally:
        os.chdir(cwd)
    return Materialized(example, home, sha, defs, result)


def _keys(events: list[Any]) -> list[str]:
    return sorted("/".join(event.asset_key.path) for event in events)


def test_dagster_materializes_each_node_once_in_the_pinned_schema(
    materialized: Materialized,
) -> None:
    result = materialized.result
    assert result.success
    events = result.get_asset_materialization_events()
    assert _keys(events) == sorted(MODELS | SEEDS)
    schema = f"analytics_{materialized.sha[:8]}"
    rows = materialized.example.query(
        "select table_schema, table_name from information_schema.tables"
    )
    assert {str(name) for where, name in rows if where == schema} == MODELS | SEEDS
    metadata = {"/".join(e.asset_key.path): e.materialization.metadata for e in events}
    orders = metadata["raw_orders"]
    assert orders["commit"].value == materialized.sha
    assert orders["schema"].value == schema
    run_id = orders["run_id"].value
    assert orders["dot_logs"].value == f"dot logs {run_id}"
    assert orders["rows_affected"].value > 0
    assert orders["execution_time"].value >= 0
    assert {m["run_id"].value for m in metadata.values()} == {run_id}


def test_dagster_tests_become_passed_asset_checks(materialized: Materialized) -> None:
    evaluations = materialized.result.get_asset_check_evaluations()
    spec_keys = {key for assets in materialized.defs.assets for key in assets.check_keys}
    assert {e.asset_check_key for e in evaluations} == spec_keys
    assert len(spec_keys) > 10
    assert all(e.passed for e in evaluations)
    names = {(tuple(k.asset_key.path), k.name) for k in spec_keys}
    assert (("orders",), "unique_orders_order_id") in names


def test_dagster_run_is_in_the_history_with_trigger_dagster(materialized: Materialized) -> None:
    import datum_dot

    runs = datum_dot.Project(materialized.example.path, home=materialized.home).runs(last=None)
    build = [run for run in runs if run["command"] == ["build"] or run["command"] == "build"]
    assert build, runs
    assert build[0]["trigger"] == "dagster"
    assert build[0]["commit"] == materialized.sha
    assert build[0]["spec"] == "prod@v1.2"
    # the pinned commit's parse, once, for the graph
    assert {run["trigger"] for run in runs} == {"dagster"}


def test_dagster_failing_model_fails_its_asset_skips_downstream_and_fails_its_check(
    materialized: Materialized,
) -> None:
    import dagster as dg

    from datum_dot.dagster import DatumDotResource, dot_assets

    dot = DatumDotResource(project_dir=str(materialized.example.path), home=str(materialized.home))
    assets = dot_assets(dot, "prod@broken")
    result = dg.materialize([assets], resources={"dot": dot}, raise_on_error=False)
    assert not result.success
    built = _keys(result.get_asset_materialization_events())
    assert "broken" not in built
    assert "after_broken" not in built
    assert set(built) == MODELS | SEEDS
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    data = failure.step_failure_data
    assert "broken" in (data.user_failure_data.description or "")
    meta = data.user_failure_data.metadata
    assert set(meta["failed"].value) == {"broken", "test.jaffle_dot.assert_no_order_events"}
    assert meta["skipped"].value == ["after_broken"]
    assert meta["dot_logs"].value.startswith("dot logs ")
    checks = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}
    failed = checks[("order_events", "assert_no_order_events")]
    assert not failed.passed
    assert failed.severity == dg.AssetCheckSeverity.ERROR
    assert checks[("orders", "unique_orders_order_id")].passed


def test_dagster_subset_builds_only_the_selected_assets(materialized: Materialized) -> None:
    import dagster as dg

    from datum_dot.dagster import DatumDotResource, dot_assets

    dot = DatumDotResource(project_dir=str(materialized.example.path), home=str(materialized.home))
    assets = dot_assets(dot, "prod@v1.2", select="stg_orders+", exclude="order_events")
    assert _keys([dg.AssetMaterialization(k) for k in assets.keys]) == ["customers", "orders",
                                                                         "stg_orders"]  # fmt: skip
    result = dg.materialize([assets], resources={"dot": dot}, selection=[dg.AssetKey("orders")])
    assert _keys(result.get_asset_materialization_events()) == ["orders"]


def test_dagster_runtime_without_parallel_runs_gets_a_pool(materialized: Materialized) -> None:
    from datum_dot.dagster import DatumDotResource, dot_assets

    path, home = str(materialized.example.path), str(materialized.home)
    local = dot_assets(DatumDotResource(project_dir=path, home=home), "prod@v1.2")
    child = dot_assets(
        DatumDotResource(project_dir=path, home=home, runtime="subprocess"), "prod@v1.2"
    )
    assert local.op.pool == "datum_dot_local"
    assert local.op.tags["datum_dot/runtime"] == "local"
    assert child.op.pool is None
    assert child.op.tags["datum_dot/runtime"] == "subprocess"


def test_dagster_spec_without_ref_is_bad_input(materialized: Materialized) -> None:
    from datum_dot.dagster import DatumDotResource, dot_assets
    from datum_dot.errors import BadInputError

    dot = DatumDotResource(project_dir=str(materialized.example.path), home=str(materialized.home))
    with pytest.raises(BadInputError, match="pinned to a commit") as caught:
        dot_assets(dot, "prod")
    assert caught.value.hint == "name a tag, branch or commit after @: 'prod@v1.2'"


def test_dagster_readme_definitions_pass_dagsters_validator(materialized: Materialized) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(materialized.home / "dagster")}
    (materialized.home / "dagster").mkdir(exist_ok=True)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-f",
         str(EXAMPLE_FILE)],
        cwd=materialized.example.path, env=env, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr

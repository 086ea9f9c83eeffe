"""`dot which`: the relation index read from the artifacts kept with runs (real SQLite and run
folders; dbt's artifacts written as dbt writes them, trimmed to the fields read). The answer on
real dbt builds of two commits is in test_state_live.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from datum_dot.history import RunEnd, RunStart, RunStore
from datum_dot.history.relations import match_clause, normalize
from datum_dot.home.settings import datum_home
from datum_dot.runs.run import RunStatus
from tests.helpers.history import assert_bad_input, run_dot

NODES = {
    "model.shop.orders": {"name": "orders", "relation_name": '"w"."analytics"."orders"'},
    "model.shop.payments": {"name": "payments", "relation_name": '"w"."analytics"."payments"'},
    "seed.shop.raw": {"name": "raw", "database": "w", "schema": "analytics", "alias": "raw"},
}


def _run(
    store: RunStore,
    folder: Path,
    results: dict[str, str],
    *,
    command: tuple[str, ...] = ("build",),
    env: str = "prod",
    commit: str = "a" * 40,
) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({"nodes": NODES}))
    rows = [{"unique_id": uid, "status": status} for uid, status in results.items()]
    (folder / "run_results.json").write_text(json.dumps({"results": rows}))
    run_id = store.begin(
        RunStart(project="shop", spec=env, command=command, env=env, commit=commit)
    )
    store.finish(run_id, RunEnd(RunStatus.SUCCESS, 0, run_results=folder / "run_results.json"))
    time.sleep(0.01)
    return run_id


@pytest.fixture
def store() -> RunStore:
    return RunStore(datum_home())


def test_which_normalizes_quotes_and_case() -> None:
    assert normalize('"W"."Analytics"."Orders"') == "w.analytics.orders"
    assert match_clause("orders")[0] == "b.name = ?"
    assert match_clause("analytics.orders")[1][-1] == ".analytics.orders"


def test_which_newest_run_wins_and_skipped_nodes_do_not_count(
    store: RunStore, tmp_path: Path
) -> None:
    first = _run(store, tmp_path / "t", {"model.shop.orders": "success"}, commit="1" * 40)
    second = _run(store, tmp_path / "t", {"model.shop.orders": "error"}, commit="2" * 40)
    _run(store, tmp_path / "t", {"model.shop.orders": "skipped"}, commit="3" * 40)
    _run(store, tmp_path / "t", {"model.shop.orders": "success"}, command=("compile",))
    found = store.last_built("analytics.orders")
    assert found is not None
    run, node = found
    assert (run.run_id, run.start.commit, node.status) == (second, "2" * 40, "error")
    by_name = store.last_built("ORDERS")
    assert by_name is not None
    assert by_name[0].run_id == second
    assert store.last_built('"w"."analytics"."orders"', env="dev") is None
    assert first != second


def test_which_seed_without_relation_name_and_environment_filter(
    store: RunStore, tmp_path: Path
) -> None:
    prod = _run(store, tmp_path / "p", {"seed.shop.raw": "success"})
    dev = _run(store, tmp_path / "d", {"seed.shop.raw": "success"}, env="dev")
    assert store.last_built("w.analytics.raw", env="prod")[0].run_id == prod  # type: ignore[index]
    assert store.last_built("raw")[0].run_id == dev  # type: ignore[index]


def test_which_unknown_relation_is_bad_input(store: RunStore, tmp_path: Path) -> None:
    _run(store, tmp_path / "t", {"model.shop.orders": "success"})
    result = run_dot("which", "analytics.nope", cwd=tmp_path, env={"DATUM_HOME": str(store.home)})
    assert_bad_input(result, "no run in")
    json_answer = run_dot(
        "which", "analytics.orders", "--json", cwd=tmp_path, env={"DATUM_HOME": str(store.home)}
    )
    assert json.loads(json_answer.stdout)["unique_id"] == "model.shop.orders"


@pytest.mark.parametrize(("name", "message"), [("a.b.c.d", "more than three parts"),
                                                ("a..b", "is not a relation name")])  # fmt: skip
def test_which_malformed_name_is_bad_input(tmp_path: Path, name: str, message: str) -> None:
    assert_bad_input(run_dot("which", name, cwd=tmp_path), message)

"""Deferred builds: `--defer env@ref` reads unchanged parents from an earlier isolated build.

`deferred` builds the baseline `prod@v1` once (in process), then the changed commit as
`dot build dev@HEAD --defer prod@v1 -- -s state:modified+` (as a user would); the tests read
the warehouse, run_results.json and the compiled SQL it left.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

import pytest

from datum_dot.errors import ExitCode
from tests.helpers.history import (
    History,
    assert_bad_input,
    make_history,
    read_json,
    run_dot,
    run_in_process,
    select_from,
    table_names,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("defer")]


@dataclass(frozen=True)
class Deferred:
    """The baseline prod@v1 and the deferred dev@HEAD (the `v2` commit) build."""

    history: History
    run: subprocess.CompletedProcess[str]

    @property
    def baseline_schema(self) -> str:
        return f"analytics_{self.history.short('v1')}"

    @property
    def dev_schema(self) -> str:
        return f"dev_{self.history.short('v2')}"


@pytest.fixture(scope="module")
def deferred(
    module_monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Deferred:
    history = make_history(tmp_path_factory.mktemp("defer"))
    path, env = history.example.path, history.environ
    baseline, _ = run_in_process(path, "prod@v1", env=env)
    assert baseline.exit_code is ExitCode.OK, baseline.error
    run = run_dot(
        "build", "dev@HEAD", "--defer", "prod@v1", "--", "-s", "state:modified+", cwd=path, env=env
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return Deferred(history, run)


def test_defer_builds_only_modified_model_and_children(deferred: Deferred) -> None:
    target = deferred.history.env_dir("v2", "dev") / "target"
    results = read_json(target / "run_results.json")
    ids = [str(r["unique_id"]) for r in results["results"]]
    models = {i for i in ids if not i.startswith("test.")}
    assert models == {"model.jaffle_dot.orders", "model.jaffle_dot.customers"}
    assert results["args"]["defer"] is True
    assert results["args"]["favor_state"] is True
    assert results["args"]["state"] == str(deferred.history.env_dir("v1", "prod") / "target")


def test_defer_unchanged_parents_are_not_in_dev_schema(deferred: Deferred) -> None:
    example = deferred.history.example
    assert table_names(example, deferred.dev_schema) == {"orders", "customers"}
    assert {"stg_orders", "stg_payments", "raw_orders"} <= table_names(
        example, deferred.baseline_schema
    )


def test_defer_compiled_sql_reads_parents_from_baseline_schema(deferred: Deferred) -> None:
    compiled = (
        deferred.history.env_dir("v2", "dev") / "target" / "compiled" / "jaffle_dot" / "models"
    )
    orders = (compiled / "marts" / "orders.sql").read_text()
    base, dev = deferred.baseline_schema, deferred.dev_schema
    assert re.search(rf'"{base}"\."stg_orders"', orders)
    assert re.search(rf'"{base}"\."stg_payments"', orders)  # through the ephemeral model
    assert dev not in orders
    customers = (compiled / "marts" / "customers.sql").read_text()
    assert re.search(rf'"{dev}"\."orders"', customers)  # a modified parent: the new build
    assert re.search(rf'"{base}"\."stg_customers"', customers)


def test_defer_built_relation_holds_new_code_over_baseline_rows(deferred: Deferred) -> None:
    example = deferred.history.example
    dev, base = deferred.dev_schema, deferred.baseline_schema
    assert select_from(example, "distinct version_marker", dev, "orders") == [("v2",)]
    assert select_from(example, "distinct sample_rate", dev, "orders") == [(10,)]
    assert select_from(example, "count(*)", dev, "orders") == select_from(
        example, "count(*)", base, "stg_orders"
    )


def test_clone_into_isolated_schema_from_baseline(deferred: Deferred) -> None:
    h = deferred.history
    record, _ = run_in_process(
        h.example.path, f"dev@{h.commits['initial']}", command=("clone",), defer="prod@v1",
        env=h.environ,
    )  # fmt: skip
    assert record.exit_code is ExitCode.OK, record.error
    schema = f"dev_{h.short('initial')}"
    assert {"orders", "customers", "stg_orders", "raw_orders"} <= table_names(h.example, schema)
    # The initial commit's orders has no marker: the relation came from the prod@v1 baseline.
    assert select_from(h.example, "distinct version_marker", schema, "orders") == [("v1",)]


@pytest.mark.parametrize(
    ("defer", "message"),
    [
        ("prod", "no successful run of prod is in the run history"),
        ("prod@", "empty git ref"),
        ("@", "names neither an environment nor a git ref"),
    ],
    ids=["live_never_run", "empty_ref", "bare_at"],
)
def test_defer_spec_without_build_or_run_is_bad_input(
    deferred: Deferred, defer: str, message: str
) -> None:
    h = deferred.history
    result = run_dot("build", "dev@HEAD", "--defer", defer, cwd=h.example.path, env=h.environ)
    assert_bad_input(result, message)


def test_defer_baseline_not_built_names_build_command(deferred: Deferred) -> None:
    h = deferred.history
    result = run_dot("build", "dev@v1", "--defer", "prod@main", cwd=h.example.path, env=h.environ)
    assert_bad_input(result, "has not been built")
    assert "hint: build it first: dot build prod@main" in result.stderr


def test_defer_baseline_without_manifest_is_bad_input(deferred: Deferred) -> None:
    h = deferred.history
    (h.env_dir("before", "prod") / "target").mkdir(parents=True)
    result = run_dot("build", "dev@v1", "--defer", "prod@before", cwd=h.example.path, env=h.environ)
    assert_bad_input(result, "has no manifest.json")
    assert "dot build prod@before" in result.stderr

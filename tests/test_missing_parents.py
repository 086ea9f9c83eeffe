"""A first isolated build of a selection whose parents were never built stops before dbt runs.

One example project, built step by step as a newcomer would: a selection without its parents
(stopped, exit 20, nothing written), the same selection with `+` (built), the first selection
again (its parent exists now, so it runs), and `dot test` of models never built (stopped).
"""

from __future__ import annotations

import pytest

from datum_dot import dbtcore
from datum_dot.runs import parents
from datum_dot.runs.planner import make_plan
from datum_dot.runs.run import RunRequest
from datum_dot.runs.spec import parse_spec
from tests.helpers.example import ExampleProject
from tests.helpers.history import assert_bad_input, table_names

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("missing_parents")]


def _isolated_schemas(example: ExampleProject) -> set[str]:
    if not example.database.exists():
        return set()
    return {s for s in example.schemas() if s.startswith("analytics_")}


def test_missing_parents_first_selection_stops_then_runs_once_parents_exist(
    example: ExampleProject,
) -> None:
    stopped = example.dot("build", "prod@main", "--", "-s", "stg_orders")
    assert_bad_input(stopped, "parent(s) of the selection are not built")
    assert "seed.jaffle_dot.raw_orders" in stopped.stderr
    # only the missing parent is named: stg_orders reads raw_orders and nothing else
    assert "raw_customers" not in stopped.stderr
    assert "--defer prod@" in stopped.stderr
    assert "dot build prod@main -- -s +stg_orders" in stopped.stderr
    assert _isolated_schemas(example) == set()  # dbt never ran

    widened = example.dot("build", "prod@main", "--", "-s", "+stg_orders")
    assert widened.returncode == 0, widened.stderr
    (schema,) = _isolated_schemas(example)
    assert table_names(example, schema) == {"raw_orders", "stg_orders"}

    # the parent exists in the commit's schema now: the same selection is not stopped
    again = example.dot("build", "prod@main", "--", "-s", "stg_orders")
    assert again.returncode == 0, again.stderr
    assert "not built" not in again.stderr

    # dot test selects only tests: the models they read were never built at this commit
    tested = example.dot("test", "prod@main", "--", "-s", "orders")
    assert_bad_input(tested, "parent(s) of the selection are not built")
    assert "model.jaffle_dot.orders" in tested.stderr
    assert "dot test prod@main -- -s +orders" in tested.stderr


def test_missing_parents_ls_arguments_keep_the_selection_only(example: ExampleProject) -> None:
    request = RunRequest(
        command=("run",),
        spec=parse_spec("prod@main"),
        project_dir=example.path,
        dbt_args=("-s", "orders", "stg_orders", "--full-refresh", "--exclude", "tag:x"),
        dry_run=True,
    )
    plan = make_plan(request, options_for=dbtcore.command_options)
    assert parents.needs_check(plan)
    args = parents.ls_arguments(plan)
    assert args[args.index("-s") : args.index("-s") + 3] == ["-s", "orders", "stg_orders"]
    assert "--full-refresh" not in args  # dbt ls does not take it
    assert "--threads" not in args
    assert args[-2:] == ["--resource-type", "model"]  # what `dbt run` runs
    plain = make_plan(
        RunRequest(command=("build",), spec=parse_spec("prod@main"), project_dir=example.path,
                   dry_run=True),
        options_for=dbtcore.command_options,
    )  # fmt: skip
    assert not parents.needs_check(plain)  # a whole build selects every parent

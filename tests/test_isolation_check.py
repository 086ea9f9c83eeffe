"""The isolation check: an isolated build that would write outside its schema runs nothing."""

from __future__ import annotations

import pytest

from datum_dot.errors import ExitCode, IsolationError
from tests.helpers.example import ExampleProject
from tests.helpers.history import assert_bad_input, run_dot, run_in_process

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("isolation_check")]

FIXED_SCHEMA_MACRO = """\
{#- Ignores target.schema: every build, isolated or not, lands in prod_fixed. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    prod_fixed
{%- endmacro %}
"""


def nothing_written(example: ExampleProject) -> bool:
    return not example.database.exists() or example.schemas() == set()


def test_isolation_check_stops_fixed_schema_macro(example: ExampleProject) -> None:
    short = example.repo.commit({"macros/generate_schema_name.sql": FIXED_SCHEMA_MACRO})[:8]
    result = run_dot("build", "prod@HEAD", cwd=example.path)
    assert_bad_input(result, f"would be written outside schema 'analytics_{short}'")
    assert "nothing was run" in result.stderr
    for node in ("model.jaffle_dot.orders", "seed.jaffle_dot.raw_customers"):
        assert f"  {node} " in result.stderr
    assert "would be written to warehouse.prod_fixed" in result.stderr
    assert "--allow-unisolated" in result.stderr
    assert nothing_written(example)


def test_isolation_check_allow_unisolated_lets_it_run(example: ExampleProject) -> None:
    example.repo.commit({"macros/generate_schema_name.sql": FIXED_SCHEMA_MACRO})
    result = run_dot(
        "build", "prod@HEAD", "--allow-unisolated", "--", "-s", "raw_customers", cwd=example.path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "checking that every node lands" not in result.stderr
    assert example.query("select count(*) from prod_fixed.raw_customers") == [(10,)]


def test_isolation_check_flags_database_override(example: ExampleProject) -> None:
    example.repo.commit(
        {"models/elsewhere.sql": "{{ config(database='elsewhere') }}\nselect 1 as id\n"}
    )
    with pytest.raises(IsolationError) as caught:
        run_in_process(example.path, "prod@HEAD", "-s", "raw_customers")
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    lines = [line for line in caught.value.message.splitlines() if "elsewhere" in line]
    assert lines == [
        "  model.jaffle_dot.elsewhere (models/elsewhere.sql) sets database 'elsewhere'"
    ]
    assert "1 node(s)" in caught.value.message
    assert nothing_written(example)


def test_isolation_check_passes_custom_schema_under_isolated_one(example: ExampleProject) -> None:
    project = (example.path / "dbt_project.yml").read_text()
    short = example.repo.commit(
        {"dbt_project.yml": project.replace("    +quote_columns: false", "    +schema: raw")}
    )[:8]
    record, _ = run_in_process(example.path, "prod@HEAD", "-s", "raw_customers")
    assert record.exit_code is ExitCode.OK, record.error
    assert example.schemas() == {f"analytics_{short}_raw"}

"""YAML values in dot's files and `--vars` through the installed `dot`: what dbt is given, or why not.

A misspelled environment key, a value YAML can hold but dbt cannot be given (an alias that
refers to itself, `!!binary`, very deep nesting) and a file that is not UTF-8 are bad input
(exit 20, one line each for what and what to do); a date reaches dbt as the same date dbt's own
`--vars` parsing gives it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import duckdb
import pytest

from tests.helpers.example import BIN, ExampleProject
from tests.test_cli import assert_bad_input


def test_dry_run_misspelled_environment_key_exits_20(example: ExampleProject) -> None:
    path = example.path / "dot_environments.yml"
    path.write_text(path.read_text().replace("    target: prod", "    trget: prod"))
    result = example.dot("build", "prod", "--dry-run")
    assert_bad_input(
        result,
        "dot_environments.yml:20: environment.prod.trget: unknown key",
        "(did you mean 'target'?)",
    )


def test_dry_run_date_var_is_passed_as_a_yaml_date(example: ExampleProject) -> None:
    result = example.dot("build", "--dry-run", "--vars", "{start_date: 2024-01-01}")
    assert result.returncode == 0, result.stderr
    expected = "{feature_flag: false, sample_rate: 10, start_date: 2024-01-01}"
    assert f"vars         {expected}\n" in result.stdout
    assert f"--vars '{expected}'" in result.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--vars", "{a: &x [*x]}"), "--vars '{a: &x [*x]}': an alias inside this value refers"),
        (("--", "--vars", "{a: !!binary aGVsbG8=}"), "a !!binary value"),
    ],
    ids=["alias-cycle", "binary-after-dashes"],
)
def test_dry_run_unsupported_vars_value_exits_20(
    example: ExampleProject, args: tuple[str, ...], needle: str
) -> None:
    assert_bad_input(example.dot("build", "--dry-run", *args), needle)


def test_dry_run_environments_file_not_utf8_exits_20(example: ExampleProject) -> None:
    path = example.path / "dot_environments.yml"
    path.write_bytes(path.read_bytes() + "# café\n".encode("latin-1"))
    assert_bad_input(
        example.dot("build", "--dry-run"), f"{path}:31: not UTF-8 text", "save it as UTF-8"
    )


# --- a date reaches dbt as dbt itself reads it ---------------------------------------------

DATED_PROJECT = {
    "dbt_project.yml": "name: dated\nversion: '1.0'\nprofile: dated\n",
    "profiles.yml": (
        "dated:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        "      path: \"{{ env_var('DATED_DUCKDB') }}\"\n      threads: 1\n"
    ),
    "dot_environments.yml": (
        "environment:\n  default: dev\n  dev:\n    vars:\n      start_date: 2024-01-01\n"
    ),
    # Whether dbt sees text, and arithmetic that only a date allows.
    "models/dated.sql": (
        "{% set start, end = var('start_date'), var('end_date') %}\n"
        "select '{{ 'text' if start is string else 'date' }}' as start_kind,\n"
        "  '{{ start if start is string else start + modules.datetime.timedelta(days=1) }}'"
        " as after_start,\n"
        "  '{{ 'text' if end is string else 'date' }}' as end_kind,\n"
        "  '{{ end if end is string else end.year }}' as end_year\n"
    ),
}


def run_dated(program: str, folder: Path, database: Path) -> list[tuple[object, ...]]:
    """Run the model with `program` (`dot` or bare `dbt`), and read back what dbt rendered."""
    args = ["run", "--vars", "{end_date: 2024-12-31}"]
    if program == "dbt":  # bare dbt has no environments file: its var is given the same way
        args = ["run", "--vars", "{start_date: 2024-01-01, end_date: 2024-12-31}"]
        args += ["--project-dir", str(folder), "--profiles-dir", str(folder)]
    result = subprocess.run(
        [str(BIN / program), *args],
        cwd=folder,
        env={**os.environ, "DATED_DUCKDB": str(database)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute("select * from dated").fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_run_date_var_reaches_dbt_as_bare_dbt_reads_it(tmp_path: Path) -> None:
    # Regression: dates reached dbt as JSON strings, so `var('start_date')` was a str.
    folder = tmp_path / "dated"
    for name, text in DATED_PROJECT.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    through_dot = run_dated("dot", folder, tmp_path / "dot.duckdb")
    bare = run_dated("dbt", folder, tmp_path / "bare.duckdb")
    assert through_dot == bare == [("date", "2024-01-02", "date", "2024")]

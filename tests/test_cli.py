"""End-to-end tests of the installed `dot` / `datum` programs, run as subprocesses.

Nothing here runs dbt for real: `--dry-run` plans (and imports dbt to learn which flags each
command accepts) but writes nothing. Real dbt runs are in `test_run_local.py`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.example import ExampleProject, make_example

PROD_VARS_JSON = '{"feature_flag":true,"sample_rate":100}'


@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory, module_monkeypatch: pytest.MonkeyPatch
) -> ExampleProject:
    """One example project for the tests that only read it (dry runs create nothing)."""
    base = tmp_path_factory.mktemp("cli")
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(base / "warehouse.duckdb"))
    return make_example(base, monkeypatch_env=False)


def run_module(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `python -m datum_dot` as a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "datum_dot", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_bad_input(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 20; stderr is one `error:` line and one `hint:` line; no traceback anywhere."""
    assert result.returncode == 20, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert lines[1].startswith("hint: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


def plan_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON plan printed by `--dry-run --json`, after checking the run succeeded."""
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def argv_line(result: subprocess.CompletedProcess[str]) -> str:
    """The `dbt argv` line of a text `--dry-run`."""
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("dbt argv")]
    assert len(lines) == 1, result.stdout
    return lines[0]


# --- help, version, command words -----------------------------------------------------------


def test_help_lists_every_dbt_command(shared: ExampleProject) -> None:
    from dbt.cli.main import cli

    # `dot clean` and `dot init` are the tool's own commands (reserved), not dbt's.
    dbt_commands = set(cli.commands) - {"clean", "init"}
    assert {"build", "run", "test", "docs", "source", "run-operation"} <= dbt_commands
    result = shared.dot("--help")
    assert result.returncode == 0, result.stderr
    for name in sorted(dbt_commands):
        line = rf"^ {{4}}{re.escape(name)}\s+dbt {re.escape(name)} for an environment"
        assert re.search(line, result.stdout, flags=re.MULTILINE), (name, result.stdout)


def test_help_before_a_dbt_command_still_lists_every_command(shared: ExampleProject) -> None:
    # `dot --help build` is the top-level help, whatever word follows it
    result = shared.dot("--help", "build")
    assert result.returncode == 0, result.stderr
    for name in ("build", "run", "test", "logs", "validate"):
        assert re.search(rf"^ {{4}}{re.escape(name)}\s", result.stdout, flags=re.MULTILINE), (
            name,
            result.stdout,
        )


def test_version_lists_tool_dbt_core_and_adapter(shared: ExampleProject) -> None:
    result = shared.dot("--version")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("dot (datum-dot) ")
    assert f"dbt-core {metadata.version('dbt-core')}" in lines
    assert f"dbt-duckdb {metadata.version('dbt-duckdb')}" in lines


def test_unknown_command_suggests_closest(shared: ExampleProject) -> None:
    result = shared.dot("biuld", "prod")
    assert_bad_input(result, "unknown command 'biuld'", "did you mean 'build'")


def test_unknown_command_under_datum_name_hints_datum(shared: ExampleProject) -> None:
    result = shared.dot("biuld", program="datum")
    assert_bad_input(result, "did you mean 'build'", "datum --help")


def test_unknown_sub_verb_suggests_closest(shared: ExampleProject) -> None:
    result = shared.dot("docs", "generat", "prod", "--dry-run")
    assert_bad_input(result, "'generat'", "did you mean 'generate'")


def test_unknown_option_suggests_closest(shared: ExampleProject) -> None:
    result = shared.dot("build", "prod", "--dry-rn")
    assert_bad_input(result, "--dry-rn", "did you mean '--dry-run'")


def test_python_m_exits_like_dot_on_bad_input(shared: ExampleProject) -> None:
    result = run_module("biuld", cwd=shared.path)
    assert_bad_input(result, "did you mean 'build'")


# --- bad input: one error line, one hint line, exit 20 ---------------------------------------


def test_bad_input_no_dbt_project(tmp_path: Path, shared: ExampleProject) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = shared.dot("build", "--dry-run", cwd=empty)
    assert_bad_input(result, "no dbt_project.yml", "--project-dir")


def test_isolated_build_outside_a_git_repository_is_bad_input(
    tmp_path: Path, shared: ExampleProject
) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(shared.path, plain, ignore=shutil.ignore_patterns(".git", ".dot"))
    result = shared.dot("build", "prod@main", cwd=plain)
    assert_bad_input(result, f"{plain} is not inside a git repository", "git init", "cd ")
    assert not (plain / ".dot").exists()
    # A plain build needs no repository: it still plans (and would run) the files as they are.
    assert shared.dot("build", "prod", "--dry-run", cwd=plain).returncode == 0


def test_project_in_a_folder_named_dollar_home_is_found(
    tmp_path: Path, shared: ExampleProject
) -> None:
    # A folder literally named `$HOME` must not be expanded to the home folder on the way to git.
    repo = make_example(tmp_path / "$HOME", monkeypatch_env=False)
    result = shared.dot("build", "prod@main", "--dry-run", "--json", cwd=repo.path)
    assert plan_json(result)["isolated"]["commit"] == repo.repo.head()
    assert "environment variables in paths" not in result.stderr


def test_bad_input_unknown_environment_lists_defined(shared: ExampleProject) -> None:
    result = shared.dot("build", "staging", "--dry-run")
    assert_bad_input(result, "unknown environment 'staging'", "dev, prod, ci")


def test_bad_input_unknown_environment_suggests_closest(shared: ExampleProject) -> None:
    result = shared.dot("build", "prd", "--dry-run")
    assert_bad_input(result, "did you mean 'prod'")


def test_bad_input_default_names_undefined_environment(example: ExampleProject) -> None:
    config = example.path / "dot_environments.yml"
    config.write_text(config.read_text().replace("default: dev", "default: staging"))
    result = example.dot("build", "--dry-run")
    assert_bad_input(result, "environment.default names 'staging'", "dev, prod, ci")


@pytest.mark.parametrize(
    "file_name", ["dot_environments.yml", "dot_environments.user.yml", "dot_vars.yml"]
)
def test_bad_input_malformed_yaml(example: ExampleProject, file_name: str) -> None:
    (example.path / file_name).write_text("environment:\n  dev: [target, dev\n  prod: {}\n")
    result = example.dot("build", "dev", "--dry-run")
    assert_bad_input(result, file_name)


def test_bad_input_required_var_missing(example: ExampleProject) -> None:
    with (example.path / "dot_vars.yml").open("a") as f:
        f.write("  region:\n    description: Where the shop is.\n    required: true\n")
    result = example.dot("build", "dev", "--dry-run")
    assert_bad_input(result, "var 'region' is required", "environment 'dev'")


def test_bad_input_strict_var_outside_values(shared: ExampleProject) -> None:
    result = shared.dot("build", "prod", "--dry-run", "--vars", "{sample_rate: 7}")
    assert_bad_input(result, "var 'sample_rate' = 7", "[1, 5, 10, 25, 50, 100]")


@pytest.mark.parametrize(
    ("text", "needle"), [("[1, 2]", "not a mapping"), ("{sample_rate:", "not valid YAML")]
)
def test_bad_input_vars_not_a_mapping(shared: ExampleProject, text: str, needle: str) -> None:
    result = shared.dot("build", "prod", "--dry-run", "--vars", text)
    assert_bad_input(result, needle)


def test_bad_input_passthrough_vars_not_a_mapping(shared: ExampleProject) -> None:
    result = shared.dot("build", "prod", "--dry-run", "--", "--vars", "just-a-string")
    assert_bad_input(result, "not a mapping")


def test_bad_input_profiles_not_found(example: ExampleProject) -> None:
    (example.path / "profiles.yml").unlink()
    result = example.dot("build", "dev", "--dry-run")
    assert_bad_input(result, "profiles.yml not found", "DBT_PROFILES_DIR")


# --- the command line's shape ---------------------------------------------------------------


def test_dry_run_options_before_or_after_spec_agree(shared: ExampleProject) -> None:
    before = shared.dot("build", "--dry-run", "prod")
    after = shared.dot("build", "prod", "--dry-run")
    assert before.returncode == after.returncode == 0, (before.stderr, after.stderr)
    assert before.stdout == after.stdout
    assert "--target prod" in argv_line(before)


def test_datum_prints_same_plan_as_dot(shared: ExampleProject) -> None:
    via_dot = shared.dot("build", "prod", "--dry-run")
    via_datum = shared.dot("build", "prod", "--dry-run", program="datum")
    assert via_datum.returncode == 0, via_datum.stderr
    assert via_datum.stdout == via_dot.stdout
    assert "dbt build" in argv_line(via_datum)


def test_dry_run_docs_generate_keeps_sub_verb(shared: ExampleProject) -> None:
    argv = plan_json(shared.dot("docs", "generate", "prod", "--dry-run", "--json"))["argv"]
    assert argv[:3] == ["dbt", "docs", "generate"]
    assert argv[argv.index("--target") + 1] == "prod"


def test_dry_run_run_operation_keeps_macro(shared: ExampleProject) -> None:
    argv = plan_json(shared.dot("run-operation", "my_macro", "prod", "--dry-run", "--json"))["argv"]
    assert argv[:3] == ["dbt", "run-operation", "my_macro"]
    assert argv[argv.index("--target") + 1] == "prod"


def test_dry_run_source_freshness_keeps_sub_verb(shared: ExampleProject) -> None:
    line = argv_line(shared.dot("source", "freshness", "prod", "--dry-run"))
    assert line.split()[2:5] == ["dbt", "source", "freshness"]
    assert "--target prod" in line


# --- dry run: the resolved settings, and nothing created ------------------------------------


def test_dry_run_test_prod_shows_settings_and_creates_nothing(example: ExampleProject) -> None:
    result = example.dot("test", "prod", "--dry-run")
    line = argv_line(result)
    assert "--target prod" in line
    assert "--threads 2" in line
    assert "--indirect-selection buildable" in line
    assert f"--vars '{PROD_VARS_JSON}'" in line
    assert re.search(r"^environment\s+prod$", result.stdout, flags=re.MULTILINE)
    assert not (example.path / "target").exists()
    assert not (example.path / "logs").exists()
    assert not example.database.exists()


def test_dry_run_default_environment_is_dev(shared: ExampleProject) -> None:
    plan = plan_json(shared.dot("build", "--dry-run", "--json"))
    assert plan["environment"] == "dev"
    assert plan["vars"] == {"feature_flag": False, "sample_rate": 10}
    assert plan["argv"][plan["argv"].index("--target") + 1] == "dev"


def test_dry_run_deps_leaves_out_threads_with_debug_note(shared: ExampleProject) -> None:
    debug = shared.dot("deps", "prod", "--dry-run", "--debug")
    assert "--threads" not in argv_line(debug)
    assert "--target prod" in argv_line(debug)
    assert "debug: dbt deps does not accept --threads; left out" in debug.stderr
    quiet = shared.dot("deps", "prod", "--dry-run")
    assert quiet.returncode == 0, quiet.stderr
    assert "debug:" not in quiet.stderr


def test_dry_run_environment_name_independent_of_target(shared: ExampleProject) -> None:
    argv = plan_json(shared.dot("build", "ci", "--dry-run", "--json"))["argv"]
    assert argv[argv.index("--target") + 1] == "dev"
    assert "--full-refresh" in argv


def test_dry_run_false_flag_is_omitted(example: ExampleProject) -> None:
    (example.path / "dot_environments.user.yml").write_text(
        "environment:\n  ci:\n    full-refresh: false\n"
    )
    argv = plan_json(example.dot("build", "ci", "--dry-run", "--json"))["argv"]
    assert "--full-refresh" not in argv
    assert argv[argv.index("--target") + 1] == "dev"


def test_dry_run_vars_merge_all_env_user_and_command_line(example: ExampleProject) -> None:
    (example.path / "dot_environments.user.yml").write_text(
        "environment:\n"
        "  all:\n    vars:\n      nested: {a: 1, b: 1}\n"
        "  prod:\n    vars:\n      sample_rate: 50\n      nested: {b: 2}\n"
    )
    from_files = plan_json(example.dot("build", "prod", "--dry-run", "--json"))
    assert from_files["vars"] == {
        "feature_flag": True,
        "sample_rate": 50,
        "nested": {"a": 1, "b": 2},
    }
    args = ["--vars", "{sample_rate: 25, nested: {c: 3}}"]
    passthrough = ["--", "--vars", '{"nested": {"d": 4}}', "--select", "orders"]
    merged = plan_json(example.dot("build", "prod", "--dry-run", "--json", *args, *passthrough))
    expected = {"feature_flag": True, "sample_rate": 25, "nested": {"a": 1, "b": 2, "c": 3, "d": 4}}
    assert merged["vars"] == expected
    argv = merged["argv"]
    assert argv.count("--vars") == 1
    assert json.loads(argv[argv.index("--vars") + 1]) == expected
    assert argv[-2:] == ["--select", "orders"]


def test_dry_run_passthrough_vars_strict_violation_exits_20(shared: ExampleProject) -> None:
    result = shared.dot("build", "prod", "--dry-run", "--", "--vars", "{sample_rate: 7}")
    assert_bad_input(result, "var 'sample_rate' = 7", "--vars on the command line")


def test_dry_run_undeclared_var_close_to_declared_warns(shared: ExampleProject) -> None:
    result = shared.dot("build", "prod", "--dry-run", "--vars", "{sample_rte: 10}")
    assert result.returncode == 0, result.stderr
    assert "warning: var 'sample_rte'" in result.stderr
    assert "did you mean 'sample_rate'?" in result.stderr
    as_json = plan_json(
        shared.dot("build", "prod", "--dry-run", "--json", "--vars", "sample_rte: 10")
    )
    assert any("did you mean 'sample_rate'" in w for w in as_json["warnings"])


def test_dry_run_argv_identical_for_vars_in_any_order(shared: ExampleProject) -> None:
    first = shared.dot(
        "build",
        "prod",
        "--dry-run",
        "--json",
        "--vars",
        '{"sample_rate": 50, "extra": {"x": 1, "y": 2}}',
    )
    second = shared.dot(
        "build",
        "--vars",
        '{"extra": {"y": 2, "x": 1}, "sample_rate": 50}',
        "prod",
        "--dry-run",
        "--json",
    )
    assert plan_json(first)["argv"] == plan_json(second)["argv"]
    assert '"sample_rate":50' in " ".join(plan_json(first)["argv"])


def test_dry_run_no_vars_passes_no_vars_flag(example: ExampleProject) -> None:
    (example.path / "dot_environments.yml").unlink()
    (example.path / "dot_vars.yml").unlink()
    plan = plan_json(example.dot("build", "--dry-run", "--json"))
    assert plan["environment"] is None
    assert plan["vars"] == {}
    assert "--vars" not in plan["argv"]
    assert plan["argv"][:2] == ["dbt", "build"]

"""dbt's flags before `--`, `--version` anywhere, and the switch that maps warnings to exit 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from datum_dot.cli.dbtflags import split_dbt_flags
from datum_dot.cli.main import main
from datum_dot.cli.parser import build_parser, command_parser, warn_exit_zero_env
from datum_dot.errors import UsageError
from tests.helpers.example import ExampleProject, make_example

WARN_TEST = "{{ config(severity='warn') }}\nselect 1 as failure\n"


@pytest.fixture(scope="module")
def project(
    module_monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> ExampleProject:
    base = tmp_path_factory.mktemp("dbt_flags")
    example = make_example(base, monkeypatch_env=False)
    example.repo.commit({"tests/always_warns.sql": WARN_TEST}, "a test that always warns")
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(example.database))
    return example


@pytest.fixture(autouse=True)
def _in_project(project: ExampleProject, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(project.database))
    monkeypatch.chdir(project.path)


def dry_argv(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    capsys.readouterr()
    assert main([args[0], "--dry-run", "--json", *args[1:]]) == 0, capsys.readouterr().err
    plan = json.loads(capsys.readouterr().out)
    argv: list[str] = plan["argv"]
    return argv


@pytest.mark.parametrize(
    "flags",
    [
        ["-s", "orders+", "--full-refresh"],
        ["--select", "stg_orders", "orders", "--exclude", "customers", "-x"],
        ["--select=orders", "--threads", "8", "--empty"],
        ["-t", "dev", "--no-partial-parse", "--resource-type", "model", "seed"],
    ],
)
def test_dbt_flags_before_dashdash_give_the_same_argv_as_after(
    capsys: pytest.CaptureFixture[str], flags: list[str]
) -> None:
    before = dry_argv(capsys, "build", "prod", *flags)
    after = dry_argv(capsys, "build", "prod", "--", *flags)
    assert before == after
    assert before[-len(flags) :] == flags or "-t" in flags  # a target is placed by the plan


def test_dbt_flags_several_words_end_at_the_next_option_as_dbt_reads_them() -> None:
    parser = build_parser("dot", only="build")
    arities = {"-s": "values", "--full-refresh": "flag", "--threads": "value", "--args": "rest"}
    words = [
        "prod",
        "-s",
        "a",
        "b",
        "--dry-run",
        "--threads",
        "4",
        "--full-refresh",
        "--vars",
        "{}",
    ]
    ours, dbt = split_dbt_flags(
        words, command_parser(parser, "build"), ("build",), arities=lambda key: arities
    )
    assert ours == ["prod", "--dry-run", "--vars", "{}"]
    assert dbt == ["-s", "a", "b", "--threads", "4", "--full-refresh"]


def test_dbt_flags_without_their_value_are_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["build", "prod", "-s"], ["build", "prod", "--threads", "--dry-run"]):
        assert main(args) == 20
        err = capsys.readouterr().err
        assert f"error: dbt's {args[2]} needs a value" in err
        assert "Traceback" not in err


def test_dbt_flags_are_not_read_from_dbt_when_every_word_is_ours() -> None:
    def no_dbt(key: tuple[str, ...]) -> Mapping[str, str]:
        raise AssertionError(f"dbt's options were read for {key}")

    parser = build_parser("dot", only="build")
    words = ["prod@main", "--dry-run", "--defer", "prod@v1", "--timeout", "10m", "--json"]
    ours, dbt = split_dbt_flags(words, command_parser(parser, "build"), ("build",), arities=no_dbt)
    assert (ours, dbt) == (words, [])


def test_dbt_flags_that_clash_are_dots(capsys: pytest.CaptureFixture[str]) -> None:
    argv = dry_argv(capsys, "build", "prod", "--vars", "{sample_rate: 5}", "-d")
    # --vars is dot's (merged over the environment's: one --vars); -d is dbt's --debug.
    assert argv.count("--vars") == 1
    assert json.loads(argv[argv.index("--vars") + 1]) == {"feature_flag": True, "sample_rate": 5}
    assert argv[-1] == "-d"


def test_dbt_flags_unknown_one_suggests_from_this_command_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cases = {
        ("build", "prod", "--ful-refresh"): "did you mean '--full-refresh'?",
        ("logs", "--limit", "3"): "`logs` has no --limit option",
        ("clean", "--dry-run"): "`clean` has no --dry-run option",
    }
    for args, expected in cases.items():
        capsys.readouterr()
        assert main(list(args)) == 20
        err = capsys.readouterr().err
        assert expected in err, err
        typed = args[-1] if args[-1].startswith("-") else args[-2]
        assert f"did you mean '{typed}'" not in err
        assert "--timeout" not in err  # an option of other commands
        assert "it is an option of" not in err
    assert "hint: run `dot clean --help` for usage" in err


def test_dbt_flags_help_and_tool_commands_never_import_dbt() -> None:
    code = (
        "import sys\n"
        "from datum_dot.cli.main import main\n"
        "for args in (['--help'], ['build', '--help'], ['logs', '--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "main(['logs', '--last', '1'])\n"
        "print(sorted(m for m in sys.modules if m == 'dbt' or m.startswith('dbt.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    "args", [["build", "--version"], ["logs", "--version"], ["docs", "--version"], ["--version"]]
)
def test_version_is_accepted_after_any_command(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("dot (datum-dot) ")
    assert "dbt-core " in out


def test_json_without_dry_run_is_refused_where_it_would_be_ignored(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["ls", "prod", "--json"]) == 20
    err = capsys.readouterr().err
    assert "--json goes with --dry-run" in err
    assert "--output json" in err


def test_warn_exit_zero_maps_warnings_to_zero_for_the_process_only(
    project: ExampleProject, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deps", "dev"]) == 0
    assert main(["test", "dev", "-s", "always_warns"]) == 10
    assert main(["test", "dev", "-s", "always_warns", "--warn-exit-zero"]) == 0
    capsys.readouterr()
    assert main(["logs", "--json", "--last", "2"]) == 0
    records = json.loads(capsys.readouterr().out)
    # The history keeps what happened: both runs had warnings.
    assert [r["exit_code"] for r in records] == [10, 10]


def test_warn_exit_zero_environment_variable(
    project: ExampleProject, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A registered project without its webhook token: validate passes with a warning.
    assert main(["init"]) == 0
    token = Path(os.environ["DATUM_HOME"]) / "webhook.token"
    token.unlink()
    assert main(["validate"]) == 10
    monkeypatch.setenv("DOT_WARN_EXIT_ZERO", "1")
    assert main(["validate"]) == 0
    monkeypatch.setenv("DOT_WARN_EXIT_ZERO", "sometimes")
    capsys.readouterr()
    assert main(["validate"]) == 20
    err = capsys.readouterr().err
    assert "DOT_WARN_EXIT_ZERO='sometimes' is neither a yes nor a no" in err
    assert "hint: set DOT_WARN_EXIT_ZERO=1" in err


def test_warn_exit_zero_values() -> None:
    assert warn_exit_zero_env({"DOT_WARN_EXIT_ZERO": "true"}) is True
    assert warn_exit_zero_env({"DOT_WARN_EXIT_ZERO": "0"}) is False
    assert warn_exit_zero_env({}) is False
    with pytest.raises(UsageError):
        warn_exit_zero_env({"DOT_WARN_EXIT_ZERO": "2"})


def test_dbts_option_table_is_kept_per_dbt_version_and_read_without_dbt(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from importlib import metadata

    from datum_dot.cli import dbtflags
    from datum_dot.home.settings import datum_home

    cache = datum_home() / "cache" / f"dbt-options-{metadata.version('dbt-core')}.json"
    cache.unlink(missing_ok=True)
    dry_argv(capsys, "build", "prod", "-s", "orders+")
    kept = json.loads(cache.read_text())
    assert kept["build"]["--select"] == "values"
    assert kept["build"]["--full-refresh"] == "flag"
    assert oct(cache.stat().st_mode & 0o777) == "0o600"
    # what is kept is what is read: a table that says otherwise is believed (dbt is not asked)
    cache.write_text(json.dumps({"build": {"--select": "flag"}}))
    assert dbtflags._dbt_arities(("build",)) == {"--select": "flag"}
    # an unreadable cache is asked of dbt again and written again
    cache.write_text("not json")
    assert dbtflags._dbt_arities(("build",))["--select"] == "values"
    assert json.loads(cache.read_text())["build"]["--select"] == "values"

"""One vocabulary over the whole command line: every option of every sub-command, its kind and
its unit, and the rules they keep (units on durations, one spelling per meaning, no option
listed where it does nothing)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from datum_dot import dbtcore
from datum_dot.cli.durations import is_duration_action, parse_seconds
from datum_dot.cli.main import main
from datum_dot.cli.parser import (
    CHECKED_COMMANDS,
    DBT_COMMANDS,
    DEFER_COMMANDS,
    build_parser,
    command_parser,
    dbt_command_key,
)
from datum_dot.errors import UsageError
from datum_dot.runs.plan import WRITING_COMMANDS
from tests.helpers.example import ExampleProject

# Option names (dest) that hold a length of time.
TIME_WORDS = (
    "timeout", "delay", "grace", "older_than", "since", "interval", "wait", "state_age",
)  # fmt: skip
# Each meaning has one visible spelling; the others are hidden aliases, if they exist at all.
SPELLINGS = {
    "the dbt project's folder": ("--project-dir", ("--repo-path", "--project-path")),
    "a registered project's id": ("--project", ("--project-id",)),
    "go ahead without asking": ("--yes", ("--assume-yes", "--force-yes", "--no-confirm")),
    "never ask the optional start-up questions": ("--disable-prompts", ("--no-prompts",)),
}


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _commands(sub, (*path, name))


def _kind(action: argparse.Action) -> str:
    if action.nargs == 0:
        return "flag"
    if is_duration_action(action):
        return f"duration ({getattr(action.type, 'duration_unit', '?')})"
    if action.type is Path:
        return "folder/file"
    if action.choices is not None:
        return "choice"
    if action.type is not None:
        return "number"
    return "text"


def inventory() -> dict[tuple[str, ...], dict[str, tuple[str, argparse.Action]]]:
    """Every visible option of every sub-command, with its kind and unit."""
    found = {}
    for path, sub in _commands(build_parser("dot")):
        found[path] = {
            action.option_strings[-1]: (_kind(action), action)
            for action in sub._actions
            if action.option_strings and action.help != argparse.SUPPRESS
        }
    return found


def test_vocabulary_inventory_lists_every_option_with_a_kind() -> None:
    table = inventory()
    lines = [
        f"{' '.join(p):<24} {o:<22} {k}" for p, opts in table.items() for o, (k, _) in opts.items()
    ]
    assert len(table) > 30
    assert len(lines) > 250
    assert "build                    --timeout              duration (s)" in lines
    assert "clean                    --older-than           duration (age)" in lines


def test_vocabulary_every_duration_option_accepts_units() -> None:
    checked = 0
    for path, options in inventory().items():
        for option, (kind, action) in options.items():
            if not any(word in action.dest for word in TIME_WORDS):
                continue
            assert kind.startswith("duration"), (path, option, kind)
            assert action.type is not None
            value = action.type("10m")
            assert value in (600.0, "10m"), (path, option, value)
            with pytest.raises(UsageError, match="lower-case"):
                action.type("1M")
            checked += 1
    assert checked >= 25  # every dbt command's --timeout and --retry-delay, and the rest


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("10m", 600.0), ("1h30m", 5400.0), ("2d", 172800.0),
     ("1w", 604800.0), ("1.5h", 5400.0), ("0", 0.0)],
)  # fmt: skip
def test_vocabulary_duration_grammar(text: str, seconds: float) -> None:
    assert parse_seconds(text, "--timeout") == seconds


@pytest.mark.parametrize("text", ["1M", "2H", "10 minutes", "m", "-5", "1y", "", "1e9999"])
def test_vocabulary_duration_refusals_exit_20(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_seconds(text, "--timeout")
    assert int(info.value.exit_code) == 20
    assert info.value.hint


def test_vocabulary_one_spelling_per_meaning() -> None:
    visible = {o for options in inventory().values() for o in options}
    for meaning, (spelling, others) in SPELLINGS.items():
        assert spelling in visible, meaning
        assert not visible & set(others), (meaning, visible & set(others))
    for path, options in inventory().items():
        for option, (kind, action) in options.items():
            if action.dest in ("project_dir", "repo_path"):
                assert (option, kind) == ("--project-dir", "folder/file"), path
            if action.dest == "yes":
                assert action.option_strings == ["-y", "--yes"], path


def test_vocabulary_old_spellings_still_work(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser("dot")
    assert parser.parse_args(["init", "--repo-path", "x"]).repo_path == Path("x")
    assert parser.parse_args(["init", "--project-dir", "y"]).repo_path == Path("y")


def test_vocabulary_no_option_where_it_does_nothing() -> None:
    table = inventory()
    assert CHECKED_COMMANDS == WRITING_COMMANDS
    for name in DBT_COMMANDS:
        options = table[(name,)]
        assert ("--no-deps" in options) == (name != "deps"), name
        assert ("--defer" in options) == (name in DEFER_COMMANDS), name
        assert ("--allow-unisolated" in options) == (name in CHECKED_COMMANDS), name
    deps = table[("deps",)]
    assert not {"--no-deps", "--defer", "--allow-unisolated"} & set(deps)
    # dot's --defer is passed as dbt's --defer/--state: every command offering it must take them.
    for name in DEFER_COMMANDS:
        assert "--state" in dbtcore.command_options((name,)), name


def test_vocabulary_state_options_go_where_defer_goes() -> None:
    table = inventory()
    for name in DBT_COMMANDS:
        for option in ("--state-source", "--state-from", "--max-state-age"):
            assert (option in table[(name,)]) == (name in DEFER_COMMANDS), (name, option)
    build = table[("build",)]
    assert build["--max-state-age"][0] == "duration (s)"
    assert build["--state-source"][1].choices == ("history", "cloud")
    assert build["--defer"][1].metavar == "ENV[@REF]"
    assert build["--state-from"][1].metavar == "ENV@REF"
    # dot's --state-from is passed as dbt's --state (and --defer-state beside --defer).
    for name in DEFER_COMMANDS:
        assert "--defer-state" in dbtcore.command_options((name,)), name
    assert table[("logs",)]["--artifacts"][0] == "flag"
    assert {"--json", "--project"} <= set(table[("which",)])


def test_vocabulary_dbt_flags_are_not_shadowed_by_accident() -> None:
    # Where dot and dbt spell an option the same, dot's wins; the list is documented.
    documented = {"--defer", "--vars", "--project-dir", "--debug", "--log-format", "--version",
                  "-h", "--help"}  # fmt: skip
    parser = build_parser("dot")
    for name in DBT_COMMANDS:
        key = dbt_command_key(name, ["generate", "freshness"])
        ours = set(command_parser(parser, name)._option_string_actions)
        shared = ours & dbtcore.command_options(key)
        assert shared <= documented, (name, shared - documented)


def test_vocabulary_deps_help_lists_no_idle_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["deps", "--help"])
    out = capsys.readouterr().out
    for option in ("--no-deps", "--defer", "--allow-unisolated"):
        assert option not in out.split("Options dot and dbt")[0], option


def test_vocabulary_config_set_target_warns_when_every_environment_sets_one(
    example: ExampleProject, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(example.path)
    assert main(["init"]) == 0
    capsys.readouterr()
    assert main(["config", "set", "target", "prod"]) == 10
    captured = capsys.readouterr()
    assert "saved" not in captured.out
    assert "no run changes: every environment sets its own target" in captured.err
    # Once an environment leaves its target to the registration, the value is used: saved.
    envs = example.path / "dot_environments.yml"
    envs.write_text(
        envs.read_text().replace("    target: dev\n    full-refresh", "    full-refresh")
    )
    assert main(["config", "set", "target", "dev"]) == 0
    assert "saved" in capsys.readouterr().out


def test_vocabulary_datum_run_target_picks_the_environment_of_that_target(
    example: ExampleProject, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(example.path)
    capsys.readouterr()
    assert main(["dbt", "run", "--target", "prod", "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["environment"] == "prod"
    assert json.loads(plan["argv"][plan["argv"].index("--vars") + 1])["sample_rate"] == 100
    assert main(["dbt", "run", "--target", "nope", "--dry-run"]) == 20
    err = capsys.readouterr().err
    assert "no environment in dot_environments.yml sets target 'nope'" in err
    assert "-- --target nope" in err


def test_vocabulary_datum_dbt_build_names_the_dot_spelling(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["dbt", "build"]) == 20
    err = capsys.readouterr().err
    assert "invalid choice" not in err
    assert "`dot dbt build` is not a command: `dot dbt` takes init, validate, run" in err
    assert "hint: dbt build is `dot build`" in err


def test_vocabulary_schedule_add_with_only_a_spec_names_the_schedule_after_it(
    example: ExampleProject,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(example.path)
    monkeypatch.setenv("DOT_CRONTAB", str(tmp_path / "crontab"))
    assert main(["schedule", "add", "--cron", "0 6 * * *", "prod@main", "--dry-run"]) == 0
    assert "schedule  prod-main of project" in capsys.readouterr().out


def test_vocabulary_schedule_run_help_says_when_it_prints_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["schedule", "run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "Prints one line." not in out
    assert "with --from-cron (what the crontab line passes) only the summary line" in out


def test_vocabulary_validate_passes_an_unregistered_project(
    example: ExampleProject, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(example.path)
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert "- registration" in out
    assert "runs work without it; `dot init` adds a key pair" in out
    assert "- webhook token      needs a registered project" in out


def test_vocabulary_every_command_on_a_project_takes_project_id() -> None:
    table = inventory()
    with_folder = [p for p, opts in table.items() if "--project-dir" in opts and p != ("init",)]
    assert len(with_folder) > 20  # every dbt command, validate, config, builds, clean, ...
    for path in with_folder:
        kind, action = table[path]["--project"]
        assert (kind, action.metavar) == ("text", "ID"), path
    for path in (("logs",), ("which",), ("schedule", "list"), ("schedule", "run")):
        assert "--project" in table[path], path
    top = build_parser("dot")._option_string_actions["--project"]
    assert top.metavar == "ID"
    assert top.help is not None
    assert "registered project" in top.help

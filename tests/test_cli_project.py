"""`--project ID`: a registered project by id, on every command, before or after the command word."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datum_dot.cli.main import main
from datum_dot.home.registration import InitRequest, init_project
from datum_dot.home.settings import datum_home
from tests.helpers.example import ExampleProject


@pytest.fixture
def registered(example: ExampleProject) -> str:
    """The example, registered; returns its id."""
    return init_project(InitRequest(repo_path=example.path), home=datum_home()).project_id


def _plan(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data: dict[str, object] = json.loads(captured.out)
    return data


@pytest.mark.parametrize(
    "argv",
    [
        ("build", "--project", "{id}", "--dry-run", "--json"),
        ("--project", "{id}", "build", "--dry-run", "--json"),
        ("--project={id}", "build", "--dry-run", "--json"),
        ("dbt", "run", "--project", "{id}", "--dry-run", "--json"),
        ("--project", "{id}", "dbt", "run", "--dry-run", "--json"),
    ],
)
def test_project_id_resolves_the_registered_folder_from_anywhere(
    registered: str,
    example: ExampleProject,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    plan = _plan(capsys, *(a.replace("{id}", registered) for a in argv))
    assert plan["project_dir"] == str(example.path.resolve())


def test_project_id_with_datum_target_picks_that_projects_environment(
    registered: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for argv in (
        ("dbt", "run", "--project", registered, "--target", "prod"),
        ("--project", registered, "dbt", "run", "--target", "prod"),
    ):
        plan = _plan(capsys, *argv, "--dry-run", "--json")
        assert plan["environment"] == "prod", argv


def test_project_unknown_id_is_exit_20_listing_the_registered_ones(
    registered: str, example: ExampleProject, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["--project", "nope", "build"], ["validate", "--project", "nope"]):
        assert main(argv) == 20
        err = capsys.readouterr().err
        assert f"error: no project 'nope' in {datum_home() / 'config.yaml'}; registered: " in err
        assert f"{registered} ({example.path.resolve()})" in err
        assert f"hint: pass one of them: --project {registered}" in err
        assert "Traceback" not in err


def test_project_unknown_id_with_nothing_registered_says_how_to_register(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["logs", "--project", "shop", "--last", "1"]) == 0  # a filter on recorded runs
    capsys.readouterr()
    assert main(["builds", "--project", "shop"]) == 20
    err = capsys.readouterr().err
    assert "no project 'shop': no project is registered" in err
    assert "hint: register one from its folder: cd <dbt project> && dot init" in err


def test_project_refusals_are_one_line_and_exit_20(
    registered: str, example: ExampleProject, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = {
        ("--project", registered, "webhook", "token"): "`dot webhook token` does not work on one",
        ("--project", registered, "build", "--project-dir", str(example.path)): "both say which",
        ("--project", "a", "build", "--project", "b"): "(before the command) and --project b",
        ("--project", "a", "--project", "b", "build"): "--project is given 2 times: a, b",
        ("build", "--project"): "--project: expected one argument",
        ("--project",): "--project needs a project id",
    }
    for argv, message in cases.items():
        assert main(list(argv)) == 20, argv
        err = capsys.readouterr().err
        assert message in err, (argv, err)
        assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "seen"),
    [
        (("validate", "--project", "{id}"), "✓ dbt_project.yml"),
        (("--project", "{id}", "config", "show"), "--project {id}"),
        (("--project", "{id}", "config"), "project-path"),
        (("builds", "--project", "{id}"), "no isolated builds in {path}"),
        (("--project", "{id}", "schedule"), "no schedules"),
        (("schedule", "--project", "{id}"), "no schedules"),
        (("schedule", "list", "--project", "{id}"), "no schedules"),
        (("--project", "{id}", "runtimes"), "environments: dev, prod, ci"),
        (("dbt", "logs", "--project", "{id}"), "no runs"),
        (("--project", "{id}", "dbt", "validate"), "✓ dbt_project.yml"),
    ],
)
def test_project_id_works_on_every_command_that_works_on_a_project(
    registered: str,
    example: ExampleProject,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    seen: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    code = main([a.replace("{id}", registered) for a in argv])
    captured = capsys.readouterr()
    assert code in (0, 10), captured.err
    where = str(example.path.resolve() / ".dot" / "build")
    assert seen.replace("{path}", where).replace("{id}", registered) in captured.out + captured.err
    assert "found here" not in captured.out  # the project was named, not found around here


def test_project_id_crontab_line_runs_from_another_folder(
    registered: str, example: ExampleProject, tmp_path: Path
) -> None:
    # As the datum spec's crontab line: `datum dbt run --project shop`, started in $HOME.
    assert not example.database.exists()
    for first in ("deps", "seed"):
        done = example.dot("--project", registered, first, "--disable-prompts", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    result = example.dot(
        "dbt", "run", "--project", registered, "--disable-prompts", cwd=tmp_path, program="datum"
    )
    assert result.returncode == 0, result.stderr
    assert _tables(example), "the run built nothing in the warehouse"
    runs = example.dot("logs", "--project", registered, "--json", cwd=tmp_path)
    assert runs.returncode == 0, runs.stderr
    listed = json.loads(runs.stdout)
    assert [r["command"] for r in listed] == [["run"], ["seed"], ["deps"]]
    assert {r["status"] for r in listed} == {"SUCCESS"}


def _tables(example: ExampleProject) -> list[tuple[str, str]]:
    rows = example.query("select table_schema, table_name from information_schema.tables")
    return [(str(s), str(t)) for s, t in rows]

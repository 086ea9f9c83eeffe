"""A run makes the cheap pre-flight checks first: `dot validate`'s message and exit 20 on a failure."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable

import pytest

from datum_dot.cli.main import main
from datum_dot.home.registration import InitRequest, init_project
from datum_dot.home.settings import datum_home
from datum_dot.preflight import Options, Status, run_preflight
from datum_dot.preflight.quick import run_cheap_preflight
from tests.helpers.example import ExampleProject


@pytest.fixture
def registered(example: ExampleProject, monkeypatch: pytest.MonkeyPatch) -> ExampleProject:
    init_project(InitRequest(repo_path=example.path), home=datum_home())
    monkeypatch.chdir(example.path)
    return example


def _key_mode(project: ExampleProject) -> None:
    (datum_home() / "keys" / "jaffle_dot.pem").chmod(0o644)


def _profile_name(project: ExampleProject) -> None:
    path = project.path / "dbt_project.yml"
    path.write_text(path.read_text().replace("profile: jaffle_dot", "profile: warehouse"))


def _environment_target(project: ExampleProject) -> None:
    path = project.path / "dot_environments.yml"
    path.write_text(path.read_text().replace("target: dev", "target: staging", 1))


def _vars(project: ExampleProject) -> None:
    path = project.path / "dot_environments.yml"
    path.write_text(path.read_text().replace("sample_rate: 10", "sample_rate: 7", 1))


def _profiles_missing(project: ExampleProject) -> None:
    (project.path / "profiles.yml").unlink()


@pytest.mark.parametrize(
    ("name", "breaks"),
    [
        ("key", _key_mode),
        ("profile", _profile_name),
        ("target", _environment_target),
        ("dot config", _vars),
        ("profiles.yml", _profiles_missing),
    ],
)
def test_preflight_run_stops_with_validates_message(
    registered: ExampleProject,
    capsys: pytest.CaptureFixture[str],
    name: str,
    breaks: Callable[[ExampleProject], None],
) -> None:
    breaks(registered)
    full = run_preflight(registered.path, home=datum_home(), environ=os.environ, options=Options())
    (failed,) = [c for c in full.checks if c.name == name]
    assert failed.status is Status.FAIL
    assert main(["run", "--disable-prompts"]) == 20
    err = capsys.readouterr().err
    assert f"error: pre-flight check failed: {name}: {failed.detail}" in err
    assert f"hint: {failed.fix}; `dot validate` shows every check; --no-preflight skips" in err
    assert "Traceback" not in err
    assert not registered.database.exists()  # dbt never started
    assert main(["logs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # and no run was recorded


def test_preflight_run_no_preflight_goes_on_to_dbt(
    registered: ExampleProject, capsys: pytest.CaptureFixture[str]
) -> None:
    _key_mode(registered)
    # dbt starts (and stops at the missing `dbt deps`, which is dbt's to say): no pre-flight.
    assert main(["run", "--disable-prompts", "--no-preflight"]) == 30
    captured = capsys.readouterr()
    assert "pre-flight" not in captured.err
    assert "dbt found 1 package(s) specified in packages.yml" in captured.err
    assert main(["logs", "--json"]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert (run["command"], run["status"]) == (["run"], "FAILED")


def test_preflight_run_checks_the_target_given_to_dbt(
    registered: ExampleProject, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--debug", "--", "--target", "nope"]) == 20
    err = capsys.readouterr().err
    assert "pre-flight: 6 checks in " in err
    assert "error: pre-flight check failed: target: target 'nope' (flag: --target)" in err
    # deps needs no profile: it makes no pre-flight and has no option to skip one.
    with pytest.raises(SystemExit):
        main(["deps", "--help"])
    assert "--no-preflight" not in capsys.readouterr().out


def test_preflight_run_cheap_checks_take_under_50_ms(registered: ExampleProject) -> None:
    def once() -> float:
        started = time.perf_counter()
        report = run_cheap_preflight(
            registered.path, home=datum_home(), environ=os.environ, env_name="prod"
        )
        took = time.perf_counter() - started
        assert {c.status for c in report.checks} == {Status.OK}, report.checks
        return took

    once()  # the modules a run loads anyway
    assert statistics.median(once() for _ in range(7)) < 0.05


def test_preflight_validate_without_connection_says_it_was_not_tested(
    registered: ExampleProject, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert "- connection         not tested: pass --connection to test it with dbt debug" in out

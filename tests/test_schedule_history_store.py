"""`dot schedule add` says when cron's runs would not reach the PostgreSQL history this shell uses.

A crontab line carries `DATUM_HOME`, never a connection string (it may hold a password), so a
schedule added with only `DATUM_DATABASE_URL` set records its runs in SQLite. No database is
needed to say so: adding a schedule never opens the history.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.example import ExampleProject, make_example

URL = "postgresql://dot@127.0.0.1:1/datum"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ExampleProject:
    monkeypatch.setenv("DATUM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOT_CRONTAB", str(tmp_path / "crontab"))
    return make_example(tmp_path)


def _add(project: ExampleProject, name: str, env: dict[str, str]) -> tuple[int, str]:
    added = project.dot("schedule", "add", name, "--cron", "0 6 * * *", "prod@HEAD", "--yes",
                        env=env)  # fmt: skip
    return added.returncode, added.stderr


def test_a_url_only_in_the_shell_is_named_with_the_setting_that_reaches_cron(
    project: ExampleProject, tmp_path: Path
) -> None:
    code, err = _add(project, "nightly", {"DATUM_DATABASE_URL": URL})
    assert code == 0, err
    assert "warning: DATUM_DATABASE_URL is set in this shell, but cron does not pass it on" in err
    assert f"recorded in SQLite under {tmp_path / 'home'}" in err
    assert "dot config set database.url <URL without its password>" in err
    # the crontab line never carries the connection string
    assert URL not in (tmp_path / "crontab").read_text()


def test_no_warning_when_config_names_the_database_or_no_url_is_set(
    project: ExampleProject,
) -> None:
    code, err = _add(project, "plain", {})
    assert code == 0, err
    assert "DATUM_DATABASE_URL" not in err
    assert project.dot("config", "set", "database.url", URL).returncode == 0
    code, err = _add(project, "shared", {"DATUM_DATABASE_URL": URL})
    assert code == 0, err
    assert "warning" not in err

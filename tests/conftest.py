"""Shared fixtures: every test runs hermetic (own HOME, DATUM_HOME, git config)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.helpers.example import ExampleProject, make_example

HERMETIC_ENV = {
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.invalid",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.invalid",
    "GIT_TERMINAL_PROMPT": "0",
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "NO_COLOR": "1",
}

# The suite runs on a 2-core machine shared with other work: under load, generating inputs is
# slow and timings are noise, which says nothing about the code under test. Another profile can
# be chosen with HYPOTHESIS_PROFILE.
settings.register_profile(
    "shared-machine", suppress_health_check=[HealthCheck.too_slow], deadline=None
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "shared-machine"))


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """Put the environment back after each test.

    The command line sets variables for its own process and the programs it starts
    (`DBT_USE_COLORS`, a schedule's `DBT_TARGET`, `DOT_LOG_FORMAT`); a test that calls `main()`
    in this process must not leave them to the tests after it.
    """
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def hermetic(
    _environment_restored: None,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """Point HOME, DATUM_HOME and git's config away from the real user's."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DATUM_HOME", str(home / ".datum"))
    for key, value in HERMETIC_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("DBT_PROFILES_DIR", "DOT_CRONTAB", "CI", "DBT_TARGET_PATH", "DBT_LOG_PATH"):
        monkeypatch.delenv(key, raising=False)
    return home


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ExampleProject:
    """A fresh copy of the example project in its own git repository (one commit)."""
    monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(tmp_path / "warehouse.duckdb"))
    return make_example(tmp_path, monkeypatch_env=False)


# The session fixture `postgres_server` (a throwaway PostgreSQL cluster) lives with its helpers.
pytest_plugins = ["tests.helpers.postgres"]


@pytest.fixture(scope="module")
def module_monkeypatch(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> pytest.MonkeyPatch:
    """A monkeypatch for module-scoped fixtures, undone after the module, already hermetic.

    Module-scoped fixtures are set up before the function-scoped `hermetic`, so they get the same
    environment (own HOME and DATUM_HOME, git's config away from the user's) from this one.
    """
    mp = pytest.MonkeyPatch()
    request.addfinalizer(mp.undo)  # noqa: PT021 - returns the MonkeyPatch, so no yield
    home = tmp_path_factory.mktemp("module_home")
    mp.setenv("HOME", str(home))
    mp.setenv("DATUM_HOME", str(home / ".datum"))
    for key, value in HERMETIC_ENV.items():
        mp.setenv(key, value)
    for key in ("DBT_PROFILES_DIR", "DOT_CRONTAB", "CI", "DBT_TARGET_PATH", "DBT_LOG_PATH"):
        mp.delenv(key, raising=False)
    return mp

"""Everything dot writes under `$DATUM_HOME` is private: folders 0700, files 0600, whatever the umask.

One module-scoped world, under the common umask 022: a bad command that writes only the session
log (so the log creates `$DATUM_HOME`), `dot init`, a real `dot build` on DuckDB, a schedule added
to a `DOT_CRONTAB` file and fired as cron fires it (`dot schedule run` and `cron.log`), and a run
accepted by the webhook server (a fake dbt). Then the whole tree is walked.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from datum_dot.home import sessionlog
from datum_dot.runs import prompts
from tests.helpers.example import ExampleProject, make_example
from tests.helpers.schedules import fire_line, write_crontab
from tests.helpers.webhook import environ, start_server, use_fake_dbt, write_fake_dbt

pytestmark = pytest.mark.xdist_group("private_home")


@dataclass(frozen=True)
class World:
    """What the module's commands left behind.

    Attributes:
        example: The project.
        home: Its `$DATUM_HOME`.
        outcomes: Each command's exit code and output, by a short name.
    """

    example: ExampleProject
    home: Path
    outcomes: dict[str, tuple[int, str]]


@pytest.fixture(scope="module")
def world(
    module_monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    base = tmp_path_factory.mktemp("private_home")
    user_home = Path(os.environ["HOME"])
    home = Path(os.environ["DATUM_HOME"])
    example = make_example(base, monkeypatch_env=False)
    crontab = base / "crontab"
    write_crontab(crontab, example.database)
    module_monkeypatch.setenv("DOT_CRONTAB", str(crontab))
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(example.database))
    previous = os.umask(0o022)
    outcomes: dict[str, tuple[int, str]] = {}
    try:
        assert not home.exists()
        bad = example.dot("build", "no_such_env")
        outcomes["bad input"] = (bad.returncode, bad.stderr)
        for name, args in {
            "init": ("init",),
            "deps": ("deps",),
            "build": ("build",),
            "schedule add": ("schedule", "add", "nightly", "--cron", "0 6 * * *", "prod", "--yes"),
        }.items():
            done = example.dot(*args)
            outcomes[name] = (done.returncode, done.stdout + done.stderr)
        fired = fire_line(crontab, "nightly", home=user_home, cwd=base)
        outcomes["schedule run"] = (fired.returncode, fired.stdout.read() if fired.stdout else "")
        use_fake_dbt(example.path, write_fake_dbt(base), envs=("prod",))
        server = start_server(example.path, env=environ())
        try:
            with server.client() as client:
                accepted = client.post("/v1/projects/jaffle_dot/runs", json={"spec": "prod"})
            assert accepted.status_code == 202, accepted.text
            record = server.wait_for(accepted.json()["run_id"])
            outcomes["webhook run"] = (0 if record["status"] == "SUCCESS" else 1, str(record))
        finally:
            outcomes["webhook stop"] = (server.stop(), server.log())
        yield World(example, home, outcomes)
    finally:
        os.umask(previous)


@pytest.mark.slow
def test_private_home_every_command_of_the_world_ran(world: World) -> None:
    expected = {"bad input": 20}
    for name, (code, output) in world.outcomes.items():
        assert code == expected.get(name, 0), (name, output)


@pytest.mark.slow
def test_private_home_every_folder_is_0700_and_every_file_0600(world: World) -> None:
    assert {"logs", "runs", "history.sqlite", "config.yaml", "cron.log"} <= {
        p.name for p in world.home.iterdir()
    }
    found = {
        path: stat.S_IMODE(path.lstat().st_mode) for path in [world.home, *world.home.rglob("*")]
    }
    assert len(found) > 20
    wrong = {
        str(path.relative_to(world.home.parent)): oct(mode)
        for path, mode in found.items()
        if mode != (0o700 if path.is_dir() else 0o600)
    }
    assert wrong == {}
    assert all(path.is_dir() or path.is_file() for path in found)  # no link, socket or pipe


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def modes(home: Path) -> dict[str, str]:
    return {
        str(path.relative_to(home.parent)): oct(stat.S_IMODE(path.lstat().st_mode))
        for path in [home, *home.rglob("*")]
    }


@pytest.mark.usefixtures("umask_022")
def test_private_home_made_by_the_session_log_is_0700(tmp_path: Path) -> None:
    home = tmp_path / "new" / ".datum"
    path = sessionlog.write_event("info", "the first thing written", home=home)
    assert path is not None
    assert modes(home) == {
        ".datum": "0o700",
        ".datum/logs": "0o700",
        f".datum/logs/{path.name}": "0o600",
    }


@pytest.mark.usefixtures("umask_022")
def test_private_home_declined_prompt_file_is_0600(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / ".datum"
    monkeypatch.setenv("DATUM_HOME", str(home))
    prompts.decline(tmp_path, prompts.VSCODE)
    assert modes(home) == {".datum": "0o700", ".datum/prompts.json": "0o600"}

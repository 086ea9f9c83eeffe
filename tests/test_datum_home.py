"""An unusable `$DATUM_HOME` (read-only, a file, a `~user` of nobody) is bad input, not a bug.

The installed `dot` runs as a subprocess against the example project. A read-only folder is a
read-only tmpfs mount: the tests run as root, for whom no file mode makes a folder read-only.
"""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from datum_dot.errors import DatumHomeError
from datum_dot.home import privatefiles
from tests.helpers.example import ExampleProject, make_example
from tests.helpers.webhook import free_port

# The commands users run that write to $DATUM_HOME; each must stop with exit 20 and the path.
WRITING_COMMANDS = {
    "build": ("build",),
    "isolated-build": ("build", "prod@main"),
    "config-set": ("config", "set", "runtime", "subprocess"),
    "init": ("init",),
    "schedule-add": ("schedule", "add", "nightly", "--cron", "0 6 * * *", "prod@main", "--yes"),
    "webhook-serve": ("webhook", "serve", "--port", "PORT"),
}
READING_COMMANDS = {"logs": ("logs",), "schedule-list": ("schedule", "list")}
CRONTAB = "MAILTO=ops@example.invalid\n"


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory, module_monkeypatch: pytest.MonkeyPatch
) -> ExampleProject:
    """One example project: every command here stops before it writes anything to it."""
    base = tmp_path_factory.mktemp("datum-home")
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(base / "warehouse.duckdb"))
    (base / "crontab").write_text(CRONTAB)
    return make_example(base, monkeypatch_env=False)


@pytest.fixture(scope="module")
def read_only_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty folder on a read-only file system."""
    folder = tmp_path_factory.mktemp("ro-home")
    mount = ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)]
    subprocess.run(mount, check=True, timeout=30)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, timeout=30)


def run_dot(
    project: ExampleProject, home: str, args: tuple[str, ...]
) -> subprocess.CompletedProcess[str]:
    """`dot ARGS` in the project with DATUM_HOME set to `home`, and a crontab file of its own."""
    argv = tuple(str(free_port()) if arg == "PORT" else arg for arg in args)
    env = {"DATUM_HOME": home, "DOT_CRONTAB": str(crontab_of(project))}
    return project.dot(*argv, env=env, timeout=60)


def crontab_of(project: ExampleProject) -> Path:
    """The DOT_CRONTAB file `schedule add` would write."""
    return project.repo.path.parent / "crontab"


def assert_bad_input(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 20; stderr ends with one `error:` line and one `hint:` line; no traceback anywhere."""
    assert result.returncode == 20, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert lines[-2].startswith("error: "), result.stderr
    assert lines[-1].startswith("hint: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "this is a bug" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


@pytest.mark.parametrize("command", WRITING_COMMANDS)
def test_read_only_datum_home_is_bad_input_not_a_bug(
    project: ExampleProject, read_only_home: Path, command: str
) -> None:
    result = run_dot(project, str(read_only_home), WRITING_COMMANDS[command])
    assert_bad_input(
        result, f"cannot write to DATUM_HOME {read_only_home}", "read-only", "DATUM_HOME"
    )
    assert not (project.path / ".dot").exists()
    assert crontab_of(project).read_text() == CRONTAB


@pytest.mark.parametrize("command", [*WRITING_COMMANDS, *READING_COMMANDS])
def test_datum_home_that_is_a_file_is_bad_input_not_a_bug(
    project: ExampleProject, tmp_path: Path, command: str
) -> None:
    blocker = tmp_path / "datum-home"
    blocker.write_text("not a folder\n")
    args = {**WRITING_COMMANDS, **READING_COMMANDS}[command]
    result = run_dot(project, str(blocker), args)
    assert_bad_input(result, f"{blocker} is a file, not a folder", f"mv {blocker} {blocker}.bak")
    assert blocker.read_text() == "not a folder\n"


def test_datum_home_of_an_unknown_user_is_bad_input(project: ExampleProject) -> None:
    result = run_dot(project, "~no-such-user-of-dot/datum", ("logs",))
    assert_bad_input(result, "DATUM_HOME ~no-such-user-of-dot/datum", "export DATUM_HOME=")


def test_session_log_that_cannot_be_written_does_not_crash_the_command(
    project: ExampleProject,
) -> None:
    # The error report itself writes to the session log, which has no folder here.
    result = run_dot(project, "~no-such-user-of-dot/datum", ("biuld",))
    assert_bad_input(result, "unknown command 'biuld'; did you mean 'build'?")


def test_read_only_datum_home_still_reads_an_empty_history(
    project: ExampleProject, read_only_home: Path
) -> None:
    # Reading needs no write: the session log goes unwritten and the command still succeeds.
    result = run_dot(project, str(read_only_home), ("logs",))
    assert result.returncode == 0, result.stderr
    assert "no runs recorded yet" in result.stderr


def test_home_error_is_only_for_paths_in_datum_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    inside = OSError(errno.EROFS, "Read-only file system", str(home / "runs"))
    elsewhere = OSError(errno.EROFS, "Read-only file system", str(tmp_path / "elsewhere"))
    unexplained = OSError(errno.EIO, "Input/output error", str(home / "runs"))
    assert isinstance(privatefiles.home_error(home, inside), DatumHomeError)
    assert privatefiles.home_error(home, elsewhere) is None
    assert privatefiles.home_error(home, unexplained) is None

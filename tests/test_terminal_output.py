"""What a person sees: dbt's lines once in a file, a live display on a terminal, pipes that close.

One example project serves every real run here; the terminal runs use a pseudo-terminal (and
tmux, at 80 columns) so that what is asserted is what a screen shows.
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from datum_dot.cli import terminal
from datum_dot.cli.progress import ProgressView
from datum_dot.runtimes import output
from datum_dot.runtimes.output import LevelTagger, TeeStream, TerminalPolicy
from tests.helpers.ci import skip_or_fail
from tests.helpers.example import BIN, ExampleProject, make_example

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
NODE_LINE = re.compile(r"\d+ of \d+ (START|OK|PASS)")
# Colours and terminal variables of the person running the tests must not decide the outcome.
UNSET = frozenset(
    {"NO_COLOR", "FORCE_COLOR", "DBT_USE_COLORS", "COLUMNS", "LINES", "TTY_COMPATIBLE",
     "TTY_INTERACTIVE", "TMUX"}
)  # fmt: skip


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    return {**env, "TERM": "xterm-256color", **extra}


@dataclass(frozen=True)
class Project:
    example: ExampleProject
    env: dict[str, str]

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "dot"), *args],
            cwd=self.example.path,
            env={**self.env, **extra},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def history(self) -> list[dict[str, object]]:
        got = self.run("logs", "--json", "--last", "50")
        assert got.returncode == 0, got.stderr
        runs = json.loads(got.stdout)
        assert isinstance(runs, list)
        return runs


@pytest.fixture(scope="module")
def project(
    module_monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Project:
    example = make_example(tmp_path_factory.mktemp("terminal"))
    env = _env()
    got = subprocess.run(
        [str(BIN / "dot"), "deps", "--disable-prompts"],
        cwd=example.path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert got.returncode == 0, got.stderr
    return Project(example, env)


@dataclass(frozen=True)
class Screenful:
    """Everything a pseudo-terminal received, and when each piece arrived."""

    chunks: list[tuple[float, str]]
    code: int

    @property
    def text(self) -> str:
        return "".join(text for _, text in self.chunks)


def run_in_pty(project: Project, *args: str, **extra: str) -> Screenful:
    """Run `dot` with stdout and stderr on one pseudo-terminal (as in a terminal window)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: become `dot`
        os.chdir(project.example.path)
        env = {**project.env, **extra, "COLUMNS": "100"}
        argv = [str(BIN / "dot"), args[0], "--disable-prompts", *args[1:]]
        os.execve(argv[0], argv, env)  # noqa: S606 - the program and its words, no shell
    chunks: list[tuple[float, str]] = []
    started = time.monotonic()
    while True:
        ready, _, _ = select.select([fd], [], [], 120)
        assert ready, "dot printed nothing for 120 s"
        try:
            data = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append((time.monotonic() - started, data.decode("utf-8", "replace")))
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return Screenful(chunks, os.waitstatus_to_exitcode(status))


# --- a file, a pipe ------------------------------------------------------------------------


@pytest.mark.slow
def test_to_a_file_each_dbt_line_is_written_once_without_colour(project: Project) -> None:
    got = project.run("build", "prod", "--disable-prompts")
    assert got.returncode == 0, got.stderr
    node_lines = [line for line in got.stdout.splitlines() if NODE_LINE.search(line)]
    assert len(node_lines) >= 38 * 2 - 1  # a START and a result line for (nearly) every node
    # once: no progress line per node beside dbt's own (they were `[12:00:00] 1/38 success ...`)
    assert not re.search(r"\d+/\d+ (success|pass|OK)", got.stderr)
    assert ANSI.search(got.stdout) is None
    assert ANSI.search(got.stderr) is None
    (summary,) = got.stderr.splitlines()
    assert summary.startswith("SUCCESS: dbt build prod")
    assert "38 nodes: 38 passed" in summary


@pytest.mark.slow
def test_force_color_colours_a_file_and_no_color_wins(project: Project) -> None:
    forced = project.run("seed", "prod", "--disable-prompts", FORCE_COLOR="1")
    assert forced.returncode == 0, forced.stderr
    assert ANSI.search(forced.stdout) is not None
    both = project.run("seed", "prod", "--disable-prompts", FORCE_COLOR="1", NO_COLOR="1")
    assert both.returncode == 0, both.stderr
    assert ANSI.search(both.stdout) is None
    assert "OK loaded seed file" in both.stdout


@pytest.mark.slow
def test_a_build_whose_reader_went_away_builds_to_the_end_and_is_recorded(
    project: Project,
) -> None:
    proc = subprocess.Popen(
        [str(BIN / "dot"), "build", "prod", "--disable-prompts"],
        cwd=project.example.path,
        env=project.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    first = [proc.stdout.readline() for _ in range(3)]  # `| head -3`
    proc.stdout.close()
    err = proc.stderr.read()
    code = proc.wait(timeout=300)
    assert all(line.strip() for line in first)
    assert code == 0, err
    assert "Logging error" not in err
    assert "Traceback" not in err
    assert "Broken pipe" not in err
    assert err.startswith("SUCCESS: dbt build prod"), err
    newest = project.history()[0]
    assert newest["status"] == "SUCCESS"
    assert newest["command"] == ["build"]
    assert "38 of 38" in _log(
        project, newest
    )  # dbt's last node line, written after the pipe closed


@pytest.mark.parametrize("listing", [("logs",), ("logs", "--json"), ("runtimes",), ("builds",)])
def test_a_listing_whose_reader_went_away_stops_quietly(
    project: Project, listing: tuple[str, ...]
) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    try:
        got = subprocess.run(
            [str(BIN / "dot"), *listing],
            cwd=project.example.path,
            env=project.env,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    assert got.stderr == ""
    assert got.returncode == 141  # as a Unix tool killed by SIGPIPE


# --- a terminal ----------------------------------------------------------------------------


@pytest.mark.slow
def test_on_a_terminal_a_status_line_comes_first_then_the_bar_then_the_summary(
    project: Project,
) -> None:
    screen = run_in_pty(project, "build", "prod")
    assert screen.code == 0, screen.text
    first_time, first = screen.chunks[0]
    # the first thing on the screen is the status line, before any of dbt's lines
    assert "dot: planning ..." in first, first
    assert "Running with dbt" not in screen.text
    assert not NODE_LINE.search(screen.text)  # dbt's node lines are not shown beside the bar
    assert "38/38" in ANSI.sub("", screen.text) or "/38" in ANSI.sub("", screen.text)
    assert "SUCCESS: dbt build prod" in ANSI.sub("", screen.text)
    assert first_time < 5  # generous: the order above is the promise, this only catches a hang


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["local", "subprocess"])
def test_on_a_terminal_dbt_errors_are_shown_and_its_other_lines_are_not(
    project: Project, runtime: str, tmp_path: Path
) -> None:
    broken = project.example.path / "models" / f"broken_{runtime}.sql"
    broken.write_text("select * from a_table_that_is_not_there\n")
    try:
        # --timeout runs in-process dbt in a child process: its lines travel by pipe
        extra = ("--timeout", "600") if runtime == "local" else ()
        screen = run_in_pty(
            project, "run", "prod", "--runtime", runtime, *extra, "--", "-s", broken.stem
        )
    finally:
        broken.unlink()
    text = ANSI.sub("", screen.text)
    assert screen.code == 30, text
    assert "a_table_that_is_not_there" in text  # dbt's error, in full
    assert f"Failure in model {broken.stem}" in text or "Database Error" in text
    assert "Running with dbt" not in text  # an info line
    assert "START sql" not in text
    assert "FAILED: dbt run prod" in text
    # every line is still in the history
    newest = project.history()[0]
    assert newest["status"] == "FAILED"
    log = _log(project, newest)
    assert "Running with dbt" in log
    assert f"START sql view model analytics.{broken.stem}" in log


def _log(project: Project, run: dict[str, object]) -> str:
    got = project.run("logs", str(run["run_id"]), "--raw")
    return got.stdout


@pytest.mark.slow
def test_tmux_at_80_columns_shows_the_summary_and_no_node_lines(
    project: Project, tmp_path: Path
) -> None:
    if shutil.which("tmux") is None:
        skip_or_fail("tmux is not installed")
    session = f"dot{uuid.uuid4().hex[:8]}"
    done = tmp_path / "done"
    script = tmp_path / "run.sh"
    env_lines = "".join(
        f"export {k}={json.dumps(v)}\n" for k, v in project.env.items() if k.isidentifier()
    )
    script.write_text(
        f"{env_lines}cd {project.example.path}\n"
        f'{BIN / "dot"} build prod --disable-prompts; echo "exit=$?" > {done}\n'
        "sleep 600\n"
    )
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "40", f"bash {script}"],
        check=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert done.read_text().strip() == "exit=0"
        pane = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", session],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    lines = [line for line in pane.splitlines() if line.strip()]
    assert lines, pane
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].startswith("SUCCESS: dbt build prod"), pane
    assert lines[0].endswith("(exit 0)"), pane  # the summary breaks between its parts
    # the run by the 8 characters `dot logs` shows and takes, whole on one line
    assert re.fullmatch(r"  38 nodes: 38 passed; details: dot logs [0-9a-f]{8}", lines[1]), pane
    assert not NODE_LINE.search(pane)
    assert "planning" not in pane  # the status line gave way
    assert "━" not in pane  # the bar was taken down


# --- the pieces ----------------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize(
    ("out_tty", "err_tty", "command", "environ", "expected"),
    [
        (False, False, "build", {}, (False, False, False)),
        (True, True, "build", {}, (True, True, True)),
        (True, True, "ls", {}, (True, False, True)),  # `ls` prints what was asked for
        (False, True, "build", {}, (True, False, False)),  # `dot build > file`: all lines there
        (True, False, "run", {}, (False, False, True)),  # `2> file`: no bar, every line
        (True, True, "build", {"NO_COLOR": "1"}, (True, True, False)),
        (False, False, "build", {"FORCE_COLOR": "1"}, (False, False, True)),
        (False, False, "build", {"FORCE_COLOR": "1", "NO_COLOR": "1"}, (False, False, False)),
        (True, True, "build", {"TERM": "dumb"}, (False, False, True)),
    ],
)
def test_configure_decides_the_screen(
    out_tty: bool,
    err_tty: bool,
    command: str,
    environ: dict[str, str],
    expected: tuple[bool, bool, bool],
) -> None:
    env = dict(environ)
    saved = output.terminal_policy()
    try:
        screen = terminal.configure(
            (command,), (), stdout=FakeTerminal(out_tty), stderr=FakeTerminal(err_tty), environ=env
        )
        assert (screen.live, screen.problems_only, screen.colour) == expected
        assert output.terminal_policy().problems_only is screen.problems_only
        assert env["DBT_USE_COLORS"] == ("true" if screen.colour else "false")
    finally:
        output.set_terminal_policy(saved)


def test_configure_leaves_a_colour_the_user_chose_for_dbt() -> None:
    saved = output.terminal_policy()
    try:
        env = {"DBT_USE_COLORS": "true", "NO_COLOR": "1"}
        terminal.configure(("build",), (), stdout=FakeTerminal(False), environ=env)
        assert env["DBT_USE_COLORS"] == "true"
        env = {}
        terminal.configure(("build",), ("--use-colors",), stdout=FakeTerminal(False), environ=env)
        assert "DBT_USE_COLORS" not in env
    finally:
        output.set_terminal_policy(saved)


def test_level_tagger_pairs_each_line_with_the_next_event_of_its_thread() -> None:
    got: list[tuple[str, str | None]] = []
    tagger = LevelTagger(lambda stream, text, level: got.append((text, level)))
    tagger.writing()
    tagger.line("stdout", "an info line")
    tagger.level("info")
    tagger.writing()
    tagger.line("stdout", "a warning")
    tagger.line("stdout", "  its second line")
    tagger.level("warn")
    tagger.level("debug")  # a debug event wrote nothing: nothing to pair
    tagger.writing()
    tagger.line("stdout", "a plain print")
    tagger.writing()  # written again before any event: the print had no level
    tagger.line("stdout", "left at the end")
    seen_in_thread: list[int] = []

    def other() -> None:
        tagger.line("stdout", "from another thread")
        tagger.level("error")
        seen_in_thread.append(1)

    worker = threading.Thread(target=other)
    worker.start()
    worker.join()
    tagger.finish()
    assert got == [
        ("an info line", "info"),
        ("a warning", "warn"),
        ("  its second line", "warn"),
        ("a plain print", None),
        ("from another thread", "error"),
        ("left at the end", None),
    ]
    assert seen_in_thread == [1]


@pytest.mark.parametrize(
    ("problems_only", "level", "shown"),
    [(False, "info", True), (True, "info", False), (True, "debug", False), (True, "warn", True),
     (True, "error", True), (True, None, True)],
)  # fmt: skip
def test_policy_shows_problems_and_lines_of_no_known_level(
    problems_only: bool, level: str | None, shown: bool
) -> None:
    assert TerminalPolicy(problems_only=problems_only).shows(level) is shown


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        raise io.UnsupportedOperation("no descriptor")


def test_a_tee_whose_terminal_went_away_still_hands_on_every_line() -> None:
    lines: list[str] = []
    tee = TeeStream(ClosedPipe(), lines.append)
    assert tee.write("first\nsecond\n") == len("first\nsecond\n")
    tee.flush()
    tee.write("third\n")
    assert lines == ["first", "second", "third"]


def test_the_status_line_is_taken_down_before_anything_else_is_written() -> None:
    screen = FakeTerminal(True)
    view = ProgressView(live=True, stream=screen, prog="dot")
    view.status("planning")
    view.status("creating the worktree")
    view.clear_status()
    view.clear_status()  # twice: the second writes nothing
    assert screen.getvalue() == (
        "\r\x1b[2Kdot: planning ...\r\x1b[2Kdot: creating the worktree ...\r\x1b[2K"
    )
    quiet = FakeTerminal(False)
    plain = ProgressView(live=False, stream=quiet)
    plain.status("planning")
    plain.stop()
    assert quiet.getvalue() == ""


@pytest.fixture(autouse=True)
def _policy_is_restored() -> Iterator[None]:
    saved = output.terminal_policy()
    yield
    assert output.terminal_policy() == saved

"""Builders for isolated-build tests: an example project with history, and ways to run `dot`.

`make_history` turns the example project into a repository with several commits, a tag and a
branch, in which `orders.sql` changes between commits, so that builds of two refs differ.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from datum_dot.execute import Observer, execute
from datum_dot.runs.run import RunRecord, RunRequest
from datum_dot.runs.spec import parse_defer_spec, parse_spec
from tests.helpers.example import BIN, EXAMPLE, ExampleProject
from tests.helpers.repo import make_repo

ORDERS = "models/marts/orders.sql"
# A model that fails while DOT_FRAGILE_FAIL=yes is in dbt's environment (a fault that goes away,
# as a transient one does): it selects from a table that never exists.
FRAGILE_SQL = """\
{% if env_var('DOT_FRAGILE_FAIL', 'no') == 'yes' %}
select * from a_table_that_does_not_exist
{% else %}
select 1 as id
{% endif %}
"""
FRAGILE_CHILD_SQL = "select id from {{ ref('fragile') }}\n"
FRAGILE_VAR = """\
  fail_me:
    description: Makes the fragile model fail (for retry tests).
    values: [true, false]
    strict: true
"""


def orders_with_marker(project: Path, marker: str) -> str:
    """The example's orders.sql with a constant `version_marker` column set to `marker`."""
    text = (EXAMPLE / ORDERS).read_text()
    anchor = "    orders.status,\n"
    assert anchor in text, "the example's orders.sql changed; update this builder"
    return text.replace(anchor, f"{anchor}    '{marker}' as version_marker,\n")


@dataclass(frozen=True)
class History:
    """An example project whose repository has history.

    Attributes:
        example: The project (its working tree is at `main`, the `v2` commit).
        commits: Full hashes by name: `before` (no project yet), `initial`, `v1`, `v2`, and
            `fragile` when asked for (on branch `fragile`, not on `main`).
        prefix: The project's folder inside the repository, as a git path prefix (`` or `sub/`).
    """

    example: ExampleProject
    commits: dict[str, str]
    prefix: str

    def short(self, name: str) -> str:
        """The 8-character short hash of a named commit (dot's default hash length)."""
        return self.commits[name][:8]

    def build_dir(self, name: str) -> Path:
        """`.dot/build/<short hash>` of a named commit."""
        return self.example.path / ".dot" / "build" / self.short(name)

    def env_dir(self, name: str, env: str) -> Path:
        """`.dot/build/<short hash>/env/<env>` of a named commit."""
        return self.build_dir(name) / "env" / env

    @property
    def environ(self) -> dict[str, str]:
        """The environment variables that point dbt at this project's warehouse."""
        return {"DOT_EXAMPLE_DUCKDB": str(self.example.database)}


def make_history(base: Path, *, subdir: str = "", fragile: bool = False) -> History:
    """Make the example project with history in `base/repo[/subdir]`.

    Commits on `main`: `before` (tag `before`; a README only, no dbt project), `initial` (the example as
    shipped, except that its .gitignore leaves `.dot/` out, so `.dot/.gitignore` alone keeps
    builds out of `git status`), `v1` (tag `v1`; orders gets `version_marker` 'v1' and prod gets
    `threads: 3`, unlike its profile's 2), `v2` (branch `feature`; the marker is 'v2').
    With `fragile`, branch `fragile` (from `v1`) adds a `fragile` model that fails when the var
    `fail_me` is true, and a child of it. The working tree is left at `main`.

    The warehouse is `base/warehouse.duckdb`; the caller sets `DOT_EXAMPLE_DUCKDB` to it.
    """
    repo = make_repo(base / "repo")
    project = repo.path / subdir if subdir else repo.path
    prefix = f"{subdir}/" if subdir else ""
    commits = {"before": repo.commit({"README.md": "a shop\n"}, "readme")}
    repo.tag("before")
    shutil.copytree(
        EXAMPLE,
        project,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("*.duckdb", "target", "logs", "dbt_packages", ".dot"),
    )
    ignore = project / ".gitignore"
    ignore.write_text(
        "".join(line + "\n" for line in ignore.read_text().splitlines() if line != ".dot/")
    )
    commits["initial"] = repo.commit({}, "example project")
    envs = (project / "dot_environments.yml").read_text()
    assert "    threads: 2\n" in envs, "the example's dot_environments.yml changed"
    commits["v1"] = repo.commit(
        {
            f"{prefix}{ORDERS}": orders_with_marker(project, "v1"),
            f"{prefix}dot_environments.yml": envs.replace("    threads: 2\n", "    threads: 3\n"),
        },
        "orders: version marker v1; prod: 3 threads",
    )
    repo.tag("v1")
    if fragile:
        repo.git("checkout", "--quiet", "-b", "fragile")
        var_file = project / "dot_vars.yml"
        commits["fragile"] = repo.commit(
            {
                f"{prefix}models/fragile/fragile.sql": FRAGILE_SQL,
                f"{prefix}models/fragile/fragile_child.sql": FRAGILE_CHILD_SQL,
                f"{prefix}dot_vars.yml": var_file.read_text() + FRAGILE_VAR,
            },
            "a model that fails on demand",
        )
        repo.checkout("main")
    commits["v2"] = repo.commit(
        {f"{prefix}{ORDERS}": orders_with_marker(project, "v2")}, "orders: version marker v2"
    )
    repo.branch("feature")
    example = ExampleProject(repo=repo, path=project, database=base / "warehouse.duckdb")
    return History(example=example, commits=commits, prefix=prefix)


@dataclass(frozen=True)
class UserState:
    """The parts of a repository a build must never touch, captured byte for byte."""

    head: bytes
    index: bytes
    status: str
    refs: str


def capture_user_state(repo_path: Path) -> UserState:
    """Capture `.git/HEAD`, `.git/index`, `git status --porcelain` and every ref.

    `git status` may refresh the index's stat cache, so it runs before the index is read.
    """

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo_path, capture_output=True, text=True, check=True, timeout=30
        ).stdout

    status = git("status", "--porcelain", "--untracked-files=all")
    refs = git("for-each-ref", "--format=%(refname) %(objectname)")
    return UserState(
        head=(repo_path / ".git" / "HEAD").read_bytes(),
        index=(repo_path / ".git" / "index").read_bytes(),
        status=status,
        refs=refs,
    )


def dot_process(
    *args: str, cwd: Path, env: dict[str, str] | None = None, module: bool = False
) -> subprocess.Popen[str]:
    """Start the installed `dot` (or `python -m datum_dot`) without waiting; stdin is /dev/null."""
    argv = [str(BIN / "python"), "-m", "datum_dot"] if module else [str(BIN / "dot")]
    return subprocess.Popen(
        [*argv, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_dot(
    *args: str, cwd: Path, env: dict[str, str] | None = None, module: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run `dot` (or `python -m datum_dot`) to the end, stdin /dev/null, output captured."""
    proc = dot_process(*args, cwd=cwd, env=env, module=module)
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@dataclass(frozen=True)
class PtyResult:
    """What a program run under a pseudo-terminal printed (stdout and stderr mixed)."""

    returncode: int
    output: str


def run_dot_in_pty(
    *args: str,
    cwd: Path,
    answers: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> PtyResult:
    """Run `dot` with stdin, stdout and stderr on a pseudo-terminal, answering questions.

    Args:
        args: `dot`'s arguments.
        cwd: The folder to run in.
        answers: When the output so far ends with a question containing a key, the value is
            typed (with a newline). Each key is answered once per time it appears.
        env: Extra environment variables.
        timeout: Seconds before the program is killed and the test fails.
    """
    answers = answers or {}
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.chdir(cwd)
            program = str(BIN / "dot")
            os.execve(program, [program, *args], {**os.environ, **(env or {})})  # noqa: S606
        finally:
            os._exit(127)
    chunks: list[bytes] = []
    answered = 0
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError("dot under a pty timed out: " + b"".join(chunks).decode())
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
            text = b"".join(chunks).decode(errors="replace")
            pending = _questions_after(text, answered)
            for question in pending:
                reply = next((v for k, v in answers.items() if k in question), None)
                if reply is None:
                    break
                os.write(fd, reply.encode() + b"\n")
                answered += 1
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return PtyResult(os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace"))


def _questions_after(text: str, answered: int) -> list[str]:
    """The `[Y/n]` questions in `text` beyond the first `answered` ones."""
    lines = text.replace("\r", "").split("\n")
    questions = [line for line in lines if "[Y/n]" in line]
    return questions[answered:]


def read_json(path: Path) -> Any:
    """Load a JSON file."""
    return json.loads(path.read_text())


def run_results(target: Path) -> dict[str, str]:
    """unique_id -> status from `run_results.json` in a dbt target folder."""
    data = read_json(target / "run_results.json")
    return {str(r["unique_id"]): str(r["status"]) for r in data["results"]}


class RecordingObserver(Observer):
    """Keeps the preparation steps and lock waits `execute()` reports."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.waits: list[str] = []

    def step(self, message: str) -> None:
        """Record a preparation step."""
        self.steps.append(message)

    def waiting(self, message: str) -> None:
        """Record a lock wait."""
        self.waits.append(message)


def run_in_process(
    project: Path,
    spec: str,
    *dbt_args: str,
    command: tuple[str, ...] = ("build",),
    defer: str | None = None,
    env: dict[str, str] | None = None,
    **options: Any,
) -> tuple[RunRecord, RecordingObserver]:
    """Run one dbt command for `spec` through `execute()` in this process (dbt stays imported).

    `env` is set in `os.environ` for the duration (dbt renders `env_var()` from it); `options`
    are further `RunRequest` fields (`deps`, `allow_unisolated`, `dry_run`, ...).
    """
    observer = RecordingObserver()
    request = RunRequest(
        command=command,
        spec=parse_spec(spec),
        project_dir=project,
        dbt_args=dbt_args,
        defer=parse_defer_spec(defer) if defer is not None else None,
        **options,
    )
    saved = {key: os.environ.get(key) for key in env or {}}
    os.environ.update(env or {})
    try:
        return execute(request, observer=observer), observer
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def assert_bad_input(result: subprocess.CompletedProcess[str], message: str) -> None:
    """Exit 20, one `error:` line holding `message`, a `hint:` line, and no traceback."""
    assert result.returncode == 20, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert message in errors[0], errors[0]
    assert any(line.startswith("hint: ") for line in lines), result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def select_from(
    example: ExampleProject, columns: str, schema: str, table: str
) -> list[tuple[Any, ...]]:
    """`select <columns> from "<schema>"."<table>"` on the example's warehouse."""
    relation = ".".join('"' + part.replace('"', '""') + '"' for part in (schema, table))
    return example.query(f"select {columns} from {relation}")  # noqa: S608 - quoted names, test data


def table_names(example: ExampleProject, schema: str) -> set[str]:
    """The tables and views in one schema of the example's warehouse."""
    con = duckdb.connect(str(example.database), read_only=True)
    try:
        rows = con.execute(
            "select table_name from information_schema.tables where table_schema = ?", [schema]
        ).fetchall()
    finally:
        con.close()
    return {str(r[0]) for r in rows}


def run_dot_with_tty_stdin(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `dot` with stdin on a pseudo-terminal but stdout and stderr captured (redirected).

    A question asked now would wait for ever (nobody sees it): the timeout fails the test.
    """
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            [str(BIN / "dot"), *args],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(slave)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"dot waited for an answer nobody could see:\n{err}") from None
    finally:
        os.close(master)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

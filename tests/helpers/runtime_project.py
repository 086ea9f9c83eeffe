"""The example project with extra models for runtime tests: slow, noisy, lock-bound, broken.

The extra models live under `models/extra/` (and a singular test tagged `extra`), so a normal
build excludes them with `EXCLUDE`. Real faults only:

- `slow` (Python) starts a grandchild `sleep $DOT_TEST_SLEEP` (default 313.37; each test picks
  its own, so tests running at once do not see each other's), writes its pid to
  `$DOT_TEST_MARKER`, then sleeps silently: a timeout must stop dbt and the grandchild;
- `noisy` (Python) writes 256 KiB to stderr at once: readers must not deadlock;
- `side` attaches `$DOT_SIDE_DB` in a pre-hook: while another process holds that DuckDB file,
  the model fails with a lock error (a transient fault) and the rest of the build succeeds;
- `broken` selects from a table that does not exist (a database error);
- `extra_fails` is a data test that returns a row (a data-quality failure).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from datum_dot.runtimes.local import LocalRuntime
from tests.helpers.example import ExampleProject, make_example

SLEEP_SECONDS = "313.37"  # unusual, so leftover `sleep` processes can be found and blamed
EXCLUDE = ("--exclude", "path:models/extra", "tag:extra")
EXTRA_FILES = {
    "models/extra/slow.py": f"""\
import os
import pathlib
import subprocess
import time


def model(dbt, session):
    child = subprocess.Popen(["sleep", os.environ.get("DOT_TEST_SLEEP", "{SLEEP_SECONDS}")])
    pathlib.Path(os.environ["DOT_TEST_MARKER"]).write_text(str(child.pid))
    time.sleep(300)
    return session.sql("select 1 as x")
""",
    "models/extra/noisy.py": """\
import sys


def model(dbt, session):
    sys.stderr.write("e" * 262144 + "\\n")
    sys.stderr.flush()
    return session.sql("select 1 as x")
""",
    "models/extra/side.sql": (
        "{{ config(materialized='table', pre_hook=\"ATTACH IF NOT EXISTS '\" ~ "
        "env_var('DOT_SIDE_DB', 'side.duckdb') ~ \"' AS side\") }}\nselect 1 as x\n"
    ),
    "models/extra/broken.sql": "select * from a_table_that_does_not_exist\n",
    "tests/extra_fails.sql": "{{ config(tags=['extra']) }}\nselect 1 as failing_row\n",
}


def make_runtime_project(base: Path) -> ExampleProject:
    """The example in a git repository, plus the extra models, with packages installed."""
    project = make_example(base, monkeypatch_env=False)
    project.repo.commit(EXTRA_FILES, "extra models for runtime tests")
    deps = LocalRuntime().invoke(["deps", "--project-dir", str(project.path)], env={})
    assert deps.success, deps.error
    return project


def placement(project: ExampleProject) -> list[str]:
    """`--project-dir` and `--profiles-dir` of the project."""
    return ["--project-dir", str(project.path), "--profiles-dir", str(project.path)]


def hold_lock(database: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that opens a DuckDB file read-write (locking it) for `seconds`."""
    code = (
        "import duckdb, sys, time\n"
        f"con = duckdb.connect({str(database)!r})\n"
        "print('locked', flush=True)\n"
        f"time.sleep({seconds})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def sleepers(seconds: str = SLEEP_SECONDS) -> list[int]:
    """Pids of `sleep <seconds>` processes still alive (orphans of a stopped `slow` model)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if argv[:2] == [b"sleep", seconds.encode()] and state != "Z":
            found.append(int(entry.name))
    return found


def is_alive(pid: int) -> bool:
    """True if `pid` runs and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(path: Path, seconds: float) -> bool:
    """Wait until `path` exists (and is not empty)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            return True
        time.sleep(0.05)
    return False


def env_with(**values: str) -> dict[str, str]:
    """This process's environment plus `values`."""
    return {**os.environ, **values}

"""`dot logs` reads well: fitted to 80 columns, short ids that work, and every failure explained.

One example project serves the real runs here: its dependencies installed (a SUCCESS on `dev`),
then a model that selects from a table that does not exist, run isolated at its full commit
hash as a pinned schedule would (`prod@<40 hex>`), which DuckDB rejects (a FAILED run, class
`database`). What the terminal shows is read from tmux, which draws it as a screen would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from datum_dot.cli.runtable import age, error_line, node_name, short_spec
from datum_dot.history import RunEnd, RunStart, RunStore, StoredRun
from datum_dot.history.database import APPLICATION_ID, MIGRATIONS
from datum_dot.runs.run import RunStatus
from tests.helpers.ci import skip_or_fail
from tests.helpers.example import BIN, ExampleProject, make_example

BROKEN = "select id from no_such_table\n"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True)
class Recorded:
    """The example project and the runs recorded in its DATUM_HOME."""

    example: ExampleProject
    env: dict[str, str]
    home: Path
    sha: str
    deps: str
    failed: str

    def dot(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "dot"), *args],
            cwd=self.example.path,
            env={**self.env, **extra},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


@pytest.fixture(scope="module")
def recorded(
    module_monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Recorded:
    base = tmp_path_factory.mktemp("readable")
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(base / "warehouse.duckdb"))
    example = make_example(base, monkeypatch_env=False)
    sha = example.repo.commit({"models/marts/broken.sql": BROKEN}, "a model that cannot build")
    # The terminal's own size and colour settings must not decide what is asserted.
    env = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "LINES", "NO_COLOR"}}
    env["TERM"] = "xterm-256color"
    home = Path(env["DATUM_HOME"])
    project = Recorded(example, env, home, sha, deps="", failed="")
    deps = project.dot("deps")
    assert deps.returncode == 0, deps.stderr
    failed = project.dot("run", f"prod@{sha}", "--", "-s", "broken")
    assert failed.returncode == 30, (failed.stdout, failed.stderr)
    runs = json.loads(project.dot("logs", "--json").stdout)
    assert [run["status"] for run in runs] == ["FAILED", "SUCCESS"], runs
    return Recorded(example, env, home, sha, deps=runs[1]["run_id"], failed=runs[0]["run_id"])


def bad_input(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 20 with one `error:` line and one `hint:` line, no traceback."""
    assert result.returncode == 20, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("error: ")
    assert lines[1].startswith("hint: ")
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


def tmux_screen(project: Recorded, args: str, *, width: int, tmp_path: Path) -> list[str]:
    """What `dot <args>` draws in a tmux window `width` columns wide: its non-blank lines."""
    tmux = shutil.which("tmux")
    if tmux is None:
        skip_or_fail("tmux is not installed")
    socket = f"dotlogs{uuid.uuid4().hex[:8]}"  # a server of its own: nothing else is touched
    done = tmp_path / f"done{width}"
    script = tmp_path / f"logs{width}.sh"
    exports = "".join(
        f"export {k}={json.dumps(v)}\n" for k, v in project.env.items() if k.isidentifier()
    )
    script.write_text(
        f"{exports}unset COLUMNS LINES\ncd {project.example.path}\n"
        f'{BIN / "dot"} {args}; echo "exit=$?" > {done}\nsleep 600\n'
    )
    server = [tmux, "-u", "-L", socket]
    subprocess.run(
        [*server, "new-session", "-d", "-x", str(width), "-y", "40", f"bash {script}"],
        check=True,
        timeout=30,
    )
    try:
        deadline = time.monotonic() + 60
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert done.read_text().strip() == "exit=0"
        pane = subprocess.run(
            [*server, "capture-pane", "-p"], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    finally:
        subprocess.run([*server, "kill-server"], check=False, timeout=30)
    return [line.rstrip() for line in pane.splitlines() if line.strip()]


# --- the record -------------------------------------------------------------------------------


def test_failed_run_records_the_failed_node_and_its_message(recorded: Recorded) -> None:
    got = recorded.dot("logs", recorded.failed, "--json")
    assert got.returncode == 0, got.stderr
    run = json.loads(got.stdout)
    assert run["status"] == "FAILED"
    assert run["error_class"] == "database"
    assert run["error_node"] == "model.jaffle_dot.broken"
    assert "no_such_table" in run["error_message"]
    assert "Catalog Error" in run["error_message"]
    # --json keeps full values: the spec as given, the full commit
    assert run["spec"] == f"prod@{recorded.sha}"
    assert run["commit"] == recorded.sha
    metadata = json.loads((recorded.home / "runs" / recorded.failed / "metadata.json").read_text())
    assert metadata["error_node"] == "model.jaffle_dot.broken"
    assert metadata["error_message"] == run["error_message"]


def test_logs_of_a_failed_run_shows_the_node_and_the_whole_message(recorded: Recorded) -> None:
    got = recorded.dot("logs", recorded.failed)
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    at = next(n for n, line in enumerate(lines) if line.startswith("error "))
    assert lines[at] == "error        [database] model.jaffle_dot.broken"
    message = json.loads(recorded.dot("logs", recorded.failed, "--json").stdout)["error_message"]
    shown = [
        line.removeprefix(" " * 13) for line in lines[at + 1 : at + 1 + len(message.split("\n"))]
    ]
    assert "\n".join(shown) == message.rstrip()
    assert ANSI.search(got.stdout) is None


# --- naming a run -----------------------------------------------------------------------------


def test_a_run_is_found_by_its_suffix_prefix_full_id_and_last(recorded: Recorded) -> None:
    failed = recorded.failed

    def shown(*args: str) -> str:
        got = recorded.dot("logs", *args, "--json")
        assert got.returncode == 0, (args, got.stderr)
        return str(json.loads(got.stdout)["run_id"])

    assert shown(failed[-8:]) == failed  # the 8 hex digits the listing shows
    assert shown(failed[-3:]) == failed
    assert shown(failed[:-4]) == failed
    assert shown(failed) == failed
    assert shown("last") == failed
    # `last` is the first run the same filters list
    assert shown("last", "--status", "success") == recorded.deps
    assert shown("last", "--env", "dev") == recorded.deps
    assert shown("last", "--env", "prod", "--status", "failed,timeout") == failed
    raw = recorded.dot("logs", "last", "--raw")
    assert raw.returncode == 0
    assert "no_such_table" in raw.stdout


def test_an_ambiguous_or_unknown_id_is_bad_input(recorded: Recorded) -> None:
    bad_input(recorded.dot("logs", "jaffle_dot-"), "ambiguous", recorded.failed, recorded.deps)
    unknown = "0" * 8 if not recorded.failed.endswith("0" * 8) else "f" * 8
    bad_input(recorded.dot("logs", unknown), f"no run with id '{unknown}'")
    bad_input(recorded.dot("logs", "last", "--env", "nowhere"), "no run matches")
    bad_input(recorded.dot("logs", "last", "--last", "3"), "--last 3", "dot logs last")
    bad_input(recorded.dot("logs", recorded.failed[-8:], "--env", "dev"), "do not apply")


def test_logs_last_of_an_empty_history_says_to_run_something(tmp_path: Path) -> None:
    got = subprocess.run(
        [str(BIN / "dot"), "logs", "last"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "DATUM_HOME": str(tmp_path / "empty")},
    )
    bad_input(got, "no runs recorded yet", "dot logs last")


def test_runs_whose_last_8_characters_collide_are_listed_by_full_id(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = RunStore(home)
    twins = [f"shop-2024050{day}T060000Z-deadbeef" for day in (1, 2)]
    other = "shop-20240503T060000Z-0badcafe"
    for run_id in (*twins, other):
        store.begin(RunStart(project="shop", spec="prod", command=("build",)), run_id=run_id)
        store.finish(run_id, RunEnd(RunStatus.SUCCESS, 0))
    assert store.short_ids([*twins, other]) == {
        twins[0]: twins[0],
        twins[1]: twins[1],
        other: "0badcafe",
    }
    env = {**os.environ, "DATUM_HOME": str(home)}
    got = subprocess.run(
        [str(BIN / "dot"), "logs", "deadbeef"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    bad_input(got, "ambiguous", *twins)


# --- the listing --------------------------------------------------------------------------------


def test_listing_at_80_columns_fits_and_reads(recorded: Recorded, tmp_path: Path) -> None:
    lines = tmux_screen(recorded, "logs", width=80, tmp_path=tmp_path)
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[0].split() == ["run", "id", "status", "age", "command", "duration"]
    failed = next(n for n, line in enumerate(lines) if line.startswith(recorded.failed[-8:]))
    row = lines[failed].split()
    assert row[1] == "FAILED"
    assert re.fullmatch(r"just now|\d+m ago", " ".join(row[2:4])), row
    assert f"run prod@{recorded.sha[:8]}" in lines[failed]
    assert recorded.sha[:9] not in "\n".join(lines)
    assert re.fullmatch(r"\d+\.\ds", row[-1]), row
    # the error, on its own line below the run: the node, then what went wrong
    assert lines[failed + 1].lstrip().startswith("broken: Catalog Error: Table with name no_such")
    deps = next(line for line in lines if line.startswith(recorded.deps[-8:]))
    assert deps.split()[1] == "SUCCESS"
    assert "deps" in deps
    # every id shown can be pasted back
    for line in lines[1:]:
        if not line.startswith(" "):
            got = recorded.dot("logs", line.split()[0], "--json")
            assert got.returncode == 0, (line, got.stderr)


def test_a_narrow_terminal_drops_the_lowest_priority_columns(
    recorded: Recorded, tmp_path: Path
) -> None:
    lines = tmux_screen(recorded, "logs", width=50, tmp_path=tmp_path)
    assert all(len(line) <= 50 for line in lines), lines
    assert lines[0].split() == ["run", "id", "status", "age", "command"]
    failed = next(n for n, line in enumerate(lines) if line.startswith(recorded.failed[-8:]))
    assert "FAILED" in lines[failed]
    assert f"prod@{recorded.sha[:8]}" in lines[failed]
    assert lines[failed + 1].lstrip().startswith("broken: Catalog Error")
    assert lines[failed + 1].endswith("…")


def test_piped_listing_is_wide_complete_and_plain(recorded: Recorded) -> None:
    got = recorded.dot("logs", FORCE_COLOR="")
    assert got.returncode == 0, got.stderr
    assert ANSI.search(got.stdout) is None
    lines = got.stdout.splitlines()
    for column in ("run id", "started (UTC)", "spec", "commit", "status", "exit", "error"):
        assert column in lines[0]
    row = next(line for line in lines if line.startswith(recorded.failed))
    for cell in (f"prod@{recorded.sha}", "FAILED", "[database] model.jaffle_dot.broken:"):
        assert cell in row, (cell, row)
    assert "Catalog Error: Table with name no_such_table does not exist" in row
    assert len(lines) == 3  # a header and one line per run


# --- the pieces ---------------------------------------------------------------------------------


def test_age_reads_like_people_say_it() -> None:
    now = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
    expected = {
        timedelta(seconds=20): "just now",
        timedelta(minutes=3, seconds=59): "3m ago",
        timedelta(hours=2, minutes=30): "2h ago",
        timedelta(hours=30): "yesterday",
        timedelta(days=4): "4d ago",
        timedelta(days=20): "2024-04-20",
    }
    for ago, text in expected.items():
        assert age(now - ago, now) == text
    assert age(now + timedelta(seconds=5), now) == "just now"  # another host's clock ahead


def test_short_spec_cuts_only_full_commit_hashes() -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert short_spec(f"prod@{sha}") == "prod@01234567"
    assert short_spec(f"@{sha}") == "@01234567"
    assert short_spec("prod@main") == "prod@main"
    assert short_spec("prod@0123456789ab") == "prod@0123456789ab"  # as the user typed it
    assert short_spec("") == ""


def test_node_name_and_error_line() -> None:
    assert node_name("model.shop.orders") == "orders"
    assert node_name("test.shop.not_null_orders_id.5fb22c2710") == "not_null_orders_id"
    assert node_name("unit_test.shop.orders.test_totals") == "orders.test_totals"
    home = Path("/nonexistent")  # records built in memory: no file is read
    start = RunStart(project="shop", spec="prod", command=("build",), started_at=datetime.now(UTC))
    failed = StoredRun(
        "shop-20240501T060000Z-1a2b3c4d",
        start,
        RunStatus.FAILED,
        home,
        error_message="Runtime Error in model orders (models/orders.sql)\n  Binder Error: x\n",
        error_node="model.shop.orders",
    )
    assert error_line(failed) == "orders: Binder Error: x"
    compiled = StoredRun(
        "shop-20240501T060000Z-1a2b3c4e",
        start,
        RunStatus.FAILED,
        home,
        error_message="UninstalledPackagesFoundError: Compilation Error\n  run dbt deps",
    )
    assert error_line(compiled) == "run dbt deps"
    jinja = StoredRun(
        "shop-20240501T060000Z-1a2b3c4f",
        start,
        RunStatus.FAILED,
        home,
        error_message="CompilationError: Compilation Error in model orders (models/orders.sql)\n"
        "  unexpected '}', expected ')'\n    line 1",
    )
    assert error_line(jinja) == "orders: unexpected '}', expected ')'"


# --- the history ----------------------------------------------------------------------------------


def fresh(path: Path) -> Path:
    """`path`, written now as far as its time says (the store ignores files older than a run)."""
    os.utime(path)
    return path


def test_finish_takes_the_failed_node_from_run_results_unless_given(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "home")
    results = tmp_path / "run_results.json"
    results.write_text(
        json.dumps(
            {
                "results": [
                    {"unique_id": "model.shop.a", "status": "success", "message": "OK"},
                    {"unique_id": "test.shop.t.1", "status": "fail", "message": "Got 3 results"},
                    {"unique_id": "model.shop.b", "status": "error", "message": "boom"},
                ]
            }
        )
    )
    start = RunStart(project="shop", spec="prod", command=("build",))
    plain = store.begin(start)
    run = store.finish(
        plain, RunEnd(RunStatus.FAILED, 30, error_class="data_quality", run_results=fresh(results))
    )
    assert (run.error_node, run.error_message) == ("test.shop.t.1", "Got 3 results")
    said = store.begin(start)
    run = store.finish(
        said, RunEnd(RunStatus.FAILED, 30, error_message="dbt crashed", run_results=fresh(results))
    )
    assert (run.error_node, run.error_message) == ("test.shop.t.1", "dbt crashed")
    ok = store.begin(start)
    run = store.finish(ok, RunEnd(RunStatus.SUCCESS, 0, run_results=fresh(results)))
    assert (run.error_node, run.error_message) == (None, None)


def test_an_older_record_gets_its_failed_node_from_its_run_results_copy(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = RunStore(home)
    run_id = store.begin(RunStart(project="shop", spec="prod", command=("build",)))
    store.finish(run_id, RunEnd(RunStatus.FAILED, 30, error_class="database"))
    # as a run recorded before the history kept the node: its run_results.json copy holds it
    (store.run_dir(run_id) / "run_results.json").write_text(
        json.dumps(
            {"results": [{"unique_id": "model.shop.b", "status": "error", "message": "boom"}]}
        )
    )
    assert store.get(run_id).error_node is None
    got = subprocess.run(
        [str(BIN / "dot"), "logs", run_id[-8:]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "DATUM_HOME": str(home)},
    )
    assert got.returncode == 0, got.stderr
    assert "error        [database] model.shop.b\n             boom\n" in got.stdout


def test_a_version_2_history_gains_the_error_node_column(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    conn = sqlite3.connect(home / "history.sqlite")
    for number, script in enumerate(MIGRATIONS[:2], start=1):
        conn.executescript(f"{script}; PRAGMA user_version = {number};")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(
        "INSERT INTO runs (run_id, project, spec, command, argv, runtime, trigger, hostname, pid,"
        " boot_id, started_at, status, error_class) VALUES ('shop-20240501T060000Z-1a2b3c4d',"
        " 'shop', 'prod', '[\"build\"]', '[]', 'local', 'manual', 'h', 1, 'b',"
        " '2024-05-01T06:00:00.000000+00:00', 'FAILED', 'database')"
    )
    conn.commit()
    conn.close()
    run = RunStore(home).get("1a2b3c4d")
    assert (run.status, run.error_class, run.error_node) == (RunStatus.FAILED, "database", None)
    conn = sqlite3.connect(home / "history.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) >= 3
    conn.close()

"""RunStore against real SQLite files and run folders in a temporary DATUM_HOME."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from datum_dot.errors import HistoryError
from datum_dot.history import (
    ABORTED_CLASS,
    RUN_ID,
    NodeCounts,
    RunEnd,
    RunStart,
    RunStore,
    node_counts,
)
from datum_dot.history.database import MIGRATIONS
from datum_dot.home.liveness import current_boot_id, process_start_ticks
from datum_dot.home.settings import datum_home
from datum_dot.runs.run import RunStatus
from tests.helpers.example import ROOT

T0 = datetime(2024, 5, 1, 6, 0, 0, tzinfo=UTC)
STAMPED = re.compile(r"\[\d\d:\d\d:\d\d\] .*")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def home() -> Path:
    return datum_home()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(home: Path, clock: Clock) -> RunStore:
    return RunStore(home, clock=clock)


def start(**fields: object) -> RunStart:
    values: dict[str, object] = {
        "project": "shop",
        "spec": "prod@main",
        "command": ("build",),
        "argv": ("build", "--target", "prod"),
        "env": "prod",
        "ref": "main",
        "commit": "a" * 40,
    }
    values.update(fields)
    return RunStart(**values)  # type: ignore[arg-type]


def record(store: RunStore, status: RunStatus = RunStatus.SUCCESS, **fields: object) -> str:
    run_id = store.begin(start(**fields))
    store.finish(run_id, RunEnd(status=status, exit_code=0 if status is RunStatus.SUCCESS else 30))
    return run_id


def dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(proc.stdout)


RUN_RESULTS = {
    "results": [
        {"unique_id": "model.shop.orders", "status": "success"},
        {"unique_id": "model.shop.customers", "status": "error"},
        {"unique_id": "seed.shop.raw", "status": "success"},
        {"unique_id": "snapshot.shop.snap", "status": "skipped"},
        {"unique_id": "test.shop.not_null", "status": "fail"},
        {"unique_id": "test.shop.unique", "status": "warn"},
        {"unique_id": "unit_test.shop.orders.t", "status": "pass"},
        {"unique_id": "operation.shop.hook", "status": "success"},
    ]
}


# --- recording ------------------------------------------------------------------------------


def test_store_begin_writes_running_record_folder_and_metadata(store: RunStore) -> None:
    run_id = store.begin(start())
    assert RUN_ID.fullmatch(run_id)
    assert run_id.startswith("shop-20240501T060000Z-")
    run = store.get(run_id)
    assert run.status is RunStatus.RUNNING
    assert run.started_at == T0
    assert run.start.pid == os.getpid()
    assert run.start.boot_id == current_boot_id()
    names = sorted(p.name for p in run.run_dir.iterdir())
    assert names == ["metadata.json", "output.log", "stderr.log", "stdout.log"]
    metadata = json.loads((run.run_dir / "metadata.json").read_text())
    assert metadata["status"] == "RUNNING"
    assert metadata["started_at"] == "2024-05-01T06:00:00.000000+00:00"


def test_store_round_trip_keeps_every_field(store: RunStore, clock: Clock, tmp_path: Path) -> None:
    results = tmp_path / "run_results.json"
    results.write_text(json.dumps(RUN_RESULTS))
    run_id = store.begin(start(trigger="cron", runtime="subprocess"))
    clock.now = T0 + timedelta(seconds=42.5)
    end = RunEnd(
        status=RunStatus.FAILED,
        exit_code=30,
        dbt_exit_code=1,
        error_class="database",
        error_message="relation raw.orders does not exist",
        suggestion="check that the source table exists",
        run_results=results,
    )
    finished = store.finish(run_id, end)
    again = store.get(run_id)
    assert again == finished
    assert again.start == start(
        trigger="cron",
        runtime="subprocess",
        started_at=T0,
        pid=again.start.pid,
        boot_id=again.start.boot_id,
        hostname=again.start.hostname,
        start_ticks=again.start.start_ticks,
    )
    assert (again.status, again.exit_code, again.dbt_exit_code) == (RunStatus.FAILED, 30, 1)
    assert again.finished_at == clock.now
    assert again.duration_seconds == pytest.approx(42.5)
    assert (again.error_class, again.suggestion) == (
        "database",
        "check that the source table exists",
    )
    assert again.counts == NodeCounts(
        models=2, seeds=1, snapshots=1, tests=3, failures=2, warnings=1, skipped=1
    )
    assert json.loads((again.run_dir / "run_results.json").read_text()) == RUN_RESULTS
    metadata = json.loads((again.run_dir / "metadata.json").read_text())
    assert metadata == again.to_json()
    assert metadata["status"] == "FAILED"
    assert metadata["counts"]["failures"] == 2


def test_output_stamps_combined_log_and_keeps_raw_streams(store: RunStore, clock: Clock) -> None:
    run_id = store.begin(start())
    with store.output(run_id) as out:
        clock.now = T0 + timedelta(seconds=5)
        out.line("stdout", "Running with dbt=1.9.0\n")
        clock.now = T0 + timedelta(minutes=1, seconds=7)
        out.line("stderr", "warning: one\nwarning: two")
        out.line("stdout", "[bold]not markup[/bold]")
    folder = store.get(run_id).run_dir
    assert (
        folder / "stdout.log"
    ).read_text() == "Running with dbt=1.9.0\n[bold]not markup[/bold]\n"
    assert (folder / "stderr.log").read_text() == "warning: one\nwarning: two\n"
    assert (folder / "output.log").read_text().splitlines() == [
        "[06:00:05] Running with dbt=1.9.0",
        "[06:01:07] warning: one",
        "[06:01:07] warning: two",
        "[06:01:07] [bold]not markup[/bold]",
    ]


def test_output_lines_from_two_threads_never_interleave(store: RunStore) -> None:
    run_id = store.begin(start())
    with store.output(run_id) as out:

        def write(stream: str) -> None:
            for n in range(500):
                out.line(stream, f"{stream} {n} " + "x" * 200)

        threads = [threading.Thread(target=write, args=(s,)) for s in ("stdout", "stderr")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    lines = (store.get(run_id).run_dir / "output.log").read_text().splitlines()
    assert len(lines) == 1000
    assert all(re.fullmatch(r"\[\d\d:\d\d:\d\d\] std(out|err) \d+ x{200}", line) for line in lines)


def test_metadata_json_does_not_embed_the_output(store: RunStore) -> None:
    run_id = store.begin(start())
    with store.output(run_id) as out:
        out.line("stdout", "UNIQUE-OUTPUT-LINE-1234")
    store.finish(run_id, RunEnd(status=RunStatus.SUCCESS, exit_code=0))
    folder = store.get(run_id).run_dir
    text = (folder / "metadata.json").read_text()
    assert "UNIQUE-OUTPUT-LINE-1234" not in text
    for name in ("output.log", "stdout.log"):
        assert (folder / name).read_text().count("UNIQUE-OUTPUT-LINE-1234") == 1
    assert "UNIQUE-OUTPUT-LINE-1234" not in (folder / "stderr.log").read_text()


def test_node_counts_reads_dbt_run_results(tmp_path: Path) -> None:
    path = tmp_path / "run_results.json"
    path.write_text(json.dumps(RUN_RESULTS))
    counts = node_counts(path)
    assert counts == NodeCounts(
        models=2, seeds=1, snapshots=1, tests=3, failures=2, warnings=1, skipped=1
    )
    assert counts.summary() == (
        "2 models, 1 seed, 1 snapshot, 3 tests: 2 failed, 1 warned, 1 skipped"
    )


@pytest.mark.parametrize("content", ["", "not json", "[]", '{"results": 3}'])
def test_node_counts_of_a_broken_file_is_none(tmp_path: Path, content: str) -> None:
    path = tmp_path / "run_results.json"
    path.write_text(content)
    assert node_counts(path) is None
    assert node_counts(tmp_path / "missing.json") is None


def test_finish_without_run_results_leaves_counts_empty(store: RunStore, tmp_path: Path) -> None:
    run_id = store.begin(start())
    run = store.finish(
        run_id,
        RunEnd(
            status=RunStatus.CANCELLED, exit_code=50, run_results=tmp_path / "never_written.json"
        ),
    )
    assert run.counts is None
    assert not (run.run_dir / "run_results.json").exists()


def test_finish_ignores_run_results_left_by_an_earlier_run(home: Path, tmp_path: Path) -> None:
    store = RunStore(home)  # the real clock: the run starts now
    stale = tmp_path / "run_results.json"
    stale.write_text(json.dumps(RUN_RESULTS))
    os.utime(stale, (1_000_000_000, 1_000_000_000))  # written in 2001
    run_id = store.begin(start())
    run = store.finish(run_id, RunEnd(status=RunStatus.FAILED, exit_code=30, run_results=stale))
    assert run.counts is None
    assert not (run.run_dir / "run_results.json").exists()


def test_finish_refuses_a_running_status(store: RunStore) -> None:
    run_id = store.begin(start())
    with pytest.raises(ValueError, match="RUNNING"):
        store.finish(run_id, RunEnd(status=RunStatus.RUNNING, exit_code=0))


def test_run_ids_are_safe_file_names_whatever_the_project(store: RunStore) -> None:
    run_id = store.begin(start(project="../my shop/ü"))
    assert RUN_ID.fullmatch(run_id)
    assert run_id.startswith("my_shop_-20240501T060000Z-")
    assert store.get(run_id).start.project == "../my shop/ü"


# --- reading ----------------------------------------------------------------------------------


def test_get_accepts_a_unique_prefix(store: RunStore, clock: Clock) -> None:
    first = record(store)
    clock.now = T0 + timedelta(days=1)
    second = record(store)
    assert store.get("shop-20240501").run_id == first
    assert store.get(second[:-4]).run_id == second
    assert store.get(second).run_id == second


def test_get_ambiguous_prefix_lists_candidates(store: RunStore) -> None:
    ids = sorted(record(store) for _ in range(3))
    with pytest.raises(HistoryError) as caught:
        store.get("shop-2024")
    for run_id in ids:
        assert run_id in caught.value.message
    assert "ambiguous" in caught.value.message
    assert caught.value.hint


def test_get_unknown_id(store: RunStore) -> None:
    record(store)
    with pytest.raises(HistoryError, match="no run with id 'shop-1999'"):
        store.get("shop-1999")


@pytest.mark.parametrize(
    "bad", ["../../etc", "..", "a/b", "", ".hidden", "-rf", "shop 2024", "shop\x00", "x" * 200]
)
def test_bad_run_id_is_refused_before_any_file_is_read(
    store: RunStore, home: Path, bad: str
) -> None:
    record(store)
    # Were the history file opened, its garbage would give "corrupted", not "not a run id".
    store.path.write_bytes(b"garbage, not SQLite" * 100)
    with pytest.raises(HistoryError, match="is not a run id"):
        store.get(bad)
    with pytest.raises(HistoryError, match="is not a run id"):
        store.run_dir(bad)
    with pytest.raises(HistoryError, match="is not a run id"):
        store.finish(bad, RunEnd(status=RunStatus.SUCCESS, exit_code=0))


def test_query_filters_and_orders_newest_first(store: RunStore, clock: Clock) -> None:
    made: dict[str, str] = {}
    plan = [
        ("a", RunStatus.SUCCESS, "prod", "shop"),
        ("b", RunStatus.FAILED, "prod", "shop"),
        ("c", RunStatus.TIMEOUT, "dev", "shop"),
        ("d", RunStatus.FAILED, "dev", "other"),
        ("e", RunStatus.SUCCESS, "prod", "other"),
    ]
    for hours, (name, status, env, project) in enumerate(plan):
        clock.now = T0 + timedelta(hours=hours)
        made[name] = record(store, status, env=env, project=project)
    names = {v: k for k, v in made.items()}

    def ids(**query: object) -> list[str]:
        return [names[r.run_id] for r in store.query(**query)]  # type: ignore[arg-type]

    assert ids() == ["e", "d", "c", "b", "a"]
    assert ids(last=2) == ["e", "d"]
    assert ids(status=[RunStatus.FAILED]) == ["d", "b"]
    assert ids(status=[RunStatus.FAILED, RunStatus.TIMEOUT]) == ["d", "c", "b"]
    assert ids(env="dev") == ["d", "c"]
    assert ids(project="other") == ["e", "d"]
    assert ids(since=T0 + timedelta(hours=3)) == ["e", "d"]
    assert ids(status=[RunStatus.SUCCESS], env="prod", last=1) == ["e"]
    assert ids(last=None, status=[RunStatus.ABORTED]) == []


def test_reading_a_missing_history_creates_nothing(store: RunStore, home: Path) -> None:
    assert store.query() == []
    assert store.mark_aborted_stale() == []
    with pytest.raises(HistoryError, match="no run with id"):
        store.get("shop")
    assert not home.exists()


def test_schema_is_wal_versioned_and_indexed(store: RunStore) -> None:
    record(store)
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        plans = {
            sql: " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
            for sql, params in [
                ("SELECT * FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 20", ()),
                (
                    "SELECT * FROM runs WHERE status IN (?) ORDER BY started_at DESC, run_id DESC "
                    "LIMIT 20",
                    ("FAILED",),
                ),
            ]
        }
    finally:
        conn.close()
    for sql, plan in plans.items():
        assert "USING INDEX runs_by_" in plan, (sql, plan)
        assert "TEMP B-TREE" not in plan, (sql, plan)


# --- stale records ----------------------------------------------------------------------------


def test_live_writer_stays_running(store: RunStore) -> None:
    run_id = store.begin(start())
    assert store.mark_aborted_stale() == []
    assert store.get(run_id).status is RunStatus.RUNNING


def test_dead_pid_is_marked_aborted_on_read(store: RunStore) -> None:
    run_id = store.begin(start(pid=dead_pid(), start_ticks=None))
    run = store.query()[0]
    assert (run.run_id, run.status) == (run_id, RunStatus.ABORTED)
    assert run.error_class == ABORTED_CLASS
    assert run.suggestion is not None
    assert "output.log" in run.suggestion
    metadata = json.loads((run.run_dir / "metadata.json").read_text())
    assert metadata["status"] == "ABORTED"


def test_other_boot_is_marked_aborted(store: RunStore) -> None:
    run_id = store.begin(start(boot_id="00000000-0000-0000-0000-000000000000"))
    assert store.mark_aborted_stale() == [run_id]
    assert store.get(run_id).status is RunStatus.ABORTED


def test_reused_pid_is_marked_aborted(store: RunStore) -> None:
    ticks = process_start_ticks(os.getpid())
    assert ticks is not None
    run_id = store.begin(start(start_ticks=ticks - 1))  # our pid, but not our process
    assert store.get(run_id).status is RunStatus.ABORTED


def test_other_host_is_left_alone(store: RunStore) -> None:
    run_id = store.begin(start(hostname="another-machine", pid=dead_pid(), boot_id="other"))
    assert store.mark_aborted_stale() == []
    assert store.get(run_id).status is RunStatus.RUNNING


def test_writer_killed_mid_run_becomes_aborted_with_partial_output(home: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.run_writer", "slow", str(home)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    written = -1
    while written < 50:
        written = int(child.stdout.readline())
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    child.stdout.close()
    store = RunStore(home)
    run = store.get(run_id)
    assert run.status is RunStatus.ABORTED
    assert run.exit_code is None
    assert run.finished_at is not None
    assert run.finished_at >= run.started_at
    assert run.duration_seconds is not None
    assert run.duration_seconds >= 0
    lines = (run.run_dir / "output.log").read_text().splitlines()
    assert len(lines) > written  # every line it reported written is there
    assert all(STAMPED.fullmatch(line) for line in lines)
    assert [line[11:] for line in lines] == [f"line {n}" for n in range(len(lines))]
    even = [f"line {n}" for n in range(0, len(lines), 2)]
    stdout = (run.run_dir / "stdout.log").read_text().splitlines()
    assert stdout[: len(even)] == even
    assert len(stdout) <= len(even) + 1  # the kill may fall between the two files' writes


# --- prune ------------------------------------------------------------------------------------


def test_prune_keeps_the_newest_and_never_running(store: RunStore, clock: Clock) -> None:
    running = store.begin(start())  # oldest, and still running (this process)
    finished = []
    for n in range(1, 6):
        clock.now = T0 + timedelta(days=n)
        finished.append(record(store))
    removed = store.prune(keep=2)
    assert removed == finished[:3]
    left = {r.run_id for r in store.query(last=None)}
    assert left == {running, *finished[3:]}
    for run_id in removed:
        assert not (store.runs_dir / run_id).exists()
    assert (store.runs_dir / running).is_dir()


def test_prune_limits_each_protect_records(store: RunStore, clock: Clock) -> None:
    ids = []
    for n in range(6):
        clock.now = T0 + timedelta(days=10 * n)  # days 0, 10, ..., 50
        ids.append(record(store))
    clock.now = T0 + timedelta(days=55)
    assert store.prune(keep=5, older_than=timedelta(days=30)) == ids[:1]
    assert store.prune(keep=1, older_than=timedelta(days=30)) == ids[1:3]
    assert store.prune(older_than=timedelta(days=1)) == ids[3:]
    assert store.query() == []


def test_prune_sweeps_folders_left_without_a_record(store: RunStore, clock: Clock) -> None:
    orphan = store.runs_dir / "shop-20240101T000000Z-0123abcd"
    recent = store.runs_dir / "shop-20240501T055959Z-0123abcd"
    kept = record(store)
    orphan.mkdir()
    recent.mkdir()
    store.prune(keep=5)
    assert not orphan.exists()
    assert recent.exists()  # may be a run being begun right now
    assert (store.runs_dir / kept).exists()


@pytest.mark.parametrize(
    ("keep", "older_than", "message"),
    [
        (None, None, "needs a limit"),
        (-1, None, "negative"),
        (None, timedelta(days=-1), "negative"),
    ],
)
def test_prune_refuses_bad_limits(
    store: RunStore, keep: int | None, older_than: timedelta | None, message: str
) -> None:
    with pytest.raises(HistoryError, match=message):
        store.prune(keep=keep, older_than=older_than)


# --- unusable files ---------------------------------------------------------------------------


def test_corrupted_history_file_is_a_history_error(store: RunStore, home: Path) -> None:
    home.mkdir(parents=True)
    store.path.write_bytes(b"this is not a database\n" * 200)
    for action in (store.query, store.mark_aborted_stale, lambda: store.begin(start())):
        with pytest.raises(HistoryError) as caught:
            action()
        assert str(store.path) in caught.value.message
        assert "corrupted" in caught.value.message
        assert "move it away" in caught.value.hint


def test_foreign_sqlite_file_is_a_history_error(store: RunStore, home: Path) -> None:
    home.mkdir(parents=True)
    conn = sqlite3.connect(home / "history.sqlite")
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(HistoryError, match="not a datum-dot run history") as caught:
        store.query()
    assert str(store.path) in caught.value.message


def test_newer_schema_is_refused(store: RunStore) -> None:
    record(store)
    conn = sqlite3.connect(store.path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(HistoryError, match="schema version 99"):
        store.query()


def test_session_log_events_carry_the_run_id(store: RunStore, home: Path) -> None:
    run_id = record(store)
    events = [
        json.loads(line)
        for path in (home / "logs").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    mine = [e for e in events if e["run_id"] == run_id]
    assert [e["message"] for e in mine] == ["run started", "run finished SUCCESS"]
    assert set(mine[0]) == {"time", "level", "pid", "run_id", "message", "context"}


def test_history_imports_no_cli_rich_or_dbt() -> None:
    code = (
        "import sys, datum_dot.history; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('rich', 'argparse', 'dbt', 'git', 'pydantic') or m.startswith('datum_dot.cli')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]"

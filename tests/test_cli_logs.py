"""`dot logs` end to end: the installed program against a history filled through RunStore."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from datum_dot.history import RunEnd, RunStart, RunStore
from datum_dot.home.settings import datum_home
from datum_dot.runs.run import RunStatus
from tests.helpers.example import BIN
from tests.helpers.signals import default_sigint

NOW = datetime.now(UTC).replace(microsecond=0)


def dot(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the installed `dot` with the test's environment (its own DATUM_HOME)."""
    return subprocess.run(
        [str(BIN / "dot"), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def assert_bad_input(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 20; stderr is one `error:` line and one `hint:` line; no traceback anywhere."""
    assert result.returncode == 20, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert lines[1].startswith("hint: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


def add_run(
    store: RunStore,
    *,
    ago: timedelta,
    status: RunStatus = RunStatus.SUCCESS,
    env: str = "prod",
    lines: tuple[str, ...] = ("Running with dbt=1.9.0",),
    **end: object,
) -> str:
    """Record one finished run that started `ago` before NOW and took 12 seconds."""
    started = NOW - ago
    run_id = store.begin(
        RunStart(
            project="shop",
            spec=f"{env}@main",
            command=("build",),
            argv=("build", "--target", env),
            env=env,
            ref="main",
            commit="c0ffee" * 6 + "abcd",
            started_at=started,
        )
    )
    with store.output(run_id) as out:
        for line in lines:
            out.line("stdout", line)
    code = {RunStatus.SUCCESS: 0, RunStatus.TIMEOUT: 40}.get(status, 30)
    values: dict[str, object] = {"exit_code": code, "finished_at": started + timedelta(seconds=12)}
    values.update(end)
    store.finish(run_id, RunEnd(status=status, **values))  # type: ignore[arg-type]
    return run_id


@pytest.fixture
def store() -> RunStore:
    return RunStore(datum_home())


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A DATUM_HOME with twelve runs, an hour apart (newest `r0`): r1 failed, r2 timed out,
    r3 ran on dev. Made once; each test gets a copy (recording costs a few fsyncs per run)."""
    home = tmp_path_factory.mktemp("template") / ".datum"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATUM_HOME", str(home))
        store = RunStore(home)
        ids = {}
        for n in range(12):
            status = {1: RunStatus.FAILED, 2: RunStatus.TIMEOUT}.get(n, RunStatus.SUCCESS)
            ids[f"r{n}"] = add_run(
                store, ago=timedelta(hours=n), status=status, env="dev" if n == 3 else "prod"
            )
    return home, ids


@pytest.fixture
def filled(template: tuple[Path, dict[str, str]]) -> dict[str, str]:
    """This test's DATUM_HOME holds a copy of the template's twelve runs."""
    home, ids = template
    shutil.copytree(home, datum_home())
    return ids


def listed(result: subprocess.CompletedProcess[str], ids: dict[str, str]) -> list[str]:
    """The names of the runs a table lists, in order."""
    assert result.returncode == 0, result.stderr
    names = {v: k for k, v in ids.items()}
    return [
        names[line.split()[0]]
        for line in result.stdout.splitlines()
        if line.split() and line.split()[0] in names
    ]


# --- listing ----------------------------------------------------------------------------------


def test_logs_lists_the_last_ten_runs_newest_first(filled: dict[str, str]) -> None:
    result = dot("logs")
    assert listed(result, filled) == [f"r{n}" for n in range(10)]
    header = result.stdout.splitlines()[0]
    for column in ("run id", "started", "spec", "commit", "command", "status", "duration", "exit"):
        assert column in header
    row = next(line for line in result.stdout.splitlines() if line.startswith(filled["r1"]))
    for cell in ("prod@main", "c0ffeec0ffee", "build", "FAILED", "12.0s"):
        assert cell in row
    assert row.rstrip().endswith("30")


def test_logs_filters(filled: dict[str, str]) -> None:
    assert listed(dot("logs", "--last", "3"), filled) == ["r0", "r1", "r2"]
    assert listed(dot("logs", "--status", "failed"), filled) == ["r1"]
    assert listed(dot("logs", "--status", "Failed,TIMEOUT"), filled) == ["r1", "r2"]
    assert listed(dot("logs", "--env", "dev"), filled) == ["r3"]
    assert listed(dot("logs", "--since", "150m"), filled) == ["r0", "r1", "r2"]
    since = (NOW - timedelta(hours=1, minutes=30)).strftime("%Y-%m-%dT%H:%M:%S")
    assert listed(dot("logs", "--since", since), filled) == ["r0", "r1"]
    assert listed(
        dot("logs", "--last", "50", "--status", "SUCCESS", "--env", "prod", "--since", "6h"), filled
    ) == ["r0", "r4", "r5"]


def test_logs_json_gives_the_same_data(filled: dict[str, str]) -> None:
    result = dot("logs", "--json", "--last", "2")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [run["run_id"] for run in data] == [filled["r0"], filled["r1"]]
    failed = data[1]
    assert failed["status"] == "FAILED"
    assert failed["exit_code"] == 30
    assert failed["duration_seconds"] == 12.0
    assert failed["command"] == ["build"]
    assert failed["commit"].startswith("c0ffee")


def test_logs_of_an_empty_history_says_so() -> None:
    result = dot("logs")
    assert result.returncode == 0
    assert result.stdout == ""
    assert "no runs recorded yet" in result.stderr
    assert not (datum_home() / "history.sqlite").exists()


# --- one run ----------------------------------------------------------------------------------


def test_logs_run_shows_metadata_nodes_output_error_and_files(
    store: RunStore, tmp_path: Path
) -> None:
    results = tmp_path / "run_results.json"
    results.write_text(
        json.dumps(
            {
                "results": [
                    {"unique_id": "model.shop.orders", "status": "success"},
                    {"unique_id": "model.shop.customers", "status": "error"},
                    {"unique_id": "test.shop.not_null", "status": "skipped"},
                ]
            }
        )
    )
    run_id = add_run(
        store,
        ago=timedelta(minutes=5),
        status=RunStatus.FAILED,
        lines=("1 of 2 START sql table model orders", "[red]Database Error[/red] in customers"),
        dbt_exit_code=1,
        error_class="database",
        error_message="relation raw.customers does not exist",
        suggestion="check that the source table exists: dbt source freshness",
        run_results=results,
    )
    result = dot("logs", run_id[:-3])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for needle in (
        f"run id       {run_id}",
        "status       FAILED",
        "spec         prod@main",
        "command      dbt build --target prod",
        "exit code    30 (dbt exited 1)",
        "nodes        2 models, 1 test: 1 failed, 1 skipped",
        # the failed node (from run_results.json), then the message under it
        "error        [database] model.shop.customers\n             relation raw.customers does not",
        "suggestion   check that the source table exists: dbt source freshness",
        "duration     12.0s",
        "] 1 of 2 START sql table model orders",
        "] [red]Database Error[/red] in customers",  # printed as written, not as markup
        str(store.run_dir(run_id) / "output.log"),
        str(store.run_dir(run_id) / "run_results.json"),
    ):
        assert needle in out, (needle, out)


def test_logs_run_raw_prints_the_output_as_dbt_printed_it(store: RunStore) -> None:
    lines = ("Running with dbt=1.9.0", "[01:02:03] looks like a stamp", "  indented [b]x[/b]")
    run_id = add_run(store, ago=timedelta(minutes=1), lines=lines)
    result = dot("logs", run_id, "--raw")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "".join(line + "\n" for line in lines)


def test_logs_run_json_has_the_record_and_its_output(store: RunStore) -> None:
    run_id = add_run(store, ago=timedelta(minutes=1), lines=("hello",))
    result = dot("logs", run_id, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["run_id"] == run_id
    assert data["log_files_missing"] is False
    assert [line[11:] for line in data["output"]] == ["hello"]


def test_logs_of_a_run_whose_folder_was_deleted(store: RunStore, filled: dict[str, str]) -> None:
    shutil.rmtree(store.run_dir(filled["r1"]))
    table = dot("logs")
    row = next(line for line in table.stdout.splitlines() if line.startswith(filled["r1"]))
    assert "log files missing" in row
    assert sum("log files missing" in line for line in table.stdout.splitlines()) == 1
    detail = dot("logs", filled["r1"])
    assert filled["r1"] in detail.stdout
    assert "FAILED" in detail.stdout
    assert "log files missing" in detail.stdout
    assert_bad_input(detail, "log files of run", "missing")


# --- prune ------------------------------------------------------------------------------------


def test_logs_prune_removes_old_records_and_folders(
    store: RunStore, filled: dict[str, str]
) -> None:
    running = store.begin(
        RunStart(
            project="shop", spec="prod", command=("build",), started_at=NOW - timedelta(days=3)
        )
    )
    result = dot("logs", "prune", "--keep", "4", "--older-than", "5h30m", "--json")
    assert result.returncode == 0, result.stderr
    removed = json.loads(result.stdout)["removed"]
    assert sorted(removed) == sorted(filled[f"r{n}"] for n in range(6, 12))
    for run_id in removed:
        assert not store.run_dir(run_id).exists()
    left = {run.run_id for run in store.query(last=None)}
    assert left == {running, *(filled[f"r{n}"] for n in range(6))}
    human = dot("logs", "prune", "--keep", "0")
    assert human.returncode == 0
    assert "removed 6 runs" in human.stdout
    assert [run.run_id for run in store.query(last=None)] == [running]


# --- follow -----------------------------------------------------------------------------------


def follow(*args: str) -> subprocess.Popen[str]:
    """Start `dot` without waiting; it is killed after a minute so that a broken test cannot hang."""
    proc = subprocess.Popen(
        [str(BIN / "dot"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    timer = threading.Timer(60, proc.kill)
    timer.daemon = True
    timer.start()
    return proc


def test_logs_follow_of_a_run_exits_when_it_finishes(store: RunStore) -> None:
    run_id = store.begin(RunStart(project="shop", spec="prod", command=("build",)))
    proc = follow("logs", run_id[:-2], "--follow")
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert run_id in first
    assert "RUNNING" in first
    with store.output(run_id) as out:
        out.line("stdout", "model one done")
        assert proc.stdout.readline().endswith("] model one done\n")
        out.line("stderr", "model two done")
        assert proc.stdout.readline().endswith("] model two done\n")
    store.finish(run_id, RunEnd(status=RunStatus.SUCCESS, exit_code=0))
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert run_id in rest
    assert "SUCCESS" in rest
    assert "(exit 0)" in rest


def test_logs_follow_prints_new_runs_and_their_output_until_ctrl_c(store: RunStore) -> None:
    add_run(store, ago=timedelta(minutes=3))  # finished before: not shown
    proc = follow("logs", "--follow", "--json")
    assert proc.stdout is not None
    time.sleep(1.0)  # let it take its first look
    run_id = store.begin(RunStart(project="shop", spec="prod", command=("build",)))
    event = json.loads(proc.stdout.readline())
    assert (event["event"], event["run"]["run_id"]) == ("run", run_id)
    with store.output(run_id) as out:
        out.line("stdout", "live line")
    event = json.loads(proc.stdout.readline())
    assert event["event"] == "output"
    assert event["line"].endswith("] live line")
    store.finish(run_id, RunEnd(status=RunStatus.FAILED, exit_code=30))
    event = json.loads(proc.stdout.readline())
    assert (event["event"], event["run"]["status"]) == ("run", "FAILED")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 50, err
    assert "Traceback" not in err


# --- bad input --------------------------------------------------------------------------------


def test_logs_unknown_run_id(filled: dict[str, str]) -> None:
    assert_bad_input(dot("logs", "shop-19990101"), "no run with id 'shop-19990101'", "dot logs")


def test_logs_ambiguous_prefix_lists_candidates(filled: dict[str, str]) -> None:
    result = dot("logs", "shop-")
    assert_bad_input(result, "ambiguous", filled["r11"], filled["r2"])


@pytest.mark.parametrize("bad", ["../../etc", "a/../../b", "..", "shop 1", "/etc/passwd"])
def test_logs_run_id_not_of_the_id_form_is_refused(filled: dict[str, str], bad: str) -> None:
    # A corrupted history proves the refusal comes before any file is read.
    (datum_home() / "history.sqlite").write_bytes(b"not a database" * 100)
    assert_bad_input(dot("logs", bad), "is not a run id")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--status", "broken"], ["--status 'broken'", "SUCCESS, FAILED, TIMEOUT"]),
        (["--since", "yesterday"], ["--since 'yesterday'", "2d"]),
        (["--since", "2x"], ["--since '2x'"]),
        (["--last", "0"], ["--last 0"]),
        (["--last", "ten"], ["--last", "invalid int value"]),
        (["--raw"], ["--raw", "run id"]),
        (["--keep", "3"], ["--keep", "dot logs prune"]),
        (["--follow", "--status", "failed"], ["--status", "--follow"]),
        (["prune"], ["needs a limit", "--keep"]),
        (["prune", "--keep", "-1"], ["--keep -1"]),
        (["prune", "--older-than", "soon"], ["--older-than 'soon'"]),
        (["prune", "--older-than", "99999999999999d"], ["--older-than", "100 years"]),
        (["prune", "--keep", "5", "--status", "failed"], ["--status", "prune"]),
    ],
)
def test_logs_bad_options(filled: dict[str, str], args: list[str], needles: list[str]) -> None:
    assert_bad_input(dot("logs", *args), *needles)


def test_logs_corrupted_history_names_the_file(filled: dict[str, str]) -> None:
    path = datum_home() / "history.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"\x00garbage" * 1000)
    result = dot("logs")
    assert_bad_input(result, str(path), "corrupted", "move it away")


def test_logs_foreign_history_names_the_file() -> None:
    path = datum_home() / "history.sqlite"
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE moz_places (url TEXT)")
    conn.commit()
    conn.close()
    assert_bad_input(dot("logs", "--last", "5"), str(path), "not a datum-dot run history")


# --- session log ------------------------------------------------------------------------------


def test_log_format_json_echoes_session_events_on_stderr(filled: dict[str, str]) -> None:
    result = dot("--log-format", "json", "logs", "--last", "1")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert events[-1]["message"] == "dot logs exited 0"
    assert set(events[-1]) == {"time", "level", "pid", "run_id", "message", "context"}
    logged = (datum_home() / "logs").glob("*.jsonl")
    assert any("dot logs exited 0" in path.read_text() for path in logged)


def test_session_log_gets_the_error_of_a_bad_command(filled: dict[str, str]) -> None:
    result = dot("logs", "--status", "nope")
    assert result.returncode == 20
    text = "".join(p.read_text() for p in (datum_home() / "logs").glob("*.jsonl"))
    assert "--status 'nope' is not a run status" in text


def test_logs_help_documents_follow_exit_codes() -> None:
    result = dot("logs", "--help")
    assert result.returncode == 0
    assert "exit 50" in result.stdout
    assert "exits 0 once that run has finished" in result.stdout

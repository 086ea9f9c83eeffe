"""A full disk under `$DATUM_HOME`: the run goes on, and the history catches up when it can.

`$DATUM_HOME` is a small tmpfs mounted for each test (the tests run as root), filled with a file
at the moment a test wants the disk full and freed by deleting that file. The warehouse and the
project stay outside it.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from datum_dot.history import RunEnd, RunOutput, RunRecorder, RunStart, RunStore
from datum_dot.runs.run import RunStatus
from tests.helpers.example import BIN, ExampleProject

FILLER = "filler"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """`$DATUM_HOME` on its own 4 MiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "datum"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4096k,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, (
        f"these tests need a small file system to fill: `mount -t tmpfs` at {mount} failed "
        f"(they must run as root): {done.stderr.strip()}"
    )
    monkeypatch.setenv("DATUM_HOME", str(mount))
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(home: Path) -> None:
    """Take every free byte of the file system of `home` with one file."""
    chunk = bytes(1 << 20)
    fd = os.open(home / FILLER, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while os.write(fd, chunk) == len(chunk):  # a short write took the last free bytes
            pass
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)
    assert os.statvfs(home).f_bavail == 0


def free(home: Path) -> None:
    """Give the space back."""
    (home / FILLER).unlink()


@pytest.mark.slow
def test_full_datum_home_does_not_break_the_build(example: ExampleProject, home: Path) -> None:
    proc = subprocess.Popen(
        [str(BIN / "dot"), "build", "prod@HEAD"],
        cwd=example.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    err: list[str] = []

    def pump_stderr() -> None:
        # The run's record has begun when the first preparation step is shown: the disk fills
        # then, and stays full until the run has ended.
        assert proc.stderr is not None
        for line in proc.stderr:
            if not err:
                fill(home)
            err.append(line)

    reader = threading.Thread(target=pump_stderr, daemon=True)
    reader.start()
    try:
        assert proc.stdout is not None
        stdout = proc.stdout.read()  # stderr is the reader thread's alone
        proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    stderr = "".join(err)
    shown = stdout + stderr

    assert proc.returncode == 0, shown[-4000:]
    assert "Logging error" not in shown
    assert "this is a bug" not in shown
    assert "Done. PASS=38" in stdout
    schema = f"analytics_{example.repo.head()[:8]}"
    assert example.query(f"select count(*) from {schema}.customers") == [(10,)]  # noqa: S608
    warnings = [line for line in stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, stderr[-4000:]
    assert "could not be saved" in warnings[0], warnings
    assert str(home) in warnings[0]

    # The record was completed at the end of the run, from the space the run set aside.
    free(home)
    logs = example.dot("logs", "--json", "--last", "1")
    assert logs.returncode == 0, logs.stderr
    (record,) = json.loads(logs.stdout)
    assert (record["status"], record["exit_code"], record["dbt_exit_code"]) == ("SUCCESS", 0, 0)
    assert record["counts"]["models"] == 6


def test_output_lines_refused_by_a_full_disk_are_written_when_space_returns(home: Path) -> None:
    run_dir = home / "run"
    run_dir.mkdir()
    with RunOutput(run_dir) as out:
        fill(home)  # the log files are empty: their first line needs a page the disk lacks
        out.line("stdout", "while full 1")
        out.line("stderr", "while full 2")
        assert out.unsaved_lines() == 2
        free(home)
        out.line("stdout", "after")
        assert out.unsaved_lines() == 0
    raw = (run_dir / "output.log").read_text().splitlines()
    assert [line[11:] for line in raw] == ["while full 1", "while full 2", "after"]
    assert (run_dir / "stdout.log").read_text() == "while full 1\nafter\n"
    assert (run_dir / "stderr.log").read_text() == "while full 2\n"


def test_run_that_could_not_begin_its_record_is_recorded_when_space_returns(home: Path) -> None:
    store = RunStore(home)
    fill(home)
    recorder = RunRecorder(store, RunStart(project="shop", spec="prod", command=("build",)))
    assert recorder.begin() is None
    recorder.line("stdout", "built while the disk was full")
    free(home)
    recorder.finish(RunEnd(RunStatus.SUCCESS, 0))

    assert recorder.unsaved() is None
    assert recorder.run_id is not None
    run = store.get(recorder.run_id)
    assert (run.status, run.exit_code) == (RunStatus.SUCCESS, 0)
    output = (run.run_dir / "output.log").read_text()
    assert output.endswith("] built while the disk was full\n")

"""`runtimes.forked`: the one way a warm process (webhook worker, warm runner) forks a run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from datum_dot.runtimes import forked


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in {"Z", "X"}


def _wait_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return False


def test_exit_status_system_exit_and_crash(capfd: pytest.CaptureFixture[str]) -> None:
    assert forked.fork(lambda: 7).wait(10) == 7

    def exits() -> int:
        raise SystemExit(3)

    assert forked.fork(exits).wait(10) == 3

    def crashes() -> int:
        raise RuntimeError("boom in the child")

    assert forked.fork(crashes, crash_code=30).wait(10) == 30
    assert "RuntimeError: boom in the child" in capfd.readouterr().err


def test_child_leads_its_own_group_with_fresh_signal_dispositions(tmp_path: Path) -> None:
    out = tmp_path / "out"
    previous = signal.signal(signal.SIGUSR1, lambda *_: None)
    try:

        def body() -> int:
            usr1 = signal.getsignal(signal.SIGUSR1)
            out.write_text(
                f"{os.getpgid(0)} {os.getpid()} {usr1 is signal.SIG_DFL} "
                f"{signal.getsignal(signal.SIGINT) is signal.default_int_handler}"
            )
            return 0

        child = forked.fork(body)
        assert child.wait(10) == 0
    finally:
        signal.signal(signal.SIGUSR1, previous)
    pgid, pid, usr1_default, sigint_raises = out.read_text().split()
    assert pgid == pid == str(child.pid)
    assert usr1_default == "True"  # the parent's handler is not the child's
    assert sigint_raises == "True"

    def ignored() -> int:
        return 0 if signal.getsignal(signal.SIGINT) is signal.SIG_IGN else 1

    assert forked.fork(ignored, sigint_ignored=True).wait(10) == 0
    assert (
        forked.fork(lambda: 0 if os.getsid(0) == os.getpid() else 1, new_session=True).wait(10) == 0
    )


def test_stop_interrupts_then_kills_the_whole_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"

    def stubborn() -> int:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a query that ignores the cancel
        grandchild = subprocess.Popen(["sleep", "60"])
        pids.write_text(str(grandchild.pid))
        time.sleep(60)
        return 0

    child = forked.fork(stubborn)
    deadline = time.monotonic() + 10
    while not pids.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    code = child.stop(0.3)
    assert code == -signal.SIGKILL
    assert time.monotonic() - started < 5
    assert _wait_gone(int(pids.read_text()))  # dbt's own children go with it


def test_interrupted_child_exits_on_sigint() -> None:
    def waits() -> int:
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            return 50
        return 0

    child = forked.fork(waits)
    time.sleep(0.2)
    assert child.stop(5) == 50


def test_child_dies_with_the_process_that_forked_it(tmp_path: Path) -> None:
    """A warm worker killed with SIGKILL mid-run leaves no dbt running unwatched."""
    pid_file = tmp_path / "child"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from datum_dot.runtimes import forked

        child = forked.fork(lambda: time.sleep(60) or 0)
        Path({str(pid_file)!r}).write_text(str(child.pid))
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 20
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        child_pid = int(pid_file.read_text())
        assert not _gone(child_pid)
        parent.kill()
        parent.wait(10)
        assert _wait_gone(child_pid)
    finally:
        parent.kill()

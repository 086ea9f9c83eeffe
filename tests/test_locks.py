"""datum_dot.home.locks with a second, real process holding the lock."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import datum_dot
from datum_dot.errors import ExitCode, LockTimeoutError
from datum_dot.home.locks import file_lock

# The holder uses file_lock itself, so both sides of the contention are the code under test.
HOLDER = """
import sys
from pathlib import Path
from datum_dot.home.locks import file_lock

with file_lock(Path(sys.argv[1]), timeout=5):
    print("locked", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def lock_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "build" / "abc12345" / "worktree.lock"


@pytest.fixture
def holder(lock_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock until its stdin is closed."""
    src = str(Path(datum_dot.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    try:
        yield proc
    finally:
        if proc.stdin is not None and not proc.stdin.closed:
            proc.stdin.close()
        proc.wait(timeout=10)


def test_file_lock_times_out_while_another_process_holds_it(
    lock_path: Path, holder: subprocess.Popen[str]
) -> None:
    waits: list[float] = []
    started = time.monotonic()
    with (
        pytest.raises(LockTimeoutError) as info,
        file_lock(lock_path, timeout=0.3, on_wait=lambda: waits.append(time.monotonic())),
    ):
        pytest.fail("the lock was acquired while another process held it")
    assert time.monotonic() - started >= 0.3
    assert len(waits) == 1
    assert str(lock_path) in info.value.message
    assert f"process {holder.pid}" in info.value.message
    assert "retry" in info.value.hint
    assert info.value.exit_code == ExitCode.TIMEOUT


def test_file_lock_waits_for_the_holder_then_acquires(
    lock_path: Path, holder: subprocess.Popen[str]
) -> None:
    assert holder.stdin is not None
    release = threading.Timer(0.2, holder.stdin.close)
    release.start()
    waits: list[int] = []
    started = time.monotonic()
    try:
        with file_lock(lock_path, timeout=10, on_wait=lambda: waits.append(1)):
            waited = time.monotonic() - started
            assert lock_path.read_text().strip() == str(os.getpid())
    finally:
        release.cancel()
    assert waits == [1]
    assert 0.15 <= waited < 5


def test_file_lock_uncontended_creates_private_folders(lock_path: Path, tmp_path: Path) -> None:
    waits: list[int] = []
    with file_lock(lock_path, timeout=0, on_wait=lambda: waits.append(1)):
        assert lock_path.is_file()
    assert waits == []
    for folder in (tmp_path / "state", lock_path.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(lock_path.stat().st_mode) == 0o600


def test_file_lock_released_after_error_and_reusable(lock_path: Path) -> None:
    with pytest.raises(RuntimeError), file_lock(lock_path, timeout=0):
        raise RuntimeError("boom")
    with file_lock(lock_path, timeout=0):
        pass
    assert lock_path.exists()  # never deleted: see the module docstring


def test_file_lock_excludes_a_second_opener_in_the_same_process(lock_path: Path) -> None:
    with (
        file_lock(lock_path, timeout=0),
        pytest.raises(LockTimeoutError),
        file_lock(lock_path, timeout=0.05),
    ):
        pass

"""The one place runtimes start child processes.

Every child gets its own process group, so that stopping it (timeout, Ctrl-C, SIGTERM) reaches
dbt and everything dbt started; `subprocess.run(timeout=...)` alone kills only the direct child
and leaves grandchildren running. stdout and stderr are read by two threads at once, so a child
that fills one pipe while we wait on the other cannot deadlock, and the timeout is kept by the
waiting thread, which does not depend on the child writing anything.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

LineHandler = Callable[[str, str], None]
GRACE_SECONDS = 5.0
_READER_JOIN_SECONDS = 5.0


@dataclass(frozen=True)
class ProcessOutcome:
    """How a child process ended.

    Attributes:
        returncode: Its exit status (negative: killed by that signal).
        timed_out: It was stopped because the timeout passed.
        interrupted: It was stopped because we were interrupted (Ctrl-C, SIGTERM).
        seconds: Wall time from start to exit.
    """

    returncode: int
    timed_out: bool = False
    interrupted: bool = False
    seconds: float = 0.0


def stream(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float | None,
    on_line: LineHandler,
    grace: float = GRACE_SECONDS,
) -> ProcessOutcome:
    """Run `argv` to the end, handing each output line to `on_line(stream, text)` as it comes.

    Args:
        argv: The program and its arguments (never a shell string).
        cwd: The folder it runs in.
        env: Its whole environment.
        timeout: Seconds before its process group is stopped, or None.
        on_line: Called with "stdout"/"stderr" and each line without its newline, one call at
            a time.
        grace: Seconds between asking the group to stop and killing it.

    Returns:
        How it ended. A timeout or an interruption is reported, not raised.

    Raises:
        OSError: The program could not be started.
    """
    started = time.monotonic()
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    lock = threading.Lock()
    readers = [
        threading.Thread(target=_pump, args=(pipe, name, on_line, lock), daemon=True)
        for pipe, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))
        if pipe is not None
    ]
    for reader in readers:
        reader.start()
    timed_out = interrupted = False
    try:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            stop_group(proc, signal.SIGTERM, grace)
    except KeyboardInterrupt:
        # Ctrl-C, or SIGTERM turned into one by the CLI: the child is in its own group and
        # did not get the terminal's signal, so pass it on, then make sure.
        interrupted = True
        stop_group(proc, signal.SIGINT, grace)
    finally:
        _kill_group(proc.pid)  # grandchildren that outlived dbt die with it
        for reader in readers:
            reader.join(timeout=_READER_JOIN_SECONDS)
    return ProcessOutcome(
        returncode=proc.returncode if proc.returncode is not None else -signal.SIGKILL,
        timed_out=timed_out,
        interrupted=interrupted,
        seconds=time.monotonic() - started,
    )


def stop_group(proc: subprocess.Popen[bytes], first: signal.Signals, grace: float) -> None:
    """Send `first` to the child's process group, then SIGKILL it after `grace` seconds."""
    _signal_group(proc.pid, first)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    except KeyboardInterrupt:
        pass  # a second Ctrl-C: do not wait any longer
    _kill_group(proc.pid)
    proc.wait()


def run(
    argv: Sequence[str], *, cwd: Path | None = None, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a short command (a version probe) and capture its output; never raises on failure.

    Raises:
        OSError: The program could not be started.
        subprocess.TimeoutExpired: It did not finish within `timeout` (it was killed).
    """
    return subprocess.run(
        list(argv),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        start_new_session=True,
    )


def _pump(pipe: IO[bytes], name: str, on_line: LineHandler, lock: threading.Lock) -> None:
    with pipe:
        for raw in iter(pipe.readline, b""):
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            with lock:
                on_line(name, text)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _kill_group(pgid: int) -> None:
    _signal_group(pgid, signal.SIGKILL)

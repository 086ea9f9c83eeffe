"""The CLI's side of the warm runner: hand a command off, ask it questions, start it.

Everything here is the standard library only and costs a socket connect when no runner is up:
`dot --version` asks `probe.is_up` with a 50 ms timeout and never waits longer, and a run that
finds no runner goes the normal way at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from datum_dot.errors import DotError, ExitCode
from datum_dot.warm.paths import RunnerPaths
from datum_dot.warm.probe import connect as _connect
from datum_dot.warm.probe import is_up as is_up
from datum_dot.warm.protocol import LineReader, ProtocolError, send_line, send_request

CONNECT_SECONDS = 0.5  # a live runner accepts at once (the kernel queues the connection)
HANDSHAKE_SECONDS = 10.0  # the runner reads the request, checks it, forks: milliseconds
_GONE_SECONDS = 5.0
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class RunnerLostError(DotError):
    """The runner ended while it ran the command: the run is recorded ABORTED (exit 30)."""

    exit_code = ExitCode.RUNTIME_FAILURE


@dataclass(frozen=True)
class HandOffRequest:
    """What a fresh process would have been: handed to the runner with the caller's stdio.

    Attributes:
        argv: The command line after the program's name.
        argv0: The program as the caller ran it (`dot`, `datum`, a path).
        cwd: The working directory.
        env: The whole environment.
        fds: The child's stdin, stdout and stderr: the caller's own unless told otherwise.
    """

    argv: Sequence[str]
    argv0: str
    cwd: Path
    env: dict[str, str]
    fds: tuple[int, int, int] = (0, 1, 2)

    def to_json(self) -> dict[str, Any]:
        """The request frame's body."""
        umask = os.umask(0)
        os.umask(umask)
        size = _terminal_size()
        return {
            "op": "run",
            "argv": list(self.argv),
            "argv0": self.argv0,
            "cwd": str(self.cwd),
            "env": self.env,
            "umask": umask,
            "columns": size[0],
            "lines": size[1],
            "executable": sys.executable,
            "prefix": sys.prefix,
            "encoding": getattr(sys.stdout, "encoding", None),
            "errors": getattr(sys.stdout, "errors", None),
            # Asked before the CLI installs its own handlers: as the shell started us.
            "sigint_ignored": signal.getsignal(signal.SIGINT) is signal.SIG_IGN,
        }


def ask(
    paths: RunnerPaths, op: str, *, timeout: float = HANDSHAKE_SECONDS
) -> dict[str, Any] | None:
    """Send `status` or `stop`; the runner's answer, or None when no runner answers."""
    sock = _connect(paths, CONNECT_SECONDS)
    if sock is None:
        return None
    with sock:
        sock.settimeout(timeout)
        try:
            send_request(sock, {"op": op}, [])
            return LineReader(sock).read()
        except (OSError, ProtocolError):
            return None


def hand_off(
    paths: RunnerPaths,
    request: HandOffRequest,
    *,
    note: Callable[[str], None],
    on_lost: Callable[[int], None],
) -> int | None:
    """Have the runner run the command; its exit code, or None to run it here instead.

    Args:
        paths: The runner's files.
        request: The command and the caller's process state.
        note: Told why the runner was not used (for `DOT_WARM_VERBOSE`).
        on_lost: Called with the child's pid when the runner ends mid-run, before the error.

    Raises:
        RunnerLostError: The runner ended after the command had started.
    """
    sock = _connect(paths, CONNECT_SECONDS)
    if sock is None:
        note("no warm runner is listening")
        return None
    with sock:
        sock.settimeout(HANDSHAKE_SECONDS)
        reader = LineReader(sock)
        try:
            send_request(sock, request.to_json(), list(request.fds))
            first = reader.read()
        except (OSError, ProtocolError) as e:
            note(f"the warm runner did not take the command: {e}")
            return None
        if first is None or not isinstance(first.get("pid"), int):
            why = (first or {}).get("refused", "it closed the connection")
            note(f"the warm runner cannot serve this command: {why}")
            return None
        sock.settimeout(None)
        return _follow(sock, reader, int(first["pid"]), on_lost)


def _follow(
    sock: socket.socket, reader: LineReader, child: int, on_lost: Callable[[int], None]
) -> int:
    """Forward signals to the child until the runner reports its exit code."""

    def forward(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):
            send_line(sock, {"signal": signum})

    previous = {sig: signal.signal(sig, forward) for sig in _FORWARDED}
    try:
        while True:
            try:
                message = reader.read()
            except (OSError, ProtocolError):
                message = None
            if message is None:
                on_lost(child)
                raise RunnerLostError(
                    "the warm runner ended during the run; the run is recorded as ABORTED",
                    "run the command again (a new runner starts when needed); its log is in "
                    f"{_log_hint(sock)}",
                )
            if isinstance(message.get("exit"), int):
                return int(message["exit"])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_until_gone(pid: int, *, timeout: float = _GONE_SECONDS) -> None:
    """Wait until a process has ended (or is a zombie), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state in {"Z", "X"}:
            return
        time.sleep(0.02)


def spawn(paths: RunnerPaths, *, env: dict[str, str], after_this: bool = False) -> None:
    """Start a runner in the background (`dot warm serve`), not waiting for it to listen.

    A runner that finds another one up exits at once, so racing starters start one. With
    `after_this`, it warms up only once this process has ended (a run that starts it).
    """
    import subprocess  # lazy: only when a runner is started

    argv = [sys.executable, "-m", "datum_dot", "warm", "serve"]
    if after_this:
        argv += ["--after-pid", str(os.getpid())]
    paths.make_private()
    with open(paths.log, "ab") as log:  # noqa: PTH123 - a raw append handle for the child
        paths.log.chmod(0o600)
        subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            cwd="/",
            start_new_session=True,
            close_fds=True,
        )


def wait_until_up(paths: RunnerPaths, *, timeout: float) -> bool:
    """Wait for a runner to listen, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_up(paths):
            return True
        time.sleep(0.05)
    return is_up(paths)


def _terminal_size() -> tuple[int | None, int | None]:
    for fd in (1, 2, 0):
        with contextlib.suppress(OSError):
            size = os.get_terminal_size(fd)
            return size.columns, size.lines
    return None, None


def _log_hint(sock: socket.socket) -> str:
    with contextlib.suppress(OSError):
        return str(Path(sock.getpeername()).with_name("runner.log"))
    return "$DATUM_HOME/warm/runner.log"

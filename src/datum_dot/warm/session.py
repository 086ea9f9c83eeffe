"""One handed-off command: the session process the runner forks, and the child that runs it.

The runner forks a session process per accepted request and goes back to accepting. The session
checks that it can serve the request exactly (same interpreter, unchanged installed code), forks
the child, tells the client its pid, forwards the client's signals to it and reports its exit
status. The child becomes what a fresh `dot` process would have been: its own session, default
signal handlers, the caller's working directory, environment, umask and stdio, and `sys.argv`;
then it calls the CLI's `main`.

Both die with their parent (PR_SET_PDEATHSIG): a runner killed mid-run takes the run with it,
and the client reports it, rather than leaving a child nobody waits for.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import select
import signal
import socket
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from datum_dot.runs.served import mark_served
from datum_dot.warm.protocol import LineReader, ProtocolError, send_line
from datum_dot.warm.stamp import Stamp, take_stamp

_PR_SET_PDEATHSIG = 1
# What a fresh Python process starts with: SIGPIPE ignored (writes raise BrokenPipeError),
# SIGINT raising KeyboardInterrupt, everything else at its default.
_RESET_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGQUIT, signal.SIGUSR1)
_FORWARDED = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
_CRASH = 30
STALE = "datum-dot, dbt-core or an adapter changed since the runner started"


def refusal(request: Mapping[str, Any], stamp: Stamp, files: list[Any]) -> str | None:
    """Why this runner cannot serve `request` exactly, or None when it can."""
    if request.get("executable") != sys.executable or request.get("prefix") != sys.prefix:
        return "another Python interpreter or virtual environment"
    if take_stamp(files) != stamp:
        return STALE
    return None


def serve_session(
    conn: socket.socket,
    request: Mapping[str, Any],
    fds: list[int],
    *,
    run: Callable[[], int],
) -> int:
    """In the session process: start the child, relay signals, report its exit status.

    Returns:
        This process's own exit status (0: the client was told how the child ended).
    """
    die_with_parent(signal.SIGKILL)
    child = os.fork()
    if child == 0:
        conn.close()
        os._exit(run_child(request, fds, run=run))
    for fd in fds:
        os.close(fd)  # the child holds them; a reader of the caller's pipe sees its EOF only
    try:
        send_line(conn, {"pid": child})
    except OSError:
        _stop(child, signal.SIGTERM)
    code = _relay(conn, child)
    with contextlib.suppress(OSError):
        send_line(conn, {"exit": code})
    return 0


def _relay(conn: socket.socket, child: int) -> int:
    """Forward the client's signals to the child until it ends; its exit code."""
    pidfd = os.pidfd_open(child)
    reader = LineReader(conn)
    client_gone = False
    try:
        while True:
            watched = [pidfd] if client_gone else [pidfd, conn.fileno()]
            ready, _, _ = select.select(watched, [], [])
            if pidfd in ready:
                _, status = os.waitpid(child, 0)
                return _exit_code(status)
            try:
                message = reader.read()
            except (OSError, ProtocolError):
                message = None
            if message is None:
                # The caller is gone (killed, or its terminal closed): cancel as its Ctrl-C would.
                client_gone = True
                _stop(child, signal.SIGTERM)
            elif isinstance(message.get("signal"), int) and message["signal"] in _FORWARDED:
                _stop(child, signal.Signals(message["signal"]))
    finally:
        os.close(pidfd)


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code  # killed by a signal: as a shell reports it


def _stop(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


# --- in the child ---------------------------------------------------------------------------


def run_child(request: Mapping[str, Any], fds: list[int], *, run: Callable[[], int]) -> int:
    """Become the process the caller would have started, and run the CLI; its exit code."""
    try:
        die_with_parent(signal.SIGKILL)
        os.setsid()
        _reset_signals(sigint_ignored=bool(request.get("sigint_ignored")))
        _take_stdio(fds, request)
        os.chdir(str(request["cwd"]))
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in dict(request["env"]).items()})
        os.umask(int(request["umask"]))
        sys.argv = [str(request["argv0"]), *(str(a) for a in request["argv"])]
        mark_served()
    except (OSError, KeyError, TypeError, ValueError) as e:
        with contextlib.suppress(OSError):
            os.write(2, f"error: the warm runner could not start the command: {e}\n".encode())
        return _CRASH
    try:
        return run()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - main() reports every error itself; a last resort
        traceback.print_exc()
        return _CRASH
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()


def die_with_parent(sig: signal.Signals) -> None:
    """Have the kernel send `sig` to this process when its parent ends (Linux)."""
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if os.getppid() != parent:  # the parent ended before the call took effect
        os._exit(_CRASH)


def _reset_signals(*, sigint_ignored: bool) -> None:
    for sig in _RESET_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    # A caller started with SIGINT ignored (`dot build &` in a script) passes that on (ADR 0011).
    signal.signal(signal.SIGINT, signal.SIG_IGN if sigint_ignored else signal.default_int_handler)


def _take_stdio(fds: list[int], request: Mapping[str, Any]) -> None:
    """Put the caller's stdin, stdout and stderr on 0, 1 and 2, and Python's streams on them."""
    if len(fds) != 3:
        raise ValueError(f"expected 3 file descriptors, got {len(fds)}")
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in set(fds) - {0, 1, 2}:
        os.close(fd)
    encoding = str(request.get("encoding") or "utf-8")
    errors = str(request.get("errors") or "strict")
    sys.stdin = _stream(0, "r", encoding, errors)
    sys.stdout = _stream(1, "w", encoding, errors)
    sys.stderr = _stream(2, "w", encoding, "backslashreplace")
    # What a fresh interpreter has; code that restores the originals (faulthandler, a REPL)
    # must get the caller's streams, not the runner's.
    for name in ("stdin", "stdout", "stderr"):
        setattr(sys, f"__{name}__", getattr(sys, name))


def _stream(fd: int, mode: str, encoding: str, errors: str) -> io.TextIOWrapper:
    """A text stream on `fd` set up as Python sets up its standard streams."""
    tty = os.isatty(fd)
    raw = io.FileIO(fd, mode, closefd=False)
    buffered: io.BufferedIOBase = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
    return io.TextIOWrapper(
        buffered,  # type: ignore[arg-type]
        encoding=encoding,
        errors=errors,
        line_buffering=tty and mode == "w",
        write_through=fd == 2,
    )

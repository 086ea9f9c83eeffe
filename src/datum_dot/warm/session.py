"""One handed-off command: the session process the runner forks, and the child that runs it.

The runner forks a session process per accepted request and goes back to accepting. The session
forks the child, tells the client its pid, forwards the client's signals to it and reports its
exit status. The child is forked as the webhook's warm workers fork theirs (`runtimes.forked`):
a session of its own, the signal dispositions of a fresh Python, dying with its parent. It then
becomes what a fresh `dot` process would have been: the caller's working directory,
environment, umask and stdio, and `sys.argv`; then it calls the CLI's `main`.

Both die with their parent (PR_SET_PDEATHSIG): a runner killed mid-run takes the run with it,
and the client reports it, rather than leaving a child nobody waits for.
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from typing import Any

from datum_dot.runs.served import mark_served
from datum_dot.runtimes import forked
from datum_dot.warm.protocol import LineReader, ProtocolError, send_line
from datum_dot.warm.stamp import Stamp, take_stamp

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
    forked.die_with_parent(signal.SIGKILL)

    def body() -> int:
        conn.close()
        return run_child(request, fds, run=run)

    # The same fork as the webhook's warm workers make for each run (`runtimes.forked`).
    child = forked.fork(
        body,
        new_session=True,
        sigint_ignored=bool(request.get("sigint_ignored")),
        crash_code=_CRASH,
    )
    for fd in fds:
        os.close(fd)  # the child holds them; a reader of the caller's pipe sees its EOF only
    try:
        send_line(conn, {"pid": child.pid})
    except OSError:
        child.signal(signal.SIGTERM, group=False)
    code = _relay(conn, child)
    with contextlib.suppress(OSError):
        send_line(conn, {"exit": code})
    return 0


def _relay(conn: socket.socket, child: forked.ForkedChild) -> int:
    """Forward the client's signals to the child until it ends; its exit code."""
    reader = LineReader(conn)
    client_gone = False
    while True:
        watched = [child.fileno()] if client_gone else [child.fileno(), conn.fileno()]
        ready, _, _ = select.select(watched, [], [])
        if child.fileno() in ready:
            code = child.wait()
            if code is not None:
                return 128 - code if code < 0 else code  # killed by a signal: as a shell says
            continue
        try:
            message = reader.read()
        except (OSError, ProtocolError):
            message = None
        if message is None:
            # The caller is gone (killed, or its terminal closed): cancel as its Ctrl-C would.
            client_gone = True
            child.signal(signal.SIGTERM, group=False)
        elif isinstance(message.get("signal"), int) and message["signal"] in _FORWARDED:
            child.signal(signal.Signals(message["signal"]), group=False)


# --- in the child ---------------------------------------------------------------------------


def run_child(request: Mapping[str, Any], fds: list[int], *, run: Callable[[], int]) -> int:
    """Become the process the caller would have started, and run the CLI; its exit code."""
    try:
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
    # main() reports every error itself; `forked.fork` prints anything else and exits 30.
    return run()


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

"""The warm runner's process: dbt imported once, an accept loop, a forked session per request.

One runner per `$DATUM_HOME`: it holds `runner.lock` (flock) for its whole life, so of two
runners started at once one serves and the other exits. It replaces a socket file a dead runner
left, serves only peers of its own uid (SO_PEERCRED; the folder's mode stops others earlier),
answers `status` and `stop` itself, and forks a session (`session.serve_session`) for each run.
It stops when idle for `idle_timeout` seconds, on SIGTERM, on `stop`, and when the installed
code changed since it started (the run asking is refused and falls back to a fresh process).

The loop is single-threaded on purpose: forking a process with other threads could copy a lock
one of them held. dbt's warm-up (`runtimes.warmth.warm_up`, shared with the webhook's `--warm`)
parses without the static parser for the same reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import logging
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datum_dot.errors import DotError
from datum_dot.home.userconfig import load_user_config
from datum_dot.warm.paths import RunnerPaths
from datum_dot.warm.protocol import ClosedError, ProtocolError, receive_request, send_line
from datum_dot.warm.session import STALE, refusal, serve_session
from datum_dot.warm.stamp import Stamp, take_stamp, watched_files

log = logging.getLogger("datum_dot.warm")
REQUEST_SECONDS = 5.0  # a client sends its request at once; a silent peer is dropped
_TICK_SECONDS = 5.0  # how often an idle loop reaps children and checks the idle timeout
_PEERCRED = struct.Struct("3i")
SWITCHED_OFF = "warm is off in config.yaml (dot config set warm off)"


@dataclass
class RunnerState:
    """What `dot warm status` reports, kept by the loop."""

    started: float
    versions: Mapping[str, str]
    stamp: Stamp
    files: list[Path]
    idle_timeout: float
    home: Path
    served: int = 0
    last_active: float = field(default_factory=time.monotonic)
    children: set[int] = field(default_factory=set)
    stopping: bool = False


def serve(
    paths: RunnerPaths,
    *,
    run: Callable[[], int],
    preload: Sequence[str],
    warm_up: Callable[[], None],
    versions: Callable[[], Mapping[str, str]],
    idle_timeout: float,
    after_pid: int | None = None,
) -> int:
    """Be the runner until idle, stopped or stale; 0, or 0 at once if another runner is up.

    Args:
        paths: The runner's files.
        run: What a child calls once it has become the caller's process (the CLI's `main`).
        preload: Modules to import before serving (the CLI's run path).
        warm_up: Imports dbt and the adapters and warms dbt's caches.
        versions: datum-dot's, dbt-core's and the adapters' versions, for `status`.
        idle_timeout: Seconds without a request after which the runner stops.
        after_pid: Warm up only once this process has ended: the run that started the runner
            then has both cores to itself (on a small machine the warm-up would slow it).
    """
    paths.make_private()
    lock = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        return 0  # another runner holds it: that one serves
    if after_pid is not None:
        _wait_for_exit(after_pid)
    for module in preload:
        importlib.import_module(module)
    warm_up()
    files = watched_files()
    home = paths.folder.parent
    state = RunnerState(time.time(), versions(), take_stamp(files), files, idle_timeout, home)
    listener = _listen(paths.socket)
    _write_pid(paths, state)
    signal.signal(signal.SIGTERM, lambda _s, _f: _request_stop(state))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    log.info("warm runner %s listening on %s", os.getpid(), paths.socket)
    try:
        _loop(listener, state, run=run, lock=lock)
    finally:
        _finish(paths, listener, state)
    log.info("warm runner %s stopped after %d runs", os.getpid(), state.served)
    return 0


def _wait_for_exit(pid: int) -> None:
    """Wait (polling: it is not our child) until `pid` has ended or become a zombie."""
    stat = Path(f"/proc/{pid}/stat")
    while True:
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state in {"Z", "X"}:
            return
        time.sleep(0.1)


def _listen(path: Path) -> socket.socket:
    """Bind the socket, replacing a file a dead runner left (we hold the lock: none is live)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # created 0600: no window where another user could connect
    try:
        listener.bind(str(path))
    finally:
        os.umask(old)
    listener.listen(64)
    return listener


def _write_pid(paths: RunnerPaths, state: RunnerState) -> None:
    temp = paths.pid.with_name(f".{paths.pid.name}.{os.getpid()}")
    temp.write_text(json.dumps({"pid": os.getpid(), "started": state.started}))
    temp.replace(paths.pid)


def _request_stop(state: RunnerState) -> None:
    state.stopping = True


def _loop(
    listener: socket.socket, state: RunnerState, *, run: Callable[[], int], lock: int
) -> None:
    while not state.stopping:
        _reap(state)
        idle = time.monotonic() - state.last_active
        if not state.children and idle >= state.idle_timeout:
            log.info("idle for %.0f s: stopping", idle)
            return
        listener.settimeout(max(0.05, min(_TICK_SECONDS, state.idle_timeout - idle)))
        try:
            conn, _ = listener.accept()
        except (TimeoutError, InterruptedError):
            continue
        with conn:
            _handle(conn, listener, state, run=run, lock=lock)


def _reap(state: RunnerState) -> None:
    for pid in list(state.children):
        with contextlib.suppress(ChildProcessError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if not done:
                continue
        state.children.discard(pid)
        state.last_active = time.monotonic()


def _handle(
    conn: socket.socket,
    listener: socket.socket,
    state: RunnerState,
    *,
    run: Callable[[], int],
    lock: int,
) -> None:
    uid = peer_uid(conn)
    if uid != os.getuid():
        log.warning("refused a connection from uid %s", uid)
        with contextlib.suppress(OSError):
            send_line(conn, {"refused": "another user's runner"})
        return
    conn.settimeout(REQUEST_SECONDS)
    try:
        request, fds = receive_request(conn)
    except ClosedError:
        return  # a liveness check (`dot --version`): connecting was the whole question
    except (OSError, ProtocolError) as e:
        log.warning("dropped a malformed request: %s", e)
        return
    state.last_active = time.monotonic()
    op = request.get("op")
    if op != "run":
        for fd in fds:
            os.close(fd)
        _answer(conn, op, state)
        return
    why = refusal(request, state.stamp, state.files) or _switched_off(state)
    if why is not None:
        for fd in fds:
            os.close(fd)
        with contextlib.suppress(OSError):
            send_line(conn, {"refused": why})
        if why in (STALE, SWITCHED_OFF):
            state.stopping = True  # the next start imports the new code, or none starts
        return
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            listener.close()
            os.close(lock)  # the runner alone holds the lock: a new one may start once it ends
            conn.settimeout(None)
            code = serve_session(conn, request, fds, run=run)
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    state.children.add(pid)
    state.served += 1


def _switched_off(state: RunnerState) -> str | None:
    """`warm: off` set since the runner started: refuse. Also takes a new `warm.idle-timeout`."""
    try:
        settings = load_user_config(state.home).warm
    except DotError:
        return None  # a broken config.yaml: the run itself reports it
    state.idle_timeout = float(settings.idle_timeout)
    return SWITCHED_OFF if settings.mode == "off" else None


def _answer(conn: socket.socket, op: object, state: RunnerState) -> None:
    if op == "stop":
        state.stopping = True
        reply: dict[str, Any] = {"stopping": True, "pid": os.getpid()}
    elif op == "status":
        _reap(state)  # a run that ended since the last tick is not running any more
        reply = status(state)
    else:
        reply = {"refused": f"unknown request {op!r}"}
    with contextlib.suppress(OSError):
        send_line(conn, reply)


def status(state: RunnerState) -> dict[str, Any]:
    """What `dot warm status` shows: pid, uptime, versions, runs served, memory."""
    return {
        "pid": os.getpid(),
        "uptime_seconds": round(time.time() - state.started, 1),
        "started": state.started,
        "versions": dict(state.versions),
        "runs_served": state.served,
        "runs_running": len(state.children),
        "rss_bytes": rss_bytes(os.getpid()),
        "idle_timeout_seconds": state.idle_timeout,
        "python": sys.executable,
    }


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED)."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    _pid, uid, _gid = _PEERCRED.unpack(raw)
    return int(uid)


def rss_bytes(pid: int) -> int | None:
    """A process's resident memory (VmRSS), or None where /proc does not say."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


def _finish(paths: RunnerPaths, listener: socket.socket, state: RunnerState) -> None:
    """Stop listening at once, then let the runs under way end (they die with this process)."""
    # We hold the lock until we return, so no newer runner can have bound: the file is ours.
    with contextlib.suppress(FileNotFoundError):
        paths.socket.unlink()
    listener.close()
    with contextlib.suppress(OSError):
        paths.pid.unlink()
    for pid in list(state.children):
        with contextlib.suppress(ChildProcessError, InterruptedError):
            os.waitpid(pid, 0)

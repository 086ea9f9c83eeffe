"""Run one in-process dbt invocation in a child process, so that it can really be stopped.

`dbtRunner` cannot be cancelled from inside its own process: a timed-out invocation would leave
dbt's threads and warehouse queries running. In a child process, a timeout or a cancellation
stops everything: SIGINT first (dbt cancels its open queries), SIGKILL to the child's process
group after a grace period.

Two ways to get a child (see adr/0003):

- a fork of this process (`runtimes.forked`, the way the warm runner forks its children too),
  for callers that run dbt from their main thread: the CLI, and the webhook's `--warm` worker.
  The child is a copy of a process that has already imported dbt and may hold a parsed
  manifest, so it starts warm and skips the second parse; it dies with its parent.
- a fork server (`multiprocessing`'s `forkserver`, with dbt preloaded), for processes with
  threads, where forking the caller is unsafe, and where `runtimes.local.warm` asks for it:
  dbt is imported once, and every invocation forks a fresh, warm child.

The child sends its output lines, dbt's events and the result back over a pipe.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any, Protocol

from datum_dot import dbtcore
from datum_dot.runtimes import forked
from datum_dot.runtimes.base import EventHandler, OutputSink
from datum_dot.runtimes.output import (
    LevelTagger,
    LineSplitter,
    Tail,
    strip_ansi,
    terminal_policy,
    write_quietly,
)

GRACE_SECONDS = 5.0
_POLL_SECONDS = 0.2
_preload_lock = threading.Lock()
_preload_set = False


@dataclass(frozen=True)
class ChildOutcome:
    """What the child reported, or how it was stopped.

    Attributes:
        payload: The child's `dbtcore.Invocation` as a dict, or None if it sent none.
        timed_out: Stopped because the timeout passed.
        interrupted: Stopped because we were interrupted.
        returncode: The child's exit status (negative: the signal that ended it).
        tail: The last lines of its output.
    """

    payload: Mapping[str, Any] | None
    timed_out: bool
    interrupted: bool
    returncode: int
    tail: tuple[str, ...]


def context(*, warm: bool) -> BaseContext:
    """`fork` when this process may be forked safely and need not stay warm; else the server.

    Forking is safe when every other thread is a daemon helper (a progress bar's refresh
    thread): the child replaces its stdio at once and never touches what those threads hold.
    A process with worker threads (a server) could be forked in the middle of their work.
    """
    main = threading.main_thread()
    helpers_only = all(t.daemon for t in threading.enumerate() if t is not main)
    if not warm and helpers_only and threading.current_thread() is main:
        return multiprocessing.get_context("fork")
    return _forkserver()


def warm_up() -> None:
    """Start the fork server now (it imports dbt once), so the first run does not wait for it."""
    from multiprocessing import forkserver

    _forkserver()
    forkserver.ensure_running()


def _forkserver() -> BaseContext:
    global _preload_set
    ctx = multiprocessing.get_context("forkserver")
    with _preload_lock:
        if not _preload_set:
            modules = [__name__, "datum_dot.dbtcore", *dbtcore.preload_modules()]
            ctx.set_forkserver_preload([*modules, "datum_dot.runtimes.warmup"])
            _preload_set = True
    return ctx


def invoke(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    manifest: object | None,
    on_event: EventHandler | None,
    output: OutputSink | None,
    timeout: float | None,
    warm: bool,
    grace: float = GRACE_SECONDS,
) -> ChildOutcome:
    """Run `dbtcore.invoke(args)` in a child process and relay its output and events.

    Args:
        args: dbt's argv without the leading `dbt`.
        env: Extra environment variables for dbt.
        manifest: A parsed manifest to reuse (only a forked copy of this process can take it).
        on_event: Called here with each dbt event the child reports.
        output: Receives each output line (which is also written to this process's stdout).
        timeout: Seconds before the child is stopped, or None.
        warm: Use the fork server even where forking this process would be safe.
        grace: Seconds between SIGINT and SIGKILL.

    Returns:
        What happened.
    """
    environ = {**os.environ, **env}
    cwd = str(Path.cwd())
    relay = on_event is not None
    ctx = context(warm=warm)
    receiver, sender = ctx.Pipe(duplex=False)
    proc: _Child
    if ctx.get_start_method() == "fork":
        # The one way dot forks a warm copy of itself for a run (`runtimes.forked`).
        def body() -> int:
            receiver.close()
            _child_main(sender, list(args), environ, cwd, manifest, relay)
            return 0

        proc = _Forked(forked.fork(body))
    else:
        server_proc = ctx.Process(  # type: ignore[attr-defined]
            target=_served_main, args=(sender, list(args), environ, cwd, relay), daemon=True
        )
        server_proc.start()
        proc = _Served(server_proc)
    sender.close()
    deadline = None if timeout is None else time.monotonic() + timeout
    tail = Tail()
    payload: Mapping[str, Any] | None = None
    timed_out = interrupted = False
    try:
        payload, timed_out = _relay(receiver, proc, deadline, on_event, output, tail)
        if timed_out:
            proc.stop(grace)
    except KeyboardInterrupt:
        interrupted = True
        proc.stop(grace)
    finally:
        code = proc.finish(grace)
        receiver.close()
    return ChildOutcome(payload, timed_out, interrupted, code, tail.lines())


class _Child(Protocol):
    """A running child, however it was started."""

    def alive(self) -> bool: ...

    def stop(self, grace: float) -> None: ...

    def finish(self, grace: float) -> int: ...


class _Forked:
    """A child forked from this process (`runtimes.forked`)."""

    def __init__(self, child: forked.ForkedChild) -> None:
        self._child = child

    def alive(self) -> bool:
        return self._child.poll() is None

    def stop(self, grace: float) -> None:
        self._child.stop(grace)

    def finish(self, grace: float) -> int:
        # It sent its result and is exiting; past the grace period it is stopped. Whatever dbt
        # started in its process group goes with it.
        code = self._child.wait(grace)
        if code is None:
            code = self._child.stop(0)
        self._child.kill_group()
        self._child.close()
        return code


class _Served:
    """A child of `multiprocessing`'s fork server, for callers that cannot fork themselves."""

    def __init__(self, proc: Any) -> None:
        self._proc = proc

    def alive(self) -> bool:
        return bool(self._proc.is_alive())

    def stop(self, grace: float) -> None:
        # The child made itself a process group leader; before it got that far, signal it alone.
        _signal(self._proc.pid, signal.SIGINT)
        self._proc.join(timeout=grace)
        _kill_group(self._proc.pid)
        self._proc.join(timeout=5)

    def finish(self, grace: float) -> int:
        self._proc.join(timeout=grace)
        if self._proc.is_alive():
            self.stop(0)
        _kill_group(self._proc.pid)
        code = self._proc.exitcode
        return int(code) if code is not None else -signal.SIGKILL


def _relay(
    receiver: Connection,
    proc: _Child,
    deadline: float | None,
    on_event: EventHandler | None,
    output: OutputSink | None,
    tail: Tail,
) -> tuple[Mapping[str, Any] | None, bool]:
    while True:
        wait = _POLL_SECONDS
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, True
            wait = min(wait, remaining)
        if not receiver.poll(wait):
            if not proc.alive() and not receiver.poll(0):
                return None, False
            continue
        try:
            message = receiver.recv()
        except (EOFError, OSError):
            return None, False
        kind = message[0]
        if kind == "line":
            _, stream, text, level = message
            _echo(stream, text, level)
            clean = strip_ansi(text)
            tail.add(clean)
            if output is not None:
                output.line(stream, clean)
        elif kind == "event" and on_event is not None:
            on_event(message[1], message[2])
        elif kind == "done":
            return message[1], False


def _echo(stream: str, text: str, level: str | None) -> None:
    if terminal_policy().shows(level):
        write_quietly(sys.stderr if stream == "stderr" else sys.stdout, text + "\n")


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


# --- in the child ---------------------------------------------------------------------------


class _PipeText:
    """A text stream in the child that hands each complete line on (see `LevelTagger`)."""

    def __init__(self, on_line: Callable[[str], None], before_write: Callable[[], None]) -> None:
        self._splitter = LineSplitter(on_line)
        self._before_write = before_write

    def write(self, text: str) -> int:
        self._before_write()
        self._splitter.feed(text)
        return len(text)

    def flush(self) -> None:
        return None

    def finish(self) -> None:
        self._splitter.flush()

    def isatty(self) -> bool:
        return False


def _served_main(
    conn: Connection, args: list[str], environ: dict[str, str], cwd: str, relay: bool
) -> None:
    """A child of the fork server: set up as `forked.fork` sets up its children, then run."""
    os.setpgid(0, 0)
    forked.reset_signals(sigint_ignored=False)
    gc.freeze()  # as `forked.fork` does
    _child_main(conn, args, environ, cwd, None, relay)


def _child_main(
    conn: Connection,
    args: list[str],
    environ: dict[str, str],
    cwd: str,
    manifest: object | None,
    relay: bool,
) -> None:
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(environ)
    lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with lock, contextlib.suppress(OSError, ValueError):
            conn.send(message)

    # Each stdout line goes to the parent with the level of the dbt event that wrote it, so the
    # parent can show only warnings and errors beside its progress display.
    tagger = LevelTagger(lambda stream, text, level: send(("line", stream, text, level)))
    out = _PipeText(lambda line: tagger.line("stdout", line), tagger.writing)
    err = _PipeText(lambda line: send(("line", "stderr", line, None)), lambda: None)
    sys.stdout, sys.stderr = out, err

    try:
        outcome = dbtcore.invoke(
            args,
            manifest=manifest,
            # Each event sent is converted from protobuf and pickled: only when the parent reads them
            on_event=(lambda name, data: send(("event", name, data))) if relay else None,
            on_level=tagger.level,
        )
    finally:
        out.finish()
        err.finish()
        tagger.finish()
    send(("done", outcome.__dict__))
    conn.close()

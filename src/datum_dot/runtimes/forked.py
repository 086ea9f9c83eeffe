"""A copy of a warm process that runs one command: forked, made clean, watched, stopped.

dot keeps dbt warm in two places, and both run each command the same way, through `fork` here:

- the webhook's `--warm` worker (`runtimes.warmth`, through `runtimes.child`): a process that
  imported dbt once and forks a child for each job, handing it the manifest it parsed;
- the warm runner (`warm.session`): a process per user that imported dbt once and forks a child
  for each command the CLI hands it, which then becomes that command's process.

What a forked child needs is the same in both: it dies with the process that forked it (the
kernel's PR_SET_PDEATHSIG: a warm process killed mid-run never leaves dbt running unwatched), it
leads a process group of its own (a stop reaches dbt and whatever dbt started, and nothing
else), it starts with the signal dispositions of a fresh Python process rather than its parent's
handlers, and nothing of the parent's shutdown (atexit handlers, buffered streams) runs twice.
The parent watches it through a pidfd, so a wait can sit in one `select` beside the parent's
own sockets and pipes, and stops it as Ctrl-C would: SIGINT, then SIGKILL to its group after a
grace period.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import select
import signal
import sys
import traceback
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
# What a fresh Python process starts with: SIGPIPE ignored (writes raise BrokenPipeError),
# SIGINT raising KeyboardInterrupt, everything else at its default.
_RESET_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGQUIT, signal.SIGUSR1)


class ForkedChild:
    """A forked child, seen from the process that forked it.

    Attributes:
        pid: The child's process id (also its process group id once it has started).
        returncode: Its exit status once reaped (negative: the signal that ended it), else None.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._pidfd: int | None = os.pidfd_open(pid)

    def fileno(self) -> int:
        """A descriptor that becomes readable when the child ends (for `select`)."""
        if self._pidfd is None:
            raise ValueError("the child was reaped and its descriptor closed")
        return self._pidfd

    def poll(self) -> int | None:
        """Reap the child if it has ended; its exit status, or None while it runs."""
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: it is gone, how it ended is unknown
                self._reaped(-signal.SIGKILL)
            else:
                if pid:
                    self._reaped(os.waitstatus_to_exitcode(status))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait up to `timeout` seconds (None: for ever) for the child to end; as `poll`."""
        if self.returncode is None and self._pidfd is not None:
            with contextlib.suppress(InterruptedError):
                select.select([self._pidfd], [], [], timeout)
        return self.poll()

    def signal(self, sig: signal.Signals, *, group: bool = True) -> None:
        """Send `sig` to the child's process group (or the child alone); gone is fine."""
        if group:
            try:
                os.killpg(self.pid, sig)
                return
            except (ProcessLookupError, PermissionError):
                pass  # not a group leader yet: it has only just been forked
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, sig)

    def stop(self, grace: float) -> int:
        """Stop it as Ctrl-C would: SIGINT, and SIGKILL to its group after `grace` seconds.

        Returns:
            Its exit status.
        """
        if self.poll() is None:
            self.signal(signal.SIGINT)
            self.wait(grace)
        self.kill_group()
        code = self.wait(5.0)
        return -signal.SIGKILL if code is None else code

    def kill_group(self) -> None:
        """SIGKILL whatever is left in the child's process group (dbt's own children)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def close(self) -> None:
        """Release the pidfd (the child is left alone if it still runs)."""
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def _reaped(self, code: int) -> None:
        self.returncode = code
        self.close()


def fork(
    body: Callable[[], int],
    *,
    new_session: bool = False,
    sigint_ignored: bool = False,
    crash_code: int = 1,
) -> ForkedChild:
    """Fork a child that runs `body` and exits with what it returns.

    Args:
        body: Runs in the child; its return value is the child's exit status. `SystemExit`
            is honoured; any other exception is printed to the child's stderr and exits
            with `crash_code`.
        new_session: Make the child lead a session of its own (it becomes a command's whole
            process, as the warm runner's children do); else only a process group of its own.
        sigint_ignored: Start the child with SIGINT ignored, as a shell starts a background
            job (ADR 0011); else SIGINT raises KeyboardInterrupt.
        crash_code: The exit status when the child cannot start `body`, or it raised.

    Returns:
        The child, seen from here. Call `wait` or `poll` until it is reaped.
    """
    parent = os.getpid()
    pid = os.fork()
    if pid != 0:
        return ForkedChild(pid)
    code = crash_code
    try:
        die_with_parent(signal.SIGKILL, parent=parent)
        if new_session:
            os.setsid()
        else:
            os.setpgid(0, 0)
        reset_signals(sigint_ignored=sigint_ignored)
        # What the child inherited lives until it exits: its collections need not scan it, and
        # scanning would write to, and so copy, every page of it (see `dbtcore.collector`).
        gc.freeze()
        code = body()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - the child's last resort: say what it was, exit
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def die_with_parent(sig: signal.Signals, *, parent: int | None = None) -> None:
    """Have the kernel send `sig` to this process when its parent ends (Linux).

    Args:
        sig: The signal.
        parent: The pid the parent had before this process was forked; when it is already
            gone (the call came too late), this process exits at once.
    """
    expected = os.getppid() if parent is None else parent
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if os.getppid() != expected:
        os._exit(1)


def reset_signals(*, sigint_ignored: bool) -> None:
    """Give this process the signal dispositions of a freshly started Python process."""
    for sig in _RESET_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN if sigint_ignored else signal.default_int_handler)

"""Worker processes that take queued requests and run them through `execute()`.

Each worker is a process of its own (spawned, not forked from the threaded server), so planning
and running, which are CPU-bound Python, never hold up the server's answers (one process, one
GIL), and a worker can be stopped the way the CLI is. A worker imports dbt once when it starts
(`JobRunner.warm_up`), then loops: claim the oldest job whose environment is free (the queue is
shared by every process: SQLite under `$DATUM_HOME`, or PostgreSQL, shared by the servers of
every host, `pgqueue`), run it, mark it done with the run's status. A job another server took
over after its lease ran out is a retry: its first attempt is marked ABORTED before it begins.

Signals, from the server (`WorkerPool`):

- SIGTERM: take no new job; finish the current one, then exit.
- SIGUSR1: cancel the current run now, as Ctrl-C cancels it in the CLI (dbt is stopped, the
  record is CANCELLED), then exit.
- SIGINT is ignored: Ctrl-C in a terminal reaches the whole process group, and the server decides.

A worker whose server is gone (killed) cancels its run and exits: no dbt is left running unwatched.
A job whose run never began goes back to the queue.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path
from types import FrameType
from typing import Any

from datum_dot.errors import DotError
from datum_dot.history import RunStore
from datum_dot.webhook.execution import JobRunner, history_status
from datum_dot.webhook.queues import open_queue

log = logging.getLogger("datum_dot.webhook")
CANCEL_WAIT_SECONDS = 15.0
IDLE_POLL_SECONDS = 0.02
PARENT_POLL_SECONDS = 1.0
RESPAWN_QUICK_SECONDS = 30.0


@dataclass(frozen=True)
class WorkerOptions:
    """What every worker is told.

    Attributes:
        home: `$DATUM_HOME`.
        warm: Run dbt in forked copies of the worker (which has imported dbt), not a new
            `dbt` process per run.
        poll: Seconds between looks at the queue while idle.
    """

    home: Path
    warm: bool = False
    poll: float = IDLE_POLL_SECONDS


class WorkerPool:
    """The worker processes of one server.

    Args:
        options: What the workers are told.
        workers: How many.
    """

    def __init__(self, options: WorkerOptions, *, workers: int) -> None:
        self.options = options
        self.count = workers
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: list[Any] = []
        self._ready: list[Event] = []
        self._started: list[float] = []
        self._delay: list[float] = []
        self._not_before: list[float] = []
        self._stopping = False

    def start(self) -> None:
        """Start the workers (each imports dbt before it takes a job)."""
        for number in range(self.count):
            self._spawn(number)

    def is_warm(self) -> bool:
        """Whether every worker has imported dbt and is taking jobs."""
        return bool(self._ready) and all(ready.is_set() for ready in self._ready)

    def pids(self) -> list[int]:
        """The worker processes' ids."""
        return [proc.pid for proc in self._procs]

    def respawn_dead(self) -> list[int]:
        """Start a new worker in place of any that died while the server runs.

        Returns:
            The pids of the workers that had died.
        """
        dead: list[int] = []
        if self._stopping:
            return dead
        now = time.monotonic()
        for number, proc in enumerate(self._procs):
            if proc.is_alive() or now < self._not_before[number]:
                continue
            dead.append(proc.pid)
            proc.join(timeout=0)
            # A worker that dies at once again and again waits longer each time (up to a minute).
            quick = now - self._started[number] < RESPAWN_QUICK_SECONDS
            self._delay[number] = min(self._delay[number] * 2, 60.0) if quick else 1.0
            self._not_before[number] = now + self._delay[number]
            self._spawn(number)
        return dead

    def stop_claiming(self) -> None:
        """Workers take no new job; running ones go on."""
        self._stopping = True
        for proc in self._procs:
            _signal(proc.pid, signal.SIGTERM)

    def cancel_running(self) -> None:
        """Cancel every running job now, as Ctrl-C would."""
        for proc in self._procs:
            if proc.is_alive():
                _signal(proc.pid, signal.SIGUSR1)

    def stop(self, grace: float) -> list[int]:
        """Stop: let running jobs finish within `grace` seconds, then cancel those left.

        Returns:
            The pids of the workers whose job was cancelled.
        """
        self.stop_claiming()
        deadline = time.monotonic() + grace
        for proc in self._procs:
            proc.join(timeout=max(deadline - time.monotonic(), 0.0))
        cancelled = [proc.pid for proc in self._procs if proc.is_alive()]
        if cancelled:
            log.warning("grace period over: cancelling the runs of workers %s", cancelled)
            self.cancel_running()
            for proc in self._procs:
                proc.join(timeout=CANCEL_WAIT_SECONDS)
        for proc in self._procs:
            if proc.is_alive():
                log.error("worker %s did not stop; killing it", proc.pid)
                proc.kill()
                proc.join(timeout=5)
        return cancelled

    def _spawn(self, number: int) -> None:
        ready = self._ctx.Event()
        proc = self._ctx.Process(
            target=worker_main,
            args=(self.options, ready),
            name=f"dot-webhook-worker-{number + 1}",
        )
        proc.start()
        if number < len(self._procs):
            self._procs[number], self._ready[number] = proc, ready
            self._started[number] = time.monotonic()
        else:
            self._procs.append(proc)
            self._ready.append(ready)
            self._started.append(time.monotonic())
            self._delay.append(0.5)
            self._not_before.append(0.0)


def worker_main(options: WorkerOptions, ready: Event) -> None:
    """A worker process: warm up, then run jobs until told to stop (see the module docstring)."""
    stopping = threading.Event()
    _quiet_worker()
    _install_signals(stopping)
    threading.Thread(
        target=_watch_parent, args=(os.getppid(), stopping), name="parent-watch", daemon=True
    ).start()
    store = RunStore(options.home)
    queue = open_queue(options.home)
    runner = JobRunner(home=options.home, store=store, warm=options.warm)
    try:
        runner.warm_up()
        ready.set()
        while not stopping.is_set():
            if not queue.has_claimable():
                stopping.wait(options.poll)
                continue
            job = queue.claim()
            if job is None:
                continue
            if job.retry_of is not None:
                # Its first attempt's server stopped renewing the lease: show that run ABORTED
                # (the history's lease rule) before this one begins.
                store.mark_aborted_stale()
                log.info("run %s retries run %s (attempt %d)", job.run_id, job.retry_of,
                         job.attempt)  # fmt: skip
            started = time.monotonic()
            log.info(
                "run %s started: %s %s", job.run_id, " ".join(job.request.command), job.request.spec
            )
            try:
                status: str | None = runner(job)
            except KeyboardInterrupt:
                status = None
                stopping.set()
            status = status or history_status(store, job.run_id)
            if status is None:
                queue.release(job.run_id)
                log.info("run %s did not start; it stays queued", job.run_id)
                continue
            queue.finish(job.run_id, status)
            log.info("run %s finished %s in %.1fs", job.run_id, status, time.monotonic() - started)
    except KeyboardInterrupt:
        log.info("worker %s cancelled between jobs", os.getpid())
    except DotError as e:
        log.error("worker %s stopped: %s", os.getpid(), e.message)
        sys.exit(1)
    except Exception:
        log.exception("worker %s failed; this is a bug", os.getpid())
        sys.exit(1)


def _install_signals(stopping: threading.Event) -> None:
    def stop(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stopping.set()

    def cancel(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stopping.set()
        raise KeyboardInterrupt

    def ignore(signum: int, frame: FrameType | None) -> None:
        # A handler, not SIG_IGN: an ignored signal would stay ignored in the dbt processes
        # this worker starts, and SIGINT is how a run's dbt is asked to stop.
        del signum, frame

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGUSR1, cancel)
    signal.signal(signal.SIGINT, ignore)


def _watch_parent(parent: int, stopping: threading.Event) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    stopping.set()
    _signal(os.getpid(), signal.SIGUSR1)  # the server is gone: cancel the run, do not orphan it


def _quiet_worker() -> None:
    """Log to the server's stderr; silence what runtimes echo (each run's output is in its log)."""
    stream = os.fdopen(os.dup(2), "w", buffering=1)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S")
    )
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    sink = Path(os.devnull).open("w")  # noqa: SIM115 - for the life of the process
    sys.stdout = sys.stderr = sink


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)

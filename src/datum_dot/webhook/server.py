"""`dot webhook serve`: bind, recover the queue, start the workers, serve, and stop gracefully.

Start-up refuses, with exit code 20, to listen anywhere but loopback without a token, a token file
that is empty or unreadable, and a port that is in use (the socket is bound here, before uvicorn
starts, so the error names the port).
Jobs a previous server left claimed are settled first (`JobQueue.recover`).

SIGTERM or Ctrl-C: the listener closes (uvicorn finishes the responses in flight), workers take no
new job, running jobs get `grace` seconds, then are cancelled (their records CANCELLED); the rest
stay queued for the next start. A second signal cancels at once.

While serving, this process's Python stdout and stderr are silenced (nothing should print there;
the workers do the same with the dbt output runtimes echo, which is in each run's log files). The
server's log (uvicorn, `datum_dot.webhook`, the workers') goes to the original stderr, one line
per event. A worker that dies is replaced, and the jobs it held are settled (`_monitor`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import ipaddress
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from datum_dot.errors import BadInputError, DotError, UsageError
from datum_dot.history import RunStore
from datum_dot.home.privatefiles import ensure_datum_home
from datum_dot.home.serverstate import forget_server, record_server
from datum_dot.home.tokens import token_path
from datum_dot.webhook.app import DEFAULT_MAX_BODY, AppContext, create_app
from datum_dot.webhook.auth import TokenSource
from datum_dot.webhook.committer import GroupCommitter
from datum_dot.webhook.execution import history_status
from datum_dot.webhook.intake import Intake
from datum_dot.webhook.jobs import JobState, Recovered
from datum_dot.webhook.queue import DEFAULT_MAX_UNFINISHED, JobQueue
from datum_dot.webhook.queues import Queue, open_queue
from datum_dot.webhook.workers import WorkerOptions, WorkerPool

log = logging.getLogger("datum_dot.webhook")
KEEP_DONE = timedelta(days=7)
MONITOR_SECONDS = 1.0
DB_THREADS = 8
"""Request threads of a server whose queue and history are in PostgreSQL (see `_serve_on`)."""
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {"format": "%(asctime)s %(levelname)s %(message)s", "datefmt": "%Y-%m-%dT%H:%M:%S"}
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "line",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        name: {"handlers": ["stderr"], "level": "INFO", "propagate": False}
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "datum_dot.webhook")
    },
}


@dataclass(frozen=True)
class ServerOptions:
    """How to serve.

    Attributes:
        host: The address to listen on.
        port: The port (0: any free one).
        workers: Jobs that may run at once.
        grace: Seconds running jobs get to finish at shutdown.
        max_body: Bytes a request body may have.
        max_queue: Queued plus running jobs at most.
        warm: Run dbt in children of a fork server that imported dbt once.
        access_log: Log every request.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 2
    grace: float = 30.0
    max_body: int = DEFAULT_MAX_BODY
    max_queue: int = DEFAULT_MAX_UNFINISHED
    warm: bool = False
    access_log: bool = False


@dataclass(frozen=True)
class Started:
    """What a started server tells its caller (to print).

    Attributes:
        url: `http://host:port`.
        token: Whether requests must authenticate (a token file exists).
        recovered: What was found of a previous server's jobs.
        queued: Jobs waiting when it started.
        queue: Where the queue is (its file, or the database).
    """

    url: str
    token: bool
    recovered: Recovered
    queued: int
    queue: str = ""


@dataclass(frozen=True)
class Stopped:
    """How the server stopped.

    Attributes:
        cancelled: Runs cancelled when the grace period ran out.
        queued: Jobs left in the queue for the next start.
    """

    cancelled: tuple[str, ...]
    queued: int


def serve(options: ServerOptions, *, home: Path, announce: Callable[[Started], None]) -> Stopped:
    """Serve until SIGTERM or Ctrl-C.

    Args:
        options: Where and how.
        home: `$DATUM_HOME`.
        announce: Called once the socket is bound, before requests are served.

    Returns:
        How it stopped.

    Raises:
        UsageError: A non-loopback address without a token.
        TokenUnavailableError: The token file is empty or unreadable.
        BadInputError: The address cannot be listened on (the port is in use, ...).
        ConfigError: config.yaml is invalid.
        DatumHomeError: `home` is not a writable folder (the queue and the history live there).
    """
    # Checked before listening: with an unwritable home every request would be accepted and lost.
    ensure_datum_home(home)
    # Decided once, here: only a loopback server without a token file runs open. An empty or
    # unreadable token file stops the start (TokenUnavailableError) instead of opening it.
    tokens = TokenSource(home, allow_open=is_loopback(options.host))
    if not tokens.is_open and not token_path(home).exists():
        raise UsageError(
            f"refusing to listen on {options.host} without a webhook token: anyone who can reach "
            "it could run dbt",
            "create a token with `dot webhook token`, or listen on 127.0.0.1 (the default)",
        )
    tokens.current()
    intake = Intake(home)
    intake.config()  # an invalid config.yaml stops the start, not the first request
    sock = bind(options.host, options.port)
    store = RunStore(home)
    queue = open_queue(home, max_unfinished=options.max_queue)
    recovered = queue.recover(lambda run_id: history_status(store, run_id))
    queue.prune(older_than=KEEP_DONE)
    pool = WorkerPool(WorkerOptions(home=home, warm=options.warm), workers=options.workers)
    # Group commit saves SQLite's fsyncs; PostgreSQL commits concurrent requests side by side.
    committer = GroupCommitter(queue) if isinstance(queue, JobQueue) else None
    ctx = AppContext(
        home=home,
        queue=queue,
        intake=intake,
        store=store,
        tokens=tokens,
        max_body=options.max_body,
        # "warm" means --warm's fork servers are ready; every pool's workers get ready, warm or not.
        warm=pool.is_warm if options.warm else (lambda: False),
        committer=committer,
    )
    config = uvicorn.Config(
        create_app(ctx),
        log_config=LOG_CONFIG,
        access_log=options.access_log,
        lifespan="off",
        timeout_graceful_shutdown=3,
        server_header=False,
    )
    server = _Server(config)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    # Before the announcement: whoever read it finds the server in `schedule status`.
    record_server(home, url, workers=options.workers)
    try:
        queued = queue.counts()[JobState.QUEUED]
        announce(Started(url, not tokens.is_open, recovered, queued, queue.where))
        # What start-up made (FastAPI, pydantic schemas, routes) lives as long as the server: out
        # of the collector's way, a full collection under load takes milliseconds, not tens.
        gc.collect()
        gc.freeze()
        return _serve_until_stopped(server, sock, pool, committer, ctx, options)
    finally:
        forget_server(home)


def _serve_until_stopped(
    server: _Server,
    sock: socket.socket,
    pool: WorkerPool,
    committer: GroupCommitter | None,
    ctx: AppContext,
    options: ServerOptions,
) -> Stopped:
    """Serve on the bound socket until stopped, then let running jobs finish (or cancel them)."""
    queue, store = ctx.queue, ctx.store
    with _signals(server, pool, ctx), _quiet_stdio():
        if committer is not None:
            committer.start()
        pool.start()
        monitor = threading.Thread(
            target=_monitor, args=(pool, queue, store, ctx), name="dot-webhook-monitor", daemon=True
        )
        monitor.start()
        asyncio.run(_serve_on(server, sock, threads=None if _in_sqlite(queue) else DB_THREADS))
        ctx.stopping.set()
        if committer is not None:
            committer.stop()
        log.info("stopped accepting requests; waiting up to %gs for running jobs", options.grace)
        running = queue.claimed_by(pool.pids())
        stopped = pool.stop(options.grace)
        cancelled = [run_id for run_id in running if history_status(store, run_id) == "CANCELLED"]
        if stopped:
            queue.recover(lambda run_id: history_status(store, run_id))
    sock.close()
    return Stopped(tuple(cancelled), queue.counts()[JobState.QUEUED])


def _in_sqlite(queue: Queue) -> bool:
    return isinstance(queue, JobQueue)


async def _serve_on(server: _Server, sock: socket.socket, *, threads: int | None) -> None:
    """Serve; with `threads`, at most that many requests run in threads at once.

    Each thread that talks to a PostgreSQL queue and history keeps a connection of its own:
    left at the default (40 threads), two servers under load held 70 of the database's
    default 100 connections. A few threads do as well, since each statement takes about a
    millisecond.
    """
    if threads is not None:
        # lazy: anyio is Starlette's; the limiter exists only inside the running loop
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
    await server.serve(sockets=[sock])


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address (or `localhost`)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host:port`.

    Raises:
        BadInputError: The port is in use, the address is not this machine's, or not allowed.
    """
    try:
        infos = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as e:
        raise BadInputError(
            f"cannot listen on '{host}': {e.strerror}", "pass an address such as 127.0.0.1"
        ) from e
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise BadInputError(
                f"port {port} on {host} is already in use",
                f"stop what listens there (ss -ltnp 'sport = :{port}') or pass another --port",
            ) from e
        raise BadInputError(
            f"cannot listen on {host}:{port}: {e.strerror}",
            "pass a port above 1023 and an address of this machine",
        ) from e
    sock.set_inheritable(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server with our signal handling (uvicorn's re-raises the signal at the end)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.contextmanager
def _signals(server: uvicorn.Server, pool: WorkerPool, ctx: AppContext) -> Iterator[None]:
    def stop(signum: int, frame: FrameType | None) -> None:
        del frame
        if server.should_exit:
            log.warning("second %s: cancelling running jobs now", signal.Signals(signum).name)
            pool.cancel_running()
            server.force_exit = True
            return
        log.info("%s: shutting down", signal.Signals(signum).name)
        server.should_exit = True
        ctx.stopping.set()
        pool.stop_claiming()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _quiet_stdio() -> Iterator[None]:
    saved = sys.stdout, sys.stderr
    with Path("/dev/null").open("w") as sink:
        sys.stdout = sys.stderr = sink
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved


def _monitor(pool: WorkerPool, queue: Queue, store: RunStore, ctx: AppContext) -> None:
    """Renew the leases of the jobs the workers hold (a queue in PostgreSQL), replace workers
    that die while the server runs, and settle the jobs they held."""
    while not ctx.stopping.wait(MONITOR_SECONDS):
        try:
            queue.renew(pool.pids())
        except DotError as e:  # the database is away: the lease runs on until it is back
            log.warning("cannot renew the leases of running jobs: %s", e.message)
        dead = pool.respawn_dead()
        if dead:
            log.error("worker %s ended unexpectedly; started another", ", ".join(map(str, dead)))
            queue.recover(lambda run_id: history_status(store, run_id))

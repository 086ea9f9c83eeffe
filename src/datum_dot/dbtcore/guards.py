"""What every use of dbt in this process holds: the one lock, its environment, its connections.

dbt keeps global state (adapters, flags, the invocation context, the event manager), so one use
at a time per process: `INVOKE_LOCK` lives here and nowhere else. The other `dbtcore` modules
wrap each use of dbt in these; nothing outside the package needs them.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

# dbt's in-process runner keeps global adapter state: one invocation at a time per process.
INVOKE_LOCK = threading.Lock()


@contextmanager
def scoped_environ(env: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block and put the old values back after.

    dbt reads some settings only from the environment (DBT_TARGET_PATH for `retry`): callers
    hold `INVOKE_LOCK` around this.
    """
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _ReleasedConnections:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        # dbt-duckdb keeps the database file open (and locked against other processes) until the
        # adapter's connections are released.
        from dbt.adapters.factory import cleanup_connections, reset_adapters

        cleanup_connections()  # type: ignore[no-untyped-call]
        reset_adapters()  # type: ignore[no-untyped-call]
        _close_duckdb_file()


def _close_duckdb_file() -> None:
    # dbt-duckdb's `keep_open` defaults to true, so its database outlives the invocation, and with
    # it the file lock that keeps every other process (another `dot`, a query) out. An in-memory or
    # MotherDuck database stays open: closing would lose or reconnect it for nothing.
    module = sys.modules.get("dbt.adapters.duckdb.connections")
    manager = getattr(module, "DuckDBConnectionManager", None)
    env = getattr(manager, "_ENV", None)
    if manager is None or env is None:
        return
    path = str(getattr(env.creds, "path", ":memory:"))
    if path.startswith((":memory:", "md:", "motherduck:")):
        return
    env.close()
    manager.close_all_connections()


def released_connections() -> _ReleasedConnections:
    """A block after which dbt's adapters are reset and their connections released."""
    return _ReleasedConnections()


@contextmanager
def silenced_events() -> Iterator[None]:
    """Give dbt's events a manager that prints nothing for the block, then the previous one."""
    # Outside an invocation nobody set dbt's loggers up.
    from dbt_common.events import event_manager_client
    from dbt_common.events.event_manager import EventManager

    previous = event_manager_client.get_event_manager()
    event_manager_client.ctx_set_event_manager(EventManager())
    try:
        yield
    finally:
        event_manager_client.ctx_set_event_manager(previous)

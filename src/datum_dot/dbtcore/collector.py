"""dbt's import and Python's cyclic garbage collector.

Importing dbt-core and its adapter creates a few hundred thousand objects that live as long as
the process: classes, functions, schemas. While the import runs, the collector keeps traversing
them (it ran a few hundred times during `import dbt.cli.main` here, and took 0.3-0.5 s of it),
and every full collection during the build that follows traverses them again. A process that
imports dbt to run it gains by importing with the collector paused and then freezing what the
import made (`gc.freeze`: those objects move to a generation the collector never scans). Garbage
the import left in cycles is kept rather than freed: a few hundred kilobytes, once.

Only a process that asks for it is changed (`own_collector`): the command line, and the
processes it becomes (the warm runner and its children). A library caller's process (Dagster,
Airflow, a script calling the Python API) keeps its collector as it set it. A forked child that
runs one command freezes what it inherited for the same reason (`runtimes.forked`).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_owned = False
_settled = False


def own_collector() -> None:
    """Let dbt's first import in this process run with the collector paused, then freeze it."""
    global _owned
    _owned = True


def owns_collector() -> bool:
    """Whether this process asked for `own_collector`."""
    return _owned


@contextmanager
def importing_dbt() -> Iterator[None]:
    """Wrap an import of dbt: the first one in a process that owns its collector runs paused.

    Whatever happens inside (an import error, Ctrl-C), the collector is enabled again after it
    exactly as it was before.
    """
    global _settled
    if not _owned or _settled:
        yield
        return
    _settled = True
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()

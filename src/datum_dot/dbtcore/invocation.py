"""One in-process dbt invocation (`invoke`) and its outcome in our own picklable types."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from datum_dot.dbtcore.collector import importing_dbt
from datum_dot.dbtcore.events import event_callback, level_callback
from datum_dot.dbtcore.guards import INVOKE_LOCK, released_connections, scoped_environ
from datum_dot.outcomes import ErrorClass, NodeOutcome


@dataclass(frozen=True)
class Invocation:
    """The outcome of one in-process dbt invocation, in plain (picklable) values.

    Attributes:
        success: dbt's own verdict.
        exit_code: The exit code dbt's CLI would give: 0 ok, 1 handled failure, 2 unhandled.
        statuses: The status of each node result (`success`, `error`, `fail`, `warn`, `skipped`).
        interrupted: The invocation was stopped by Ctrl-C.
        nodes: Each node result.
        error: The unhandled exception's message (`Type: message`), if any.
        error_type: Its qualified class name.
        error_class: What kind of failure that exception is, from its class.
    """

    success: bool
    exit_code: int
    statuses: tuple[str, ...] = ()
    interrupted: bool = False
    nodes: tuple[NodeOutcome, ...] = ()
    error: str | None = None
    error_type: str | None = None
    error_class: ErrorClass | None = None


def invoke(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    manifest: object | None = None,
    on_event: Callable[[str, Mapping[str, Any]], None] | None = None,
    on_level: Callable[[str], None] | None = None,
) -> Invocation:
    """Run dbt in this process with `dbtRunner`, one invocation at a time.

    Args:
        args: dbt's argv without the leading `dbt`.
        env: Environment variables set for the duration of the invocation.
        manifest: A manifest returned by an earlier `parse`, to skip parsing again.
        on_event: Called with each dbt event's name and data (progress, classification).
        on_level: Called with each dbt event's level ("debug", "info", "warn", "error"), right
            after dbt's logger wrote the event's line, on the same thread.

    Returns:
        The outcome, converted to our own type.
    """
    with importing_dbt():
        from dbt.cli.main import dbtRunner

    callbacks = [event_callback(on_event)] if on_event is not None else []
    if on_level is not None:
        callbacks.append(level_callback(on_level))
    with INVOKE_LOCK, scoped_environ(env or {}), released_connections():
        result = dbtRunner(manifest=manifest, callbacks=callbacks).invoke(list(args))  # type: ignore[arg-type]
    exc = result.exception
    interrupted = isinstance(exc, KeyboardInterrupt)
    nodes = _nodes(result.result)
    error = error_type = None
    if exc is not None and not interrupted:
        error = f"{type(exc).__name__}: {exc}"
        error_type = f"{type(exc).__module__}.{type(exc).__qualname__}"
    return Invocation(
        success=bool(result.success),
        exit_code=0 if result.success else 2 if exc is not None else 1,
        statuses=tuple(n.status for n in nodes),
        interrupted=interrupted,
        nodes=nodes,
        error=error,
        error_type=error_type,
        error_class=exception_class(exc) if error is not None else None,
    )


# dbt exception families by class name (checked along the MRO, most specific first), so that no
# dbt module has to import for the check and renamed modules between versions do not matter.
_EXCEPTION_CLASSES: tuple[tuple[str, ErrorClass], ...] = (
    ("FailedToConnectError", ErrorClass.CONNECTION),
    ("DbtProfileError", ErrorClass.CONNECTION),
    ("UninstalledPackagesFoundError", ErrorClass.DEPENDENCY),
    ("DependencyError", ErrorClass.DEPENDENCY),
    ("CompilationError", ErrorClass.COMPILATION),
    ("ParsingError", ErrorClass.COMPILATION),
    ("DbtProjectError", ErrorClass.COMPILATION),
    ("DbtDatabaseError", ErrorClass.DATABASE),
    ("ConnectionError", ErrorClass.CONNECTION),
    ("TimeoutError", ErrorClass.CONNECTION),
    ("OperationalError", ErrorClass.CONNECTION),
    ("InterfaceError", ErrorClass.CONNECTION),
)
# DuckDB raises its own exceptions past dbt when the database file cannot be opened (another
# process holds its lock): an I/O failure that goes away when the other process lets go.
_TRANSIENT_FOREIGN = frozenset({"IOException", "ConnectionException"})


def exception_class(exc: BaseException | None) -> ErrorClass | None:
    """What kind of failure an exception dbt handed back is, judged by its class."""
    if exc is None:
        return None
    names = [cls.__name__ for cls in type(exc).__mro__]
    for name, kind in _EXCEPTION_CLASSES:
        if name in names:
            return kind
    if names[0] in _TRANSIENT_FOREIGN:
        return ErrorClass.CONNECTION
    return ErrorClass.INTERNAL


def _nodes(result: object) -> tuple[NodeOutcome, ...]:
    results = getattr(result, "results", None)
    if not isinstance(results, list):
        return ()
    nodes: list[NodeOutcome] = []
    for item in results:
        node = getattr(item, "node", None)
        message = getattr(item, "message", None)
        failures = getattr(item, "failures", None)
        nodes.append(
            NodeOutcome(
                unique_id=str(getattr(node, "unique_id", "")),
                status=str(getattr(item, "status", "")),
                message=message if isinstance(message, str) else None,
                failures=failures if isinstance(failures, int) else None,
            )
        )
    return tuple(nodes)

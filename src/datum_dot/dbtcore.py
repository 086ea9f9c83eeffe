"""The one module that imports dbt-core.

Everything dbt returns is converted here into our own frozen types, so that differences between
dbt versions stay in this file. dbt is imported lazily: `dot --help` must not pay for it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from typing import Any

from datum_dot.runtimes.base import NodeTarget

# dbt's in-process runner keeps global adapter state: one invocation at a time per process.
_INVOKE_LOCK = threading.Lock()

DBT_COMMANDS: dict[str, tuple[str, ...]] = {
    "build": (),
    "run": (),
    "test": (),
    "seed": (),
    "snapshot": (),
    "compile": (),
    "parse": (),
    "ls": (),
    "list": (),
    "show": (),
    "docs": ("generate", "serve"),
    "source": ("freshness", "snapshot-freshness"),
    "run-operation": (),
    "deps": (),
    "clone": (),
    "retry": (),
    "debug": (),
}
"""dbt commands and, for groups, their sub-verbs. `run-operation` takes a macro name instead.

`dbt clean` and `dbt init` are left out: `dot clean` and `dot init` are the tool's own commands.
"""


@dataclass(frozen=True)
class Invocation:
    """The outcome of one in-process dbt invocation.

    Attributes:
        success: dbt's own verdict.
        exception: The exception dbt handed back (unhandled errors), if any.
        statuses: The status of each node result (`success`, `error`, `fail`, `warn`, `skipped`).
        interrupted: The invocation was stopped by Ctrl-C.
    """

    success: bool
    exception: BaseException | None
    statuses: tuple[str, ...] = ()
    interrupted: bool = False


def versions() -> dict[str, str]:
    """Return the installed versions of dbt-core and every dbt adapter, without importing dbt."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] or ""
        if name.lower() == "dbt-core" or (name.lower().startswith("dbt-") and _is_adapter(dist)):
            found[name.lower()] = dist.version
    return dict(sorted(found.items(), key=lambda item: (item[0] != "dbt-core", item[0])))


def _is_adapter(dist: metadata.Distribution) -> bool:
    files = dist.files or []
    return any(str(f).startswith("dbt/adapters/") and str(f).endswith("__init__.py") for f in files)


@cache
def command_options(command: tuple[str, ...]) -> frozenset[str]:
    """Return every option string (`--threads`, `-t`, `--no-partial-parse`) a dbt command accepts.

    Derived from dbt's own click command definitions, so it follows the installed dbt version.
    """
    import click
    from dbt.cli.main import cli

    node: click.Command = cli
    for word in command:
        if not isinstance(node, click.Group) or word not in node.commands:
            break
        node = node.commands[word]
    names: set[str] = set()
    for param in node.params:
        if isinstance(param, click.Option):
            names.update(param.opts)
            names.update(param.secondary_opts)
    return frozenset(names)


@cache
def all_option_names() -> frozenset[str]:
    """Every option string accepted by at least one dbt command."""
    names: set[str] = set()
    for command, subs in DBT_COMMANDS.items():
        for sub in subs or ("",):
            names |= command_options((command, sub) if sub else (command,))
    return frozenset(names)


def invoke(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    manifest: object | None = None,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
) -> Invocation:
    """Run dbt in this process with `dbtRunner`, one invocation at a time.

    Args:
        args: dbt's argv without the leading `dbt`.
        env: Environment variables set for the duration of the invocation.
        manifest: A manifest returned by an earlier `parse`, to skip parsing again.
        on_event: Called with each dbt event's name and data (progress, classification).

    Returns:
        The outcome, converted to our own type.
    """
    from dbt.cli.main import dbtRunner

    callbacks = [_callback(on_event)] if on_event is not None else []
    with _INVOKE_LOCK, _environment(env or {}), _released_connections():
        result = dbtRunner(manifest=manifest, callbacks=callbacks).invoke(list(args))  # type: ignore[arg-type]
    exc = result.exception
    interrupted = isinstance(exc, KeyboardInterrupt)
    return Invocation(
        success=bool(result.success),
        exception=exc,
        statuses=_statuses(result.result),
        interrupted=interrupted,
    )


def parse_targets(
    args: Sequence[str], *, env: Mapping[str, str] | None = None
) -> tuple[object, list[NodeTarget]]:
    """Parse a project in process and list where each materialized node would be written.

    Args:
        args: Global and project arguments for `dbt parse` (project, profiles, target, vars, paths).
        env: Environment variables set for the duration of the parse.

    Returns:
        The manifest (to hand to the run that follows) and the node targets; ephemeral models,
        tests and disabled nodes are left out.

    Raises:
        DbtParseFailed: dbt could not parse the project.
    """
    from dbt.cli.main import dbtRunner

    with _INVOKE_LOCK, _environment(env or {}), _released_connections():
        result = dbtRunner().invoke(["parse", *args])
    if not result.success or result.result is None:
        raise DbtParseFailed(result.exception)
    manifest: Any = result.result
    targets: list[NodeTarget] = []
    for node in manifest.nodes.values():
        resource_type = str(node.resource_type)
        materialized = getattr(node.config, "materialized", None)
        if resource_type not in {"model", "seed", "snapshot"} or materialized == "ephemeral":
            continue
        if not getattr(node.config, "enabled", True):
            continue
        targets.append(
            NodeTarget(
                unique_id=node.unique_id,
                resource_type=resource_type,
                database=str(node.database or ""),
                schema=str(node.schema or ""),
                path=str(node.original_file_path),
                database_overridden=getattr(node.config, "database", None) is not None,
            )
        )
    return manifest, targets


class DbtParseFailed(Exception):
    """dbt parse failed; `cause` holds dbt's exception, if it gave one."""

    def __init__(self, cause: BaseException | None) -> None:
        super().__init__(str(cause) if cause else "dbt parse failed")
        self.cause = cause


def _callback(on_event: Callable[[str, dict[str, Any]], None]) -> Callable[[Any], None]:
    def callback(event: Any) -> None:
        try:
            from google.protobuf.json_format import (  # type: ignore[import-untyped]
                MessageToDict,
            )

            data = MessageToDict(event.data, preserving_proto_field_name=True)
        except Exception:  # noqa: BLE001 - a progress callback must never break a dbt run
            data = {}
        on_event(event.info.name, data)

    return callback


def _statuses(result: object) -> tuple[str, ...]:
    results = getattr(result, "results", None)
    if not isinstance(results, list):
        return ()
    return tuple(str(getattr(r, "status", "")) for r in results)


@contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    # dbt reads some settings only from the environment (DBT_TARGET_PATH for `retry`); set them
    # while holding the invocation lock and put the old values back afterwards.
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


def _released_connections() -> _ReleasedConnections:
    return _ReleasedConnections()

"""The one module that imports dbt-core.

Everything dbt returns is converted here into our own frozen types, so that differences between
dbt versions stay in this file. dbt is imported lazily: `dot --help` must not pay for it.

About 570 lines, over the house norm: an import contract keeps every use of dbt here (the
invocation, the option lists, the adapter probe, the schema drop, the fork server's warm-up),
and each part is a few small functions.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from datum_dot import installed
from datum_dot.outcomes import ErrorClass, NodeOutcome, NodeTarget

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


def versions() -> dict[str, str]:
    """Return the installed versions of dbt-core and every dbt adapter, without importing dbt."""
    return installed.versions()


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


@cache
def option_arities(command: tuple[str, ...]) -> dict[str, str]:
    """How many words each option of a dbt command takes, from dbt's own click definitions.

    Returns:
        Each option string mapped to `flag` (no value), `value` (one word), `values` (dbt's
        MultiOption: every word up to the next option, as `--select a b`) or `rest` (every
        word that follows).
    """
    import click
    from dbt.cli.main import cli

    node: click.Command = cli
    for word in command:
        if not isinstance(node, click.Group) or word not in node.commands:
            break
        node = node.commands[word]
    arities: dict[str, str] = {}
    for param in node.params:
        if not isinstance(param, click.Option):
            continue
        if param.is_flag or param.count:
            arity = "flag"
        elif type(param).__name__ == "MultiOption":
            arity = "values" if getattr(param, "save_other_options", True) else "rest"
        else:
            arity = "value"
        arities.update(dict.fromkeys(param.opts, arity))
        arities.update(dict.fromkeys(param.secondary_opts, "flag"))
    return arities


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
    from dbt.cli.main import dbtRunner

    callbacks = [_callback(on_event)] if on_event is not None else []
    if on_level is not None:
        callbacks.append(_level_callback(on_level))
    with _INVOKE_LOCK, _environment(env or {}), _released_connections():
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


def preload_modules() -> list[str]:
    """Modules a warm worker imports once, so each invocation it forks starts warm."""
    # distributions named dbt-* include libraries (dbt-adapters, dbt-common) that are no adapter
    candidates = (f"dbt.adapters.{name.removeprefix('dbt-')}" for name in versions())
    adapters = [name for name in candidates if _importable(name)]
    return ["dbt.cli.main", "dbt.adapters.factory", *adapters]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True)
class AdapterProbe:
    """Whether dbt's adapter for a profiles.yml `type:` imports here (for `dot validate`).

    Attributes:
        adapter_type: The `type:` (`duckdb`).
        importable: `dbt.adapters.<type>` imported.
        package: The distribution that normally provides it (`dbt-duckdb`).
        version: Its installed version, or "" when it is not installed.
        error: Why the import failed.
    """

    adapter_type: str
    importable: bool
    package: str
    version: str = ""
    error: str = ""


def probe_adapter(adapter_type: str) -> AdapterProbe:
    """Import the adapter plugin for a profiles.yml `type:` and report its version."""
    import importlib
    import re

    package = f"dbt-{adapter_type}"
    version = versions().get(package, "")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", adapter_type):
        return AdapterProbe(adapter_type, False, package, version, "not an adapter name")
    try:
        importlib.import_module(f"dbt.adapters.{adapter_type}")
    except Exception as e:  # noqa: BLE001 - a broken adapter plugin is a finding, not a crash
        return AdapterProbe(adapter_type, False, package, version, f"{type(e).__name__}: {e}")
    return AdapterProbe(adapter_type, True, package, version)


def parse_targets(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    on_level: Callable[[str], None] | None = None,
) -> tuple[object, list[NodeTarget]]:
    """Parse a project in process and list where each materialized node would be written.

    Args:
        args: Global and project arguments for `dbt parse` (project, profiles, target, vars, paths).
        env: Environment variables set for the duration of the parse.
        on_level: Called with each dbt event's level, as in `invoke`.

    Returns:
        The manifest (to hand to the run that follows) and the node targets; ephemeral models,
        tests and disabled nodes are left out.

    Raises:
        DbtParseFailed: dbt could not parse the project.
        KeyboardInterrupt: The parse was interrupted (Ctrl-C, or a signal that raises it).
    """
    from dbt.cli.main import dbtRunner

    # No manifest.json: the run this parse is for writes it (with the same nodes) when it
    # ends, and writing it twice costs a few tenths of a second. partial_parse.msgpack is still
    # written, for the runs after.
    with _INVOKE_LOCK, _environment(env or {}), _released_connections():
        callbacks = [_level_callback(on_level)] if on_level is not None else []
        result = dbtRunner(callbacks=callbacks).invoke(["parse", *args, "--no-write-json"])
    if isinstance(result.exception, KeyboardInterrupt):
        # dbtRunner catches every exception, the interrupt meant for the caller included: a
        # cancelled parse is a cancellation, not a project that fails to parse.
        raise result.exception
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


def _callback(on_event: Callable[[str, Mapping[str, Any]], None]) -> Callable[[Any], None]:
    def callback(event: Any) -> None:
        on_event(event.info.name, _EventData(event))

    return callback


def _level_callback(on_level: Callable[[str], None]) -> Callable[[Any], None]:
    def callback(event: Any) -> None:
        on_level(str(event.info.level))

    return callback


class _EventData(Mapping[str, Any]):
    """An event's data as a dict, converted from dbt's protobuf message when first read.

    dbt calls back for every event, debug-level ones included (about 900 in a build of the
    example project); converting each (`MessageToDict`) cost about 65 ms of such a run, and the
    progress display reads only the node start and result events. A copy for another process
    (pickling) is a plain dict.
    """

    def __init__(self, event: Any) -> None:
        self._event = event
        self._converted: dict[str, Any] | None = None

    def _dict(self) -> dict[str, Any]:
        if self._converted is None:
            try:
                from google.protobuf.json_format import (  # type: ignore[import-untyped]
                    MessageToDict,
                )

                self._converted = dict(
                    MessageToDict(self._event.data, preserving_proto_field_name=True)
                )
            except Exception:  # noqa: BLE001 - a progress callback must never break a dbt run
                self._converted = {}
        return self._converted

    @property
    def level(self) -> str:
        """dbt's level for the event ("debug", "info", "warn", "error"): its line's severity."""
        return str(self._event.info.level)

    def __getitem__(self, key: str) -> Any:
        return self._dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def __reduce__(self) -> tuple[type[dict[str, Any]], tuple[dict[str, Any]]]:
        return dict, (self._dict(),)

    def __repr__(self) -> str:
        return repr(self._dict())


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


def _released_connections() -> _ReleasedConnections:
    return _ReleasedConnections()


@dataclass(frozen=True)
class SchemaDrop:
    """What dropping an isolated build's schema did.

    Attributes:
        schema: The schema as dbt rendered it from the profile ("" when rendering failed).
        database: The target's database, as dbt rendered it.
        outcome: `dropped`, `absent` (there was nothing to drop), `refused` (the rendered name
            failed the caller's check; nothing was dropped) or `failed`.
        error: Why it was refused or failed.
    """

    schema: str
    database: str | None
    outcome: str
    error: str = ""


def drop_target_schema(
    project_dir: Path,
    profiles_dir: Path,
    *,
    variables: Mapping[str, Any],
    check: Callable[[str], str | None],
) -> SchemaDrop:
    """Drop the schema of a profiles.yml's default target through dbt's adapter.

    The profile and project are loaded the way dbt loads them (Jinja rendered, `env_var()`
    read now), the adapter's own `drop_schema` runs (`drop schema ... cascade` or the
    platform's API), and connections are released afterwards. Only dbt's and the adapter's
    built-in macros are loaded, so the project's packages need not be installed.

    Args:
        project_dir: The dbt project whose `profile:` names the profile.
        profiles_dir: The folder of the profiles.yml to use.
        variables: Vars for rendering dbt_project.yml and profiles.yml.
        check: Given the rendered schema name, a reason to refuse dropping it, or None.

    Returns:
        The outcome; failures are reported in it, never raised.
    """
    from argparse import Namespace

    from dbt.adapters.factory import get_adapter, register_adapter
    from dbt.config.runtime import RuntimeConfig
    from dbt.context.providers import generate_runtime_macro_context
    from dbt.flags import set_from_args
    from dbt.mp_context import get_mp_context
    from dbt.parser.manifest import ManifestLoader
    from dbt_common.context import set_invocation_context

    schema, database = "", None
    args = Namespace(
        project_dir=str(project_dir),
        profiles_dir=str(profiles_dir),
        target=None,
        profile=None,
        threads=None,
        vars=dict(variables),
    )
    with _INVOKE_LOCK, _silenced_events(), _released_connections():
        try:
            set_invocation_context(dict(os.environ))
            set_from_args(args, {})
            config: Any = RuntimeConfig.from_args(args)
            schema = str(config.credentials.schema)
            database = config.credentials.database
            database = None if database is None else str(database)
            refused = check(schema)
            if refused is not None:
                return SchemaDrop(schema, database, "refused", refused)
            register_adapter(config, get_mp_context())
            adapter: Any = get_adapter(config)
            macros = ManifestLoader.load_macros(
                config, adapter.connections.set_query_header, base_macros_only=True
            )
            adapter.set_macro_resolver(macros)
            adapter.set_macro_context_generator(generate_runtime_macro_context)
            with adapter.connection_named("dot-clean"):
                if not adapter.check_schema_exists(database, schema):
                    return SchemaDrop(schema, database, "absent")
                adapter.drop_schema(adapter.Relation.create(database=database, schema=schema))
        # dbt, the adapter and its driver (duckdb.IOException, psycopg2.OperationalError) each
        # raise their own classes: whichever it is, the drop failed and is reported.
        except Exception as e:  # noqa: BLE001
            return SchemaDrop(schema, database, "failed", f"{type(e).__name__}: {e}".strip())
    return SchemaDrop(schema, database, "dropped")


@contextmanager
def _silenced_events() -> Iterator[None]:
    # Outside an invocation nobody set dbt's loggers up: give its events a manager that prints
    # nothing, and put the previous one back.
    from dbt_common.events import event_manager_client
    from dbt_common.events.event_manager import EventManager

    previous = event_manager_client.get_event_manager()
    event_manager_client.ctx_set_event_manager(EventManager())
    try:
        yield
    finally:
        event_manager_client.ctx_set_event_manager(previous)


_WARMUP_PROJECT = "name: dot_warmup\nversion: '1.0'\nconfig-version: 2\nprofile: dot_warmup\n"
_WARMUP_PROFILE = (
    "dot_warmup:\n  target: t\n  outputs:\n    t:\n      type: duckdb\n      path: ':memory:'\n"
)


def warm_parse() -> bool | None:
    """Parse a throwaway one-model project on in-memory DuckDB once, then drop the adapter.

    The fork server (`runtimes.warmup`) and the webhook's warm worker (`runtimes.warmth`) call
    this so the children they fork start with dbt's serializers and schemas already built and no
    adapter state. The parse never uses dbt's static parser (see below).

    Returns:
        Whether the parse succeeded; None when dbt-duckdb is not installed (nothing was done).
    """
    if importlib.util.find_spec("dbt.adapters.duckdb") is None:
        return None
    from dbt.adapters.factory import cleanup_connections, reset_adapters
    from dbt.cli.main import dbtRunner

    with tempfile.TemporaryDirectory(prefix="dot-warmup-") as folder:
        root = Path(folder)
        (root / "dbt_project.yml").write_text(_WARMUP_PROJECT)
        (root / "profiles.yml").write_text(_WARMUP_PROFILE)
        (root / "models").mkdir()
        (root / "models" / "warmup.sql").write_text("select 1 as x\n")
        # never the static parser here: its worker threads would not exist in the forked
        # children, and their first full parse would wait for them forever
        args = ["parse", "--no-static-parser", "--no-partial-parse", "--quiet"]
        args += ["--project-dir", folder, "--profiles-dir", folder]
        with contextlib.redirect_stdout(io.StringIO()):
            result = dbtRunner().invoke(
                [*args, "--target-path", str(root / "target"), "--log-path", str(root / "logs")]
            )
        cleanup_connections()  # type: ignore[no-untyped-call]
        reset_adapters()  # type: ignore[no-untyped-call]
    return bool(result.success)


@dataclass(frozen=True)
class GraphNode:
    """One node of a parsed project, as the missing-parents check sees it.

    Attributes:
        unique_id: dbt's id (`model.shop.orders`).
        resource_type: `model`, `seed`, `snapshot`, `test`, ...
        parents: The unique ids it depends on (models, seeds, snapshots, sources).
        database: Where it is written (empty for tests).
        schema: Where it is written.
        identifier: Its relation's name (the alias).
        materialized: Its materialization (`view`, `table`, `ephemeral`, ...).
    """

    unique_id: str
    resource_type: str
    parents: tuple[str, ...]
    database: str
    schema: str
    identifier: str
    materialized: str


@dataclass(frozen=True)
class SelectedGraph:
    """What a dbt command would select, and the project's nodes (sources left out)."""

    selected: frozenset[str]
    nodes: Mapping[str, GraphNode]


def select_graph(
    parse_args: Sequence[str], ls_args: Sequence[str], *, env: Mapping[str, str] | None = None
) -> SelectedGraph:
    """Parse a project (a partial parse, after the isolation check's) and resolve a selection.

    The selection is dbt's own: `dbt ls` on the parsed manifest, with the run's selection
    options. Nothing is printed. The static parser stays off, because this also runs in the
    webhook's warm worker, which must never start its threads (see `warm_parse`).

    Args:
        parse_args: Project, profile, target, vars and path arguments for `dbt parse`.
        ls_args: The same, with the run's selection options, for `dbt ls`.
        env: Environment variables set for the duration.

    Returns:
        The selected unique ids and every node of the manifest.

    Raises:
        DbtParseFailed: dbt could not parse the project or resolve the selection.
        KeyboardInterrupt: The parse was interrupted.
    """
    import json

    from dbt.cli.main import dbtRunner

    quiet = ["--log-level", "none"]
    with (
        _INVOKE_LOCK,
        _environment({**(env or {}), "DBT_STATIC_PARSER": "false"}),
        _released_connections(),
    ):
        parsed = dbtRunner().invoke(["parse", *parse_args, "--no-write-json", *quiet])
        if isinstance(parsed.exception, KeyboardInterrupt):
            raise parsed.exception
        if not parsed.success or parsed.result is None:
            raise DbtParseFailed(parsed.exception)
        keys = ["--output", "json", "--output-keys", "unique_id"]
        listed = dbtRunner(manifest=parsed.result).invoke(["ls", *ls_args, *keys, *quiet])  # type: ignore[arg-type]
    if isinstance(listed.exception, KeyboardInterrupt):
        raise listed.exception
    if not listed.success or not isinstance(listed.result, list):
        raise DbtParseFailed(listed.exception)
    selected = frozenset(str(json.loads(line)["unique_id"]) for line in listed.result)
    manifest: Any = parsed.result
    nodes = {
        node.unique_id: GraphNode(
            unique_id=node.unique_id,
            resource_type=str(node.resource_type),
            parents=tuple(getattr(getattr(node, "depends_on", None), "nodes", ()) or ()),
            database=str(getattr(node, "database", "") or ""),
            schema=str(getattr(node, "schema", "") or ""),
            identifier=str(getattr(node, "alias", "") or node.name),
            materialized=str(getattr(node.config, "materialized", "") or ""),
        )
        for node in manifest.nodes.values()
    }
    return SelectedGraph(selected=selected, nodes=nodes)


def existing_relations(
    project_dir: Path,
    profiles_dir: Path,
    *,
    target: str | None,
    variables: Mapping[str, Any],
    schemas: Sequence[tuple[str, str]],
) -> frozenset[tuple[str, str, str]] | None:
    """List the relations in some schemas of a profile's target, through dbt's adapter.

    Loaded as `drop_target_schema` loads it (built-in macros only); connections are released
    afterwards, so a DuckDB file is not left locked.

    Args:
        project_dir: The dbt project.
        profiles_dir: The folder of the profiles.yml to use.
        target: The target, or None for the profile's default.
        variables: Vars for rendering dbt_project.yml and profiles.yml.
        schemas: The (database, schema) pairs to look in.

    Returns:
        Each relation as lowercased (database, schema, name); None when the warehouse could
        not be asked (the caller then knows nothing, and must not guess).
    """
    from argparse import Namespace

    from dbt.adapters.factory import get_adapter, register_adapter
    from dbt.config.runtime import RuntimeConfig
    from dbt.context.providers import generate_runtime_macro_context
    from dbt.flags import set_from_args
    from dbt.mp_context import get_mp_context
    from dbt.parser.manifest import ManifestLoader
    from dbt_common.context import set_invocation_context

    args = Namespace(project_dir=str(project_dir), profiles_dir=str(profiles_dir), target=target,
                     profile=None, threads=None, vars=dict(variables))  # fmt: skip
    found: set[tuple[str, str, str]] = set()
    with _INVOKE_LOCK, _silenced_events(), _released_connections():
        try:
            set_invocation_context(dict(os.environ))
            set_from_args(args, {})
            config: Any = RuntimeConfig.from_args(args)
            register_adapter(config, get_mp_context())
            adapter: Any = get_adapter(config)
            macros = ManifestLoader.load_macros(
                config, adapter.connections.set_query_header, base_macros_only=True
            )
            adapter.set_macro_resolver(macros)
            adapter.set_macro_context_generator(generate_runtime_macro_context)
            with adapter.connection_named("dot-parents"):
                for database, schema in schemas:
                    if not adapter.check_schema_exists(database, schema):
                        continue
                    where = adapter.Relation.create(database=database, schema=schema)
                    for relation in adapter.list_relations_without_caching(where):
                        name = (relation.database or database, relation.schema, relation.identifier)
                        found.add(tuple(str(part or "").lower() for part in name))  # type: ignore[arg-type]
        # dbt, the adapter and its driver each raise their own classes: whichever it is, the
        # warehouse could not be asked, which the caller treats as "unknown".
        except Exception:  # noqa: BLE001
            return None
    return frozenset(found)


@dataclass(frozen=True)
class WarehouseIdentity:
    """Which warehouse a profile's target connects to, rendered without connecting.

    Attributes:
        adapter_type: The profile's `type:` (`duckdb`, `postgres`).
        database: The target's database, as dbt rendered it.
        location: Where the warehouse is (dbt's `unique_field`: a DuckDB file, a host name).
        schema: The target's schema.
    """

    adapter_type: str
    database: str
    location: str
    schema: str


@dataclass(frozen=True)
class WarehouseColumn:
    """One column of a relation, from the warehouse's catalog: its name and data type."""

    name: str
    data_type: str


class Warehouse:
    """An open adapter on one profile's target, for read-only questions (`open_warehouse`)."""

    def __init__(self, adapter: Any) -> None:
        self._adapter = adapter

    @property
    def adapter_type(self) -> str:
        """The adapter's type (`duckdb`, `postgres`)."""
        return str(self._adapter.type())

    def quote(self, identifier: str) -> str:
        """An identifier quoted as the adapter quotes it."""
        return str(self._adapter.quote(identifier))

    def relation_name(self, database: str, schema: str, identifier: str) -> str:
        """A relation's fully qualified name, rendered by the adapter's Relation class."""
        relation = self._adapter.Relation.create(
            database=database or None, schema=schema, identifier=identifier
        )
        return str(relation.render())

    def columns(self, database: str, schema: str, identifier: str) -> tuple[WarehouseColumn, ...]:
        """A relation's columns in order, from the warehouse's catalog (`information_schema`);
        empty when it does not exist.

        Raises:
            WarehouseQueryFailed: The warehouse failed the catalog query.
        """

        def literal(text: str) -> str:
            return "'" + text.replace("'", "''") + "'"

        # information_schema rather than the adapter's `get_columns_in_relation` macro: that
        # needs dbt's macros loaded, which costs about 1.5 s of parsing on every diff.
        where = [
            f"lower(table_schema) = lower({literal(schema)})",
            f"lower(table_name) = lower({literal(identifier)})",
        ]
        if database:
            where.append(f"lower(table_catalog) = lower({literal(database)})")
        rows = self.query(
            "select column_name, data_type from information_schema.columns where "  # noqa: S608
            f"{' and '.join(where)} order by ordinal_position"
        )
        return tuple(WarehouseColumn(str(name), str(kind)) for name, kind in rows)

    def query(self, sql: str) -> list[tuple[object, ...]]:
        """Run one query and return its rows as tuples (small results: counts and samples).

        Raises:
            WarehouseQueryFailed: The warehouse refused or failed the query.
        """
        try:
            _, table = self._adapter.execute(sql, fetch=True)
        # dbt's, the adapter's or the driver's class (a missing relation, a lost connection)
        except Exception as e:
            raise WarehouseQueryFailed(f"{type(e).__name__}: {e}".strip()) from e
        return [tuple(row.values()) for row in table.rows]


def warehouse_identity(
    project_dir: Path,
    profiles_dir: Path,
    *,
    target: str | None,
    variables: Mapping[str, Any],
) -> WarehouseIdentity:
    """Render a profile's target (as `drop_target_schema` does) and say which warehouse it is.

    Raises:
        WarehouseUnavailable: The profile or project could not be loaded.
    """
    with _INVOKE_LOCK, _silenced_events():
        try:
            config = _runtime_config(project_dir, profiles_dir, target, variables)
            creds = config.credentials
            return WarehouseIdentity(
                adapter_type=str(creds.type),
                database=str(creds.database or ""),
                location=str(getattr(creds, "unique_field", "") or ""),
                schema=str(creds.schema or ""),
            )
        # dbt raises its own classes for a profile it cannot render: whichever it is, say so
        except Exception as e:
            raise WarehouseUnavailable(f"{type(e).__name__}: {e}".strip()) from e


@contextmanager
def open_warehouse(
    project_dir: Path,
    profiles_dir: Path,
    *,
    target: str | None,
    variables: Mapping[str, Any],
) -> Iterator[Warehouse]:
    """Open dbt's adapter on a profile's target, for read-only queries, and release it after.

    No macros are loaded (the queries are plain SQL, the catalog is `information_schema`);
    connections are released when the block ends, so a DuckDB file is not left locked. One at a
    time per process.

    Raises:
        WarehouseUnavailable: The profile could not be loaded or the warehouse not reached.
        WarehouseQueryFailed: A query inside the block failed (raised by the block's code).
    """
    from dbt.adapters.factory import get_adapter, register_adapter
    from dbt.mp_context import get_mp_context

    with _INVOKE_LOCK, _silenced_events(), _released_connections():
        try:
            config = _runtime_config(project_dir, profiles_dir, target, variables)
            register_adapter(config, get_mp_context())
            adapter: Any = get_adapter(config)
        # dbt's, the adapter's or the driver's class: whichever it is, the warehouse is out of reach
        except Exception as e:
            raise WarehouseUnavailable(f"{type(e).__name__}: {e}".strip()) from e
        with adapter.connection_named("dot-diff"):
            yield Warehouse(adapter)


# The last few configs rendered, by their arguments and the environment they were rendered in:
# a diff asks for each side's identity and then opens one of them (0.15 s a render).
_CONFIGS: dict[tuple[object, ...], Any] = {}
_CONFIGS_KEPT = 4


def _runtime_config(
    project_dir: Path, profiles_dir: Path, target: str | None, variables: Mapping[str, Any]
) -> Any:
    from argparse import Namespace

    from dbt.config.runtime import RuntimeConfig
    from dbt.flags import set_from_args
    from dbt_common.context import set_invocation_context

    args = Namespace(project_dir=str(project_dir), profiles_dir=str(profiles_dir), target=target,
                     profile=None, threads=None, vars=dict(variables))  # fmt: skip
    environ = dict(os.environ)
    set_invocation_context(environ)
    set_from_args(args, {})
    # A profile renders env_var() and files on disk: the key holds the environment, and the
    # files' stamps, so a changed profiles.yml or variable is rendered again.
    key = (str(project_dir), str(profiles_dir), target,
           json.dumps(dict(variables), sort_keys=True, default=str),
           tuple(sorted(environ.items())), _stamps(project_dir, profiles_dir))  # fmt: skip
    if key in _CONFIGS:
        return _CONFIGS[key]
    config = RuntimeConfig.from_args(args)
    if len(_CONFIGS) >= _CONFIGS_KEPT:
        _CONFIGS.pop(next(iter(_CONFIGS)))
    _CONFIGS[key] = config
    return config


def _stamps(project_dir: Path, profiles_dir: Path) -> tuple[tuple[int, int], ...]:
    stamps = []
    for path in (project_dir / "dbt_project.yml", profiles_dir / "profiles.yml"):
        try:
            stat = path.stat()
        except OSError:
            stamps.append((-1, -1))
        else:
            stamps.append((stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)


class WarehouseUnavailable(Exception):
    """dbt could not load a profile or reach its warehouse; the message says why."""


class WarehouseQueryFailed(Exception):
    """The warehouse failed a query `Warehouse.query` ran; the message says why."""

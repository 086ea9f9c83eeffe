"""Schemas of a profile's target through dbt's adapter: the relations in them, and a schema drop.

Both load the adapter with dbt's built-in macros only (so a project's packages need not be
installed) and release its connections afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datum_dot.dbtcore.guards import INVOKE_LOCK, released_connections, silenced_events


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
    with INVOKE_LOCK, silenced_events(), released_connections():
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
    with INVOKE_LOCK, silenced_events(), released_connections():
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

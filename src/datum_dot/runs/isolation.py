"""The isolation safety check: an isolated build must write only under its isolated schema.

A custom `generate_schema_name` that ignores `target.schema`, a `database` override or an
absolute schema would send an isolated build's tables into someone else's schema, possibly
production's. The check runs on the parsed manifest, before anything executes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from datum_dot.errors import IsolationError
from datum_dot.runtimes.base import NodeTarget

_ENV_VAR = re.compile(
    r"""\{\{\s*env_var\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]*)['"]\s*)?\)\s*\}\}"""
)


@dataclass(frozen=True)
class Offender:
    """A node that would be written outside the isolated schema, and why."""

    target: NodeTarget
    reason: str


def expected_schema(schema_after: str, environ: Mapping[str, str]) -> str | None:
    """Render the isolated schema as dbt will see it; None if it holds Jinja we cannot render.

    Only `env_var('NAME')` and `env_var('NAME', 'default')` are rendered, as profiles use them.
    """

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = environ.get(name, default)
        if value is None:
            raise KeyError(name)
        return value

    try:
        rendered = _ENV_VAR.sub(replace, schema_after)
    except KeyError:
        return None
    return None if "{{" in rendered or "{%" in rendered else rendered


def find_offenders(
    targets: Sequence[NodeTarget], *, schema: str | None, short_hash: str
) -> list[Offender]:
    """List the nodes that would be written outside the isolated schema.

    Args:
        targets: Where each materialized node would be written.
        schema: The rendered isolated schema, or None when it could not be rendered (then a
            schema must at least contain the short hash).
        short_hash: The build's short hash.
    """
    offenders: list[Offender] = []
    for node in targets:
        if node.database_overridden:
            offenders.append(Offender(node, f"sets database '{node.database}'"))
        elif (schema is not None and not node.schema.lower().startswith(schema.lower())) or (
            schema is None and short_hash.lower() not in node.schema.lower()
        ):
            offenders.append(Offender(node, f"would be written to {node.database}.{node.schema}"))
    return offenders


def raise_for_offenders(offenders: Sequence[Offender], *, schema: str) -> None:
    """Stop the run when any node would escape the isolated schema.

    Raises:
        IsolationError: Listing each offending node and where it would go.
    """
    if not offenders:
        return
    shown = offenders[:20]
    lines = [f"  {o.target.unique_id} ({o.target.path}) {o.reason}" for o in shown]
    if len(offenders) > len(shown):
        lines.append(f"  ... and {len(offenders) - len(shown)} more")
    raise IsolationError(
        f"{len(offenders)} node(s) of this isolated build would be written outside schema "
        f"'{schema}', so nothing was run:\n" + "\n".join(lines),
        "make generate_schema_name build on target.schema and drop database overrides, "
        "or pass --allow-unisolated if writing there is intended",
    )

"""Which warehouse schemas `dot clean --drop-schemas` drops, and dropping one through dbt.

Only a build's own schemas are dropped: the schema in each `env/<env>/profiles.yml` of the build
(exactly what was built into), and only when it has the shape `isolation.schema_template` gives
for that build's hash, both as written and as dbt renders it. The drop itself goes through dbt's
adapter (`datum_dot.dbtcore.drop_target_schema`) with the build's own profiles.yml, so it uses
the credentials the build used and works for any adapter dbt supports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from datum_dot.builds.survey import Build, Project
from datum_dot.config.environments import EnvironmentsConfig, load_environments
from datum_dot.dbtcore import SchemaDrop, drop_target_schema
from datum_dot.runs.workdir import project_cwd

_TOKEN = re.compile(r"(\{\{.*?\}\}|\{[A-Za-z_]+\})", re.DOTALL)


@dataclass(frozen=True)
class PlannedDrop:
    """One schema to drop.

    Attributes:
        env: The environment folder it was built for.
        schema: The schema as written in the build's profiles.yml.
        database: The database, as written (None when the target names none).
        profiles_dir: The folder of the build's profiles.yml for this environment.
        template: The isolation template the schema was checked against.
    """

    env: str
    schema: str
    database: str | None
    profiles_dir: Path
    template: str


@dataclass(frozen=True)
class SchemaOutcome:
    """What happened to one planned drop."""

    short_hash: str
    planned: PlannedDrop
    drop: SchemaDrop


@dataclass(frozen=True)
class DropSettings:
    """The project's isolation template and environments, read once per clean."""

    environments: EnvironmentsConfig

    @cached_property
    def template(self) -> str:
        """`isolation.schema_template` (project-wide)."""
        return self.environments.resolve(None).isolation.schema_template

    def vars_for(self, env: str) -> dict[str, Any]:
        """The environment's vars (for rendering dbt_project.yml); none for an unknown one."""
        if env not in self.environments.names:
            return {}
        return dict(self.environments.resolve(env).vars)


def load_drop_settings(project: Project) -> DropSettings:
    """Read dot_environments.yml (and the user file) of the project.

    Raises:
        ConfigError: A file is malformed.
    """
    return DropSettings(load_environments(project.path))


def schema_pattern(template: str, *, short_hash: str, env: str) -> re.Pattern[str]:
    """The names `template` gives for one build: `{schema}` and Jinja stand for any text.

    Args:
        template: `isolation.schema_template`, such as `{schema}_{short_hash}`.
        short_hash: The build's folder name.
        env: The environment's folder name.

    Returns:
        A pattern the whole schema name must match.
    """
    values = {"short_hash": re.escape(short_hash), "env": re.escape(env)}
    parts = []
    for piece in _TOKEN.split(template):
        if piece.startswith("{{") or piece == "{schema}":
            parts.append(".+")
        elif piece == "{ref_slug}":
            parts.append("[a-z0-9_]+")
        elif piece.startswith("{") and piece[1:-1] in values:
            parts.append(values[piece[1:-1]])
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts), re.DOTALL)


def plan_drops(build: Build, settings: DropSettings) -> tuple[tuple[PlannedDrop, ...], str | None]:
    """The schemas of a build to drop, or why none of them may be.

    Returns:
        The drops (an environment whose profiles.yml was never written built nothing), and
        a reason to keep the whole build instead, when a schema cannot be read or does not
        have the template's shape.
    """
    template = settings.template
    drops: list[PlannedDrop] = []
    for env in build.envs:
        if env.target is None:
            if (env.path / "profiles.yml").exists():
                return (), f"environment {env.name}: {env.problem}; its schema is unknown"
            continue
        schema = env.target.schema
        if not schema_pattern(template, short_hash=build.short_hash, env=env.name).fullmatch(
            schema
        ):
            return (), (
                f"{env.target.schema_key} '{schema}' (environment {env.name}) does not match the "
                f"isolation template '{template}' for {build.short_hash}: dot will not drop it"
            )
        drops.append(PlannedDrop(env.name, schema, env.target.database, env.path, template))
    return tuple(drops), None


def drop_schema(
    project: Project, build: Build, planned: PlannedDrop, settings: DropSettings
) -> SchemaOutcome:
    """Drop one planned schema through dbt, checking the name dbt renders first.

    The dbt project is the build's own worktree (the source project when the worktree is
    gone); the profiles.yml is the build's, for that environment.
    """
    dbt_project = project.project_in(build.worktree)
    if not (dbt_project / "dbt_project.yml").is_file():
        dbt_project = project.path
    pattern = schema_pattern(planned.template, short_hash=build.short_hash, env=planned.env)

    def check(rendered: str) -> str | None:
        if build.short_hash in rendered and pattern.fullmatch(rendered):
            return None
        return (
            f"dbt renders the schema as '{rendered}', which does not match the isolation "
            f"template '{planned.template}' for {build.short_hash}"
        )

    # from the user's project folder, as the build ran: a relative DuckDB path names its file
    with project_cwd(project.path):
        drop = drop_target_schema(
            dbt_project,
            planned.profiles_dir,
            variables=settings.vars_for(planned.env),
            check=check,
        )
    return SchemaOutcome(build.short_hash, planned, drop)

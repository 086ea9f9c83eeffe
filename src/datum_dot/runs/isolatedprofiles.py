"""The profiles.yml of an isolated build: one profile, one target, the schema renamed.

An isolated build gets its own profiles.yml holding only the chosen profile and target, with the
schema (BigQuery: dataset) renamed by the isolation template. Everything else is copied as the
user wrote it: Jinja such as `{{ env_var('DB_PASSWORD') }}` stays unrendered, so secrets stay
in the environment, and the file is written 0600 in a 0700 folder in case it holds literal ones.
Finding and reading the user's profiles.yml is `profiles`. A profiles.yml that the commit being
built tracks is read from that commit, not from the checkout (ADR 0013): `CommittedProfile`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from datum_dot.config.profiles import (
    CONFIG_KEY,
    PROFILES_FILE,
    load_profiles,
    load_profiles_text,
    select_target,
)
from datum_dot.errors import ConfigError, ProfileError
from datum_dot.home.privatefiles import make_private_dirs, write_private
from datum_dot.vcs import git

DEFAULT_SCHEMA_TEMPLATE = "{schema}_{short_hash}"
SCHEMA_PLACEHOLDERS = ("schema", "short_hash", "env", "ref_slug")
_SLUG_MAX = 40
# Jinja expressions pass through untouched; `{name}` is a placeholder; any other brace is a typo.
_TEMPLATE_TOKEN = re.compile(r"\{\{.*?\}\}|\{([^{}]*)\}|[{}]", re.DOTALL)

SchemaKey = Literal["schema", "dataset"]


class _PlainDumper(yaml.SafeDumper):
    """A safe dumper that writes shared values out again instead of as `&id001` anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    # Jinja keeps its text: `{{ env_var('X') }}` is written in double quotes, not as the
    # single-quoted `'{{ env_var(''X'') }}'` PyYAML would choose (same value, but not greppable).
    if ("{{" in data or "{%" in data) and "'" in data and '"' not in data and "\\" not in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return dumper.represent_str(data)


_PlainDumper.add_representer(str, _represent_str)


@dataclass(frozen=True)
class CommittedProfile:
    """A profiles.yml read from the commit being built rather than from the checkout.

    Attributes:
        repo_root: The repository's top folder.
        commit: The commit's full hash.
        short_hash: Its short hash, for messages.
        repo_path: The file's path from the repository's top (`analytics/profiles.yml`).
    """

    repo_root: Path
    commit: str
    short_hash: str
    repo_path: str

    @property
    def label(self) -> str:
        """`<short hash>:<path>`, what `git show` takes and messages name the file by."""
        return f"{self.short_hash}:{self.repo_path}"

    def read(self) -> dict[str, Any]:
        """The committed profiles.yml, loaded.

        Raises:
            ProfileError: The commit has no such file, or it is malformed.
        """
        text = git.read_file_at(self.repo_root, git.validate_sha(self.commit), self.repo_path)
        if text is None:
            raise ProfileError(
                f"commit {self.short_hash} has no {self.repo_path}",
                f"check it with: git show {self.label}",
            )
        return load_profiles_text(text, source=self.label)


@dataclass(frozen=True)
class ProfileChange:
    """What isolating a profile changes (or, for a dry run, would change).

    Attributes:
        profile: The profile name.
        target: The target name.
        source_path: The user's profiles.yml.
        dest_path: The isolated profiles.yml.
        schema_key: The key that names the schema: `schema`, or `dataset` for BigQuery.
        schema_before: The schema as the user wrote it (may be Jinja).
        schema_after: The isolated schema (Jinja, if any, left for dbt to render).
        database: The target's database (BigQuery: project), or None when it names none.
        schema_template: The isolation template applied.
        short_hash: The build's short commit hash given to the template.
        env: The environment name given to the template.
        ref_slug: The ref slug given to the template.
        committed: Where in the commit the profile was read, or None when it was read from
            `source_path` on disk.
    """

    profile: str
    target: str
    source_path: Path
    dest_path: Path
    schema_key: SchemaKey
    schema_before: str
    schema_after: str
    database: str | None
    schema_template: str = DEFAULT_SCHEMA_TEMPLATE
    short_hash: str = ""
    env: str = ""
    ref_slug: str = ""
    committed: CommittedProfile | None = None

    @property
    def source_label(self) -> str:
        """Where the profile was read: `<short hash>:<path>` from a commit, else the path."""
        return self.committed.label if self.committed is not None else str(self.source_path)


def ref_slug(ref: str) -> str:
    """Turn a git ref into a fragment fit for a schema name.

    Args:
        ref: A git ref as the user wrote it (`feature/Add-Orders`).

    Returns:
        Lowercase ASCII letters, digits and single underscores, no underscore at either end,
        at most 40 characters (`feature_add_orders`); `ref` when nothing usable is left.
    """
    slug = re.sub(r"[^a-z0-9]+", "_", ref.lower()).strip("_")
    return slug[:_SLUG_MAX].rstrip("_") or "ref"


def isolated_schema(schema: str, *, template: str, short_hash: str, env: str, ref_slug: str) -> str:
    """Apply the isolation template to a schema name.

    The template is applied textually, so a Jinja schema keeps working:
    `{{ env_var('DBT_SCHEMA') }}` becomes `{{ env_var('DBT_SCHEMA') }}_abc12345`, and dbt
    renders the variable before the suffix. Jinja in the template itself passes through too.

    Args:
        schema: The target's schema as written in profiles.yml.
        template: `isolation.schema_template`, with placeholders `{schema}`, `{short_hash}`,
            `{env}` and `{ref_slug}` (default `{schema}_{short_hash}`).
        short_hash: The build's short commit hash.
        env: The environment name.
        ref_slug: The ref as made by `ref_slug()`.

    Returns:
        The isolated schema name.

    Raises:
        ConfigError: The template has an unknown placeholder or a stray brace, or it leaves the
            schema unchanged (which would build into the user's own schema).
    """
    values = {"schema": schema, "short_hash": short_hash, "env": env, "ref_slug": ref_slug}

    def substitute(match: re.Match[str]) -> str:
        token = match.group(0)
        if token.startswith("{{"):
            return token
        name = match.group(1)
        if name not in values:
            raise ConfigError(
                f"isolation.schema_template '{template}' has an unknown placeholder {token}",
                hint="use only {schema}, {short_hash}, {env} and {ref_slug}, "
                "for example {schema}_{short_hash}",
            )
        return values[name]

    result = _TEMPLATE_TOKEN.sub(substitute, template)
    if result == schema:
        raise ConfigError(
            f"isolation.schema_template '{template}' gives the schema '{schema}' unchanged, so "
            "an isolated build would write into it",
            hint="include {short_hash} (or {ref_slug}) in the template, e.g. {schema}_{short_hash}",
        )
    return result


def plan_isolated_profile(
    *,
    source: Path,
    profile: str,
    target: str | None,
    dest_dir: Path,
    schema_template: str,
    short_hash: str,
    env: str,
    ref_slug: str,
    committed: CommittedProfile | None = None,
) -> ProfileChange:
    """Work out the isolated profile without writing anything (for `--dry-run`).

    Args:
        source: The user's profiles.yml (or the folder holding it); with `committed`, where it
            is in the checkout.
        profile: The profile name.
        target: The target name, or None for the profile's default.
        dest_dir: The folder the isolated profiles.yml would go to.
        schema_template: `isolation.schema_template`.
        short_hash: The build's short commit hash.
        env: The environment name.
        ref_slug: The ref as made by `ref_slug()`.
        committed: Read the profile from this commit instead of from `source`.

    Returns:
        The change; `write_isolated_profile` makes it.

    Raises:
        ProfileError: profiles.yml is missing or malformed, lacks the profile or target, or the
            target has no schema (or dataset) to isolate.
        ConfigError: The schema template is invalid.
    """
    change, _document = _plan(
        source=source,
        profile=profile,
        target=target,
        dest_dir=dest_dir,
        schema_template=schema_template,
        short_hash=short_hash,
        env=env,
        ref_slug=ref_slug,
        committed=committed,
    )
    return change


def write_isolated_profile(planned: ProfileChange) -> ProfileChange:
    """Write the isolated profiles.yml that `plan_isolated_profile` planned.

    The file holds the top-level `config:` block (if any) and the one profile with the one target
    (its `target:` set to it); only the schema (or dataset) differs from the source. Jinja is
    kept unrendered. The file is written atomically with mode 0600, and its folder and any
    parents it creates get mode 0700. The user's profiles.yml is read again (from the commit,
    when it was planned from one), so the file is what it says now.

    Args:
        planned: The plan's change (`BuildPlan.isolated.profile`).

    Returns:
        The change made: `planned`, unless profiles.yml changed since it was planned.

    Raises:
        ProfileError: profiles.yml is missing or malformed, lacks the profile or target, or the
            target has no schema (or dataset) to isolate.
        ConfigError: The schema template is invalid.
        OSError: The file could not be written.
    """
    change, document = _plan(
        source=planned.source_path,
        profile=planned.profile,
        target=planned.target,
        dest_dir=planned.dest_path.parent,
        schema_template=planned.schema_template,
        short_hash=planned.short_hash,
        env=planned.env,
        ref_slug=planned.ref_slug,
        committed=planned.committed,
    )
    text = yaml.dump(
        document, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True, width=10_000
    )
    _write_private(change.dest_path, text)
    return change


def _plan(
    *,
    source: Path,
    profile: str,
    target: str | None,
    dest_dir: Path,
    schema_template: str,
    short_hash: str,
    env: str,
    ref_slug: str,
    committed: CommittedProfile | None,
) -> tuple[ProfileChange, dict[str, Any]]:
    source_path = source / PROFILES_FILE if source.is_dir() else source
    if committed is not None:
        profiles, shown = committed.read(), committed.label
    else:
        profiles, shown = load_profiles(source_path), str(source_path)
    target_name, settings = select_target(profiles, profile, target, path=shown)
    key = _schema_key(settings)
    before = settings.get(key)
    if before is None or str(before).strip() == "":
        raise ProfileError(
            f"target '{target_name}' of profile '{profile}' in {shown} has no `{key}`, so "
            "dot cannot give the isolated build a schema of its own",
            hint=f"add `{key}: <name>` to the target",
        )
    after = isolated_schema(
        str(before),
        template=schema_template,
        short_hash=short_hash,
        env=env,
        ref_slug=ref_slug,
    )
    isolated = {**settings, key: after}
    document: dict[str, Any] = {}
    if CONFIG_KEY in profiles:
        document[CONFIG_KEY] = profiles[CONFIG_KEY]
    document[profile] = {"target": target_name, "outputs": {target_name: isolated}}
    change = ProfileChange(
        profile=profile,
        target=target_name,
        source_path=source_path,
        dest_path=dest_dir / PROFILES_FILE,
        schema_key=key,
        schema_before=str(before),
        schema_after=after,
        database=_database(settings),
        schema_template=schema_template,
        short_hash=short_hash,
        env=env,
        ref_slug=ref_slug,
        committed=committed,
    )
    return change, document


def _schema_key(settings: Mapping[str, Any]) -> SchemaKey:
    # dbt-bigquery calls it `dataset` and accepts `schema` as an alias; everyone else the reverse.
    if settings.get("type") == "bigquery":
        return "schema" if "schema" in settings and "dataset" not in settings else "dataset"
    return "dataset" if "dataset" in settings and "schema" not in settings else "schema"


def _database(settings: Mapping[str, Any]) -> str | None:
    value = settings.get("database")
    if value is None and settings.get("type") == "bigquery":
        value = settings.get("project")
    return None if value is None else str(value)


def _write_private(dest: Path, text: str) -> None:
    make_private_dirs(dest.parent)
    dest.parent.chmod(0o700)  # an existing folder too: the profile may hold literal secrets
    write_private(dest, text.encode("utf-8"))


@dataclass(frozen=True)
class IsolatedTarget:
    """Where an isolated profiles.yml (one profile, one target) builds, as written in it.

    Attributes:
        profile: The profile name.
        target: The target name.
        adapter_type: The target's `type:`.
        schema_key: `schema`, or `dataset` for BigQuery.
        schema: The isolated schema as written (Jinja, if any, unrendered).
        database: The target's database (BigQuery: project), or None.
    """

    profile: str
    target: str
    adapter_type: str
    schema_key: SchemaKey
    schema: str
    database: str | None


def read_isolated_target(path: Path) -> IsolatedTarget:
    """Read back the profile an isolated build was run with (`write_isolated_profile`'s file).

    Raises:
        ProfileError: The file is missing or malformed, or holds no single profile with a
            target and a schema.
    """
    document = load_profiles(path)
    names = [str(name) for name in document if name != CONFIG_KEY]
    if len(names) != 1:
        raise ProfileError(
            f"{path} should hold exactly one profile, not {len(names)}",
            "it is written by dot for each isolated build: rebuild it, or remove the build",
        )
    target, settings = select_target(document, names[0], None, path=path)
    key = _schema_key(settings)
    schema = settings.get(key)
    if schema is None or str(schema).strip() == "":
        raise ProfileError(
            f"target '{target}' in {path} has no `{key}`",
            "it is written by dot for each isolated build: rebuild it, or remove the build",
        )
    return IsolatedTarget(
        profile=names[0],
        target=target,
        adapter_type=str(settings.get("type", "")),
        schema_key=key,
        schema=str(schema),
        database=_database(settings),
    )

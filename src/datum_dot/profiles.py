"""Find, read and rewrite dbt's profiles.yml, in process and without ever starting dbt.

An isolated build gets its own profiles.yml holding only the chosen profile and target, with the
schema (BigQuery: dataset) renamed by the isolation template. Everything else is copied as the
user wrote it: Jinja such as `{{ env_var('DB_PASSWORD') }}` stays unrendered, so secrets stay
in the environment, and the file is written 0600 in a 0700 folder in case it holds literal ones.

The module is longer than the house norm, mostly docstrings of the plan/write pair that take the
same arguments; the lookup half (`find_profiles_dir`, the dbt_project.yml readers) is the piece
to split out if it grows.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from datum_dot.errors import ConfigError, ProfileError, ProjectNotFoundError

PROFILES_FILE = "profiles.yml"
DEFAULT_SCHEMA_TEMPLATE = "{schema}_{short_hash}"
SCHEMA_PLACEHOLDERS = ("schema", "short_hash", "env", "ref_slug")
_CONFIG_KEY = "config"  # a top-level block of dbt settings in profiles.yml, not a profile
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
        env: The environment name given to the template.
        ref_slug: The ref slug given to the template.
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
    env: str = ""
    ref_slug: str = ""


def find_profiles_dir(
    project_dir: Path, *, flag_dir: Path | None, environ: Mapping[str, str]
) -> Path:
    """Find the folder holding profiles.yml the way dbt does.

    dbt's order: the `--profiles-dir` flag, then `DBT_PROFILES_DIR`, then the project folder if
    it has a profiles.yml, then `~/.dbt`. As in dbt, a folder named by the flag or the variable
    is final: a missing file there is an error, not a reason to look further.

    Args:
        project_dir: The dbt project folder.
        flag_dir: The value of `--profiles-dir`, if given.
        environ: The environment to read `DBT_PROFILES_DIR` from.

    Returns:
        The folder that holds profiles.yml.

    Raises:
        ProfileError: No candidate folder has a profiles.yml; the message lists each place.
    """
    from_env = environ.get("DBT_PROFILES_DIR") or None
    if flag_dir is not None:
        candidates = [(flag_dir, "--profiles-dir")]
    elif from_env is not None:
        candidates = [(Path(from_env), "DBT_PROFILES_DIR")]
    else:
        candidates = [(project_dir, "the project folder"), (Path.home() / ".dbt", "~/.dbt")]
    places = []
    for folder, source in candidates:
        folder = folder.expanduser().absolute()
        if (folder / PROFILES_FILE).is_file():
            return folder
        places.append(f"{folder} ({source})")
    raise ProfileError(
        f"profiles.yml not found; looked in: {', '.join(places)}",
        hint="create ~/.dbt/profiles.yml or pass --profiles-dir / set DBT_PROFILES_DIR",
    )


def read_project_profile_name(project_dir: Path) -> str:
    """Read the `profile:` of a dbt project's dbt_project.yml.

    Args:
        project_dir: The dbt project folder.

    Returns:
        The profile name.

    Raises:
        ProjectNotFoundError: The folder has no dbt_project.yml.
        ConfigError: dbt_project.yml is not valid YAML (the message gives file and line) or is
            not a mapping.
        ProfileError: It has no `profile:`, or the name is a Jinja expression dot cannot render.
    """
    path = project_dir / "dbt_project.yml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ProjectNotFoundError(
            f"no dbt project in {project_dir}: dbt_project.yml not found",
            hint="run dot in the folder of dbt_project.yml, or pass --project-dir",
        ) from e
    return profile_name_from_text(text, source=str(path))


def profile_name_from_text(text: str, *, source: str) -> str:
    """Read the `profile:` from the text of a dbt_project.yml (for example, as of a commit).

    Args:
        text: The file's content.
        source: How to name the file in messages (`dbt_project.yml at abc12345`).

    Returns:
        The profile name.

    Raises:
        ConfigError: The text is not valid YAML (the message gives file and line) or is not a
            mapping.
        ProfileError: It has no `profile:`, or the name is a Jinja expression dot cannot render.
    """
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(
            f"{_where(source, e)}: dbt_project.yml is not valid YAML: {_problem(e)}",
            hint=f"fix the YAML in {source} near that line",
        ) from e
    if not isinstance(document, dict):
        raise ConfigError(
            f"{source}: dbt_project.yml must be a mapping of keys to values",
            hint="see https://docs.getdbt.com/reference/dbt_project.yml",
        )
    name = document.get("profile")
    if name is None or str(name).strip() == "":
        raise ProfileError(
            f"{source} has no `profile:` key, so dot cannot tell which profile to use",
            hint="add `profile: <name of a profile in profiles.yml>` to dbt_project.yml",
        )
    if "{{" in str(name):
        raise ProfileError(
            f"the `profile:` in {source} is a Jinja expression ({name}), which dot does not render",
            hint="write the profile name literally in dbt_project.yml",
        )
    return str(name)


def load_profiles(path: Path) -> dict[str, Any]:
    """Load a profiles.yml.

    Args:
        path: The profiles.yml file.

    Returns:
        Its top-level mapping (empty for an empty file).

    Raises:
        ProfileError: The file is missing, is not valid YAML (the message gives the line), or is
            not a mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ProfileError(
            f"profiles.yml not found: {path}",
            hint="create it, or pass --profiles-dir / set DBT_PROFILES_DIR to its folder",
        ) from e
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ProfileError(
            f"{_where(path, e)}: profiles.yml is not valid YAML: {_problem(e)}",
            hint=f"fix the YAML in {path} near that line (indentation and quoting are the "
            "usual causes)",
        ) from e
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ProfileError(
            f"{path}: profiles.yml must be a mapping of profile names to profiles",
            hint="see https://docs.getdbt.com/docs/core/connect-data-platform/profiles.yml",
        )
    return document


def select_target(
    profiles: Mapping[str, Any], profile: str, target: str | None, *, path: Path
) -> tuple[str, dict[str, Any]]:
    """Pick a profile's target from loaded profiles.yml content.

    Args:
        profiles: The loaded profiles.yml.
        profile: The profile name.
        target: The target name, or None for the profile's default `target:`.
        path: Where the profiles came from, for messages.

    Returns:
        The target's name and a copy of its settings.

    Raises:
        ProfileError: The profile or target is not defined (the message lists the ones that
            are), no target was given and the profile has no default, or the entries are not
            mappings.
    """
    names = sorted(str(k) for k in profiles if k != _CONFIG_KEY)
    if profile not in profiles or profile == _CONFIG_KEY:
        raise ProfileError(
            f"profile '{profile}' not found in {path}; defined profiles: {_listing(names)}",
            hint=f"add profile '{profile}' to {path}, or set `profile:` in dbt_project.yml "
            "to one of the defined ones",
        )
    body = profiles[profile]
    outputs = body.get("outputs") if isinstance(body, dict) else None
    if not isinstance(outputs, dict):
        raise ProfileError(
            f"profile '{profile}' in {path} has no `outputs:` mapping of targets",
            hint="see https://docs.getdbt.com/docs/core/connect-data-platform/profiles.yml",
        )
    by_name = {str(k): v for k, v in outputs.items()}
    chosen = target if target is not None else body.get("target")
    if chosen is None:
        raise ProfileError(
            f"profile '{profile}' in {path} has no default `target:` and no target was given; "
            f"defined targets: {_listing(sorted(by_name))}",
            hint=f"add `target: <name>` to profile '{profile}', or name the target in the "
            "environment",
        )
    chosen = str(chosen)
    if "{{" in chosen:
        raise ProfileError(
            f"the default target of profile '{profile}' in {path} is a Jinja expression "
            f"({chosen}), which dot does not render",
            hint=f"name the target in the environment; defined targets: {_listing(by_name)}",
        )
    settings = by_name.get(chosen)
    if settings is None:
        raise ProfileError(
            f"target '{chosen}' not found in profile '{profile}' ({path}); "
            f"defined targets: {_listing(sorted(by_name))}",
            hint=f"add output '{chosen}' to profile '{profile}', or use one of the defined ones",
        )
    if not isinstance(settings, dict):
        raise ProfileError(
            f"target '{chosen}' of profile '{profile}' in {path} is not a mapping of settings",
            hint="see https://docs.getdbt.com/docs/core/connect-data-platform/profiles.yml",
        )
    return chosen, dict(settings)


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
) -> ProfileChange:
    """Work out the isolated profile without writing anything (for `--dry-run`).

    Args:
        source: The user's profiles.yml (or the folder holding it).
        profile: The profile name.
        target: The target name, or None for the profile's default.
        dest_dir: The folder the isolated profiles.yml would go to.
        schema_template: `isolation.schema_template`.
        short_hash: The build's short commit hash.
        env: The environment name.
        ref_slug: The ref as made by `ref_slug()`.

    Returns:
        The change that `write_isolated_profile` would make.

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
    )
    return change


def write_isolated_profile(
    *,
    source: Path,
    profile: str,
    target: str | None,
    dest_dir: Path,
    schema_template: str,
    short_hash: str,
    env: str,
    ref_slug: str,
) -> ProfileChange:
    """Write `dest_dir/profiles.yml` with only the chosen profile and target, schema isolated.

    The file holds the top-level `config:` block (if any) and the one profile with the one target
    (its `target:` set to it); only the schema (or dataset) differs from the source. Jinja is
    kept unrendered. The file is written atomically with mode 0600, and `dest_dir` and any
    parents it creates get mode 0700.

    Args:
        source: The user's profiles.yml (or the folder holding it).
        profile: The profile name.
        target: The target name, or None for the profile's default.
        dest_dir: The folder for the isolated profiles.yml.
        schema_template: `isolation.schema_template`.
        short_hash: The build's short commit hash.
        env: The environment name.
        ref_slug: The ref as made by `ref_slug()`.

    Returns:
        The change made.

    Raises:
        ProfileError: profiles.yml is missing or malformed, lacks the profile or target, or the
            target has no schema (or dataset) to isolate.
        ConfigError: The schema template is invalid.
        OSError: The file could not be written.
    """
    change, document = _plan(
        source=source,
        profile=profile,
        target=target,
        dest_dir=dest_dir,
        schema_template=schema_template,
        short_hash=short_hash,
        env=env,
        ref_slug=ref_slug,
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
) -> tuple[ProfileChange, dict[str, Any]]:
    source_path = source / PROFILES_FILE if source.is_dir() else source
    profiles = load_profiles(source_path)
    target_name, settings = select_target(profiles, profile, target, path=source_path)
    key = _schema_key(settings)
    before = settings.get(key)
    if before is None or str(before).strip() == "":
        raise ProfileError(
            f"target '{target_name}' of profile '{profile}' in {source_path} has no `{key}`, so "
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
    if _CONFIG_KEY in profiles:
        document[_CONFIG_KEY] = profiles[_CONFIG_KEY]
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
        env=env,
        ref_slug=ref_slug,
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
    _make_private_dirs(dest.parent)
    dest.parent.chmod(0o700)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _make_private_dirs(folder: Path) -> None:
    # Path.mkdir(parents=True) gives parents the default mode, not ours; make each one here.
    missing: list[Path] = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for each in reversed(missing):
        each.mkdir(mode=0o700, exist_ok=True)


def _where(path: Path | str, error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    return f"{path}:{mark.line + 1}" if mark is not None else str(path)


def _problem(error: yaml.YAMLError) -> str:
    problem = getattr(error, "problem", None)
    return str(problem) if problem else str(error).splitlines()[0]


def _listing(names: list[str] | Mapping[str, Any]) -> str:
    return ", ".join(sorted(names)) if names else "(none)"


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
    names = [str(name) for name in document if name != _CONFIG_KEY]
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

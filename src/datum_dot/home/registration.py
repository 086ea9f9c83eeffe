"""`dot init`: register a dbt project in `$DATUM_HOME/config.yaml` and give it a key pair.

Registering is idempotent: a second run with the same settings changes nothing and says so.
The project's id is a slug of the dbt project's `name:`, made unique among registered projects;
a project already registered (same folder) keeps its id and its `created_at`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from datum_dot import dbtcore
from datum_dot.config.environments import load_environments
from datum_dot.config.profiles import PROFILES_FILE, load_profiles, read_project_profile_name
from datum_dot.config.yamlfile import safe_load
from datum_dot.errors import (
    ConfigError,
    ProfileError,
    ProfilesNotFoundError,
    ProjectNotFoundError,
    UsageError,
)
from datum_dot.home import effective, keys, tokens, userconfig
from datum_dot.home.settings import DEFAULT_RUNTIME
from datum_dot.home.userconfig import ProjectEntry, UserConfig
from datum_dot.runtimes import registry

PROJECT_FILE = "dbt_project.yml"
DEFAULT_TARGET = "dev"
_SEARCH_DEPTH = 2
_SKIP_DIRS = frozenset({"dbt_packages", "node_modules", "target", "logs", "venv", ".venv"})


@dataclass(frozen=True)
class InitRequest:
    """What `dot init` was asked to do.

    Attributes:
        repo_path: The folder holding dbt_project.yml, or a folder above it.
        profiles_dir: `--profiles-dir`, if given.
        target: `--target`, if given.
        runtime: `--runtime`, if given.
        key_type: The kind of key to create (None: ed25519, and no opinion on an existing key).
        force: Replace an existing key pair.
    """

    repo_path: Path
    profiles_dir: Path | None = None
    target: str | None = None
    runtime: str | None = None
    key_type: keys.KeyType | None = None
    force: bool = False


@dataclass(frozen=True)
class InitOutcome:
    """What `dot init` did.

    Attributes:
        project_id: The project's id.
        entry: Its registration, as saved.
        key_files: Its key pair.
        key_action: What happened to the key pair.
        token_path: The webhook token's file.
        changes: One line per change made; empty when nothing changed.
        warnings: Problems `dot validate` will report.
    """

    project_id: str
    entry: ProjectEntry
    key_files: keys.KeyFiles
    key_action: keys.KeyAction
    token_path: Path
    changes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def changed(self) -> bool:
        """Whether anything was created or changed."""
        return bool(self.changes)


def init_project(
    request: InitRequest,
    *,
    home: Path,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> InitOutcome:
    """Register the project, create its key pair and the webhook token.

    Raises:
        UsageError: `--repo-path` is not a folder, or `--runtime` names no installed runtime.
        ProjectNotFoundError: No dbt_project.yml in it (or in one place below it).
        ConfigError: dbt_project.yml, the environments files or config.yaml are invalid.
        ProfilesNotFoundError: profiles.yml is not found.
        ProfileError: `--target` is not a target of the profile.
        DatumHomeError: `$DATUM_HOME` cannot be written.
    """
    environ = os.environ if environ is None else environ
    project_dir = find_project(request.repo_path)
    name = read_project_name(project_dir)
    fresh, warnings = _registration(request, project_dir, environ, now or datetime.now(UTC))
    project_id, entry, changes = _register(home, project_dir, name, fresh, request)
    files = keys.key_files(home, project_id)
    key_type = request.key_type or keys.KeyType.ED25519
    action = keys.ensure_key_pair(home, project_id, key_type=key_type, force=request.force)
    if action is not keys.KeyAction.UNCHANGED:
        changes.append(f"{action.value} key pair {files.private} and {files.public.name}")
    elif request.key_type is not None:
        warnings.extend(_key_type_warning(home, project_id, request.key_type))
    if tokens.read_webhook_token(home) is None:
        tokens.ensure_webhook_token(home)
        changes.append(f"created the webhook token {tokens.token_path(home)}")
    return InitOutcome(
        project_id=project_id,
        entry=entry,
        key_files=files,
        key_action=action,
        token_path=tokens.token_path(home),
        changes=tuple(changes),
        warnings=tuple(warnings),
    )


def _register(
    home: Path, project_dir: Path, name: str, fresh: ProjectEntry, request: InitRequest
) -> tuple[str, ProjectEntry, list[str]]:
    """Add or update the registration under the config lock; returns id, entry and changes."""
    # A registered project keeps its settings; only what was given on the command line changes.
    explicit = {"dbt_version": fresh.dbt_version}
    for key, given in (
        ("profiles_dir", request.profiles_dir),
        ("target", request.target),
        ("runtime", request.runtime),
    ):
        if given is not None:
            explicit[key] = getattr(fresh, key)
    changes: list[str] = []
    project_id = ""

    def register(config: UserConfig) -> UserConfig:
        nonlocal project_id
        changes.clear()
        found = userconfig.find_project_by_path(config, project_dir)
        if found is None:
            project_id = userconfig.unique_project_id(config, name)
            changes.append(f"registered project '{project_id}' ({project_dir})")
            entry = fresh
        else:
            project_id, old = found
            entry = old.model_copy(update=explicit)
            changes.extend(_differences(old, entry))
        return config.model_copy(update={"projects": {**config.projects, project_id: entry}})

    saved = userconfig.update_user_config(home, register)
    return project_id, saved.projects[project_id], changes


def _key_type_warning(home: Path, project_id: str, wanted: keys.KeyType) -> list[str]:
    state = keys.inspect_key(home, project_id)
    if state.key_type is None or state.key_type.startswith(wanted.value):
        return []
    return [
        f"the existing key is {state.key_type}; pass --force to replace it with a new "
        f"{wanted.value} key"
    ]


def find_project(repo_path: Path) -> Path:
    """The dbt project at `repo_path`, or the one project in a folder up to two levels below.

    Raises:
        UsageError: `repo_path` is not a folder.
        ProjectNotFoundError: No dbt_project.yml, or several below `repo_path`.
    """
    folder = repo_path.expanduser()
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise UsageError(
            f"--repo-path {repo_path} {what}",
            "pass the folder of your dbt project (the one holding dbt_project.yml)",
        )
    folder = folder.resolve()
    if (folder / PROJECT_FILE).is_file():
        return folder
    found = sorted(_search(folder, _SEARCH_DEPTH))
    if len(found) == 1:
        return found[0]
    if not found:
        raise ProjectNotFoundError(
            f"no dbt project at {folder}: no {PROJECT_FILE} there or in its subfolders",
            "pass --repo-path <folder of dbt_project.yml>, or create a project with `dbt init`",
        )
    listing = ", ".join(str(p) for p in found)
    raise ProjectNotFoundError(
        f"several dbt projects below {folder}: {listing}",
        f"pick one: dot init --repo-path {found[0]}",
    )


def read_project_name(project_dir: Path) -> str:
    """The `name:` of dbt_project.yml.

    Raises:
        ConfigError: The file is not valid YAML, or has no `name:`.
    """
    path = project_dir / PROJECT_FILE
    try:
        data = safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML", f"fix the YAML at {where}") from e
    name = data.get("name") if isinstance(data, dict) else None
    if not name or "{{" in str(name):
        raise ConfigError(
            f"{path} has no usable `name:`", "add `name: <project_name>` to dbt_project.yml"
        )
    return str(name)


def _registration(
    request: InitRequest, project_dir: Path, environ: Mapping[str, str], now: datetime
) -> tuple[ProjectEntry, list[str]]:
    envs = load_environments(project_dir)
    env = envs.resolve(None)
    folder = effective.profiles_dir_setting(
        project_dir, env=env, entry=None, flag=request.profiles_dir, environ=environ, envs=envs
    )
    if folder.value is None:
        raise ProfilesNotFoundError(
            f"profiles.yml not found: {folder.detail}",
            "pass --profiles-dir <folder of profiles.yml>, or create ~/.dbt/profiles.yml",
        )
    if not (Path(folder.value) / PROFILES_FILE).is_file():
        given = f" ({folder.detail})" if folder.detail else ""
        raise ProfilesNotFoundError(
            f"{folder.value}{given} has no {PROFILES_FILE}",
            "pass --profiles-dir <folder that holds profiles.yml>",
        )
    warnings: list[str] = []
    targets, default = _targets(Path(folder.value), project_dir, warnings)
    target = effective.target_setting(
        env=env, entry=None, flag=request.target, environ=environ, profile_default=default
    ).value
    if request.target is not None and targets is not None and request.target not in targets:
        raise ProfileError(
            f"--target {request.target} is not a target of the profile in "
            f"{Path(folder.value) / PROFILES_FILE}; defined targets: {', '.join(targets)}",
            "pass one of the defined targets, or add it to profiles.yml",
        )
    runtime = effective.runtime_setting(env=env, entry=None, flag=request.runtime).value
    _check_runtime(runtime or DEFAULT_RUNTIME)
    entry = ProjectEntry(
        path=project_dir,
        profiles_dir=Path(folder.value),
        target=target or DEFAULT_TARGET,
        dbt_version=dbtcore.versions().get("dbt-core", ""),
        runtime=runtime or DEFAULT_RUNTIME,
        created_at=now,
    )
    return entry, warnings


def _targets(
    profiles_dir: Path, project_dir: Path, warnings: list[str]
) -> tuple[list[str] | None, str | None]:
    """The profile's targets and default target; problems become warnings (validate says more)."""
    try:
        profile = read_project_profile_name(project_dir)
        loaded = load_profiles(profiles_dir / PROFILES_FILE)
    except (ConfigError, ProfileError) as e:
        warnings.append(e.message)
        return None, None
    body = loaded.get(profile)
    outputs = body.get("outputs") if isinstance(body, dict) else None
    if not isinstance(outputs, dict):
        warnings.append(f"profile '{profile}' is not defined in {profiles_dir / PROFILES_FILE}")
        return None, None
    default = body.get("target") if isinstance(body, dict) else None
    return sorted(str(k) for k in outputs), None if default is None else str(default)


def _check_runtime(name: str) -> None:
    known = registry.names()
    if known and name not in known:
        raise UsageError(
            f"unknown runtime '{name}'; installed: {', '.join(known)}",
            "pass --runtime with one of the installed runtimes (see `dot runtimes`)",
        )


def _differences(old: ProjectEntry, new: ProjectEntry) -> list[str]:
    changed = []
    for key in ("profiles_dir", "target", "runtime", "dbt_version"):
        before, after = getattr(old, key), getattr(new, key)
        if before != after:
            changed.append(f"{key.replace('_', '-')}: {before} -> {after}")
    return changed


def _search(folder: Path, depth: int) -> list[Path]:
    if depth == 0:
        return []
    found: list[Path] = []
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir())
    except OSError:
        return []
    for child in children:
        if child.name.startswith(".") or child.name in _SKIP_DIRS:
            continue
        if (child / PROJECT_FILE).is_file():
            found.append(child)
        else:
            found.extend(_search(child, depth - 1))
    return found

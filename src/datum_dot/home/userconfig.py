"""The user's configuration, `$DATUM_HOME/config.yaml`: registered projects and the webhook.

The file is the tool's own (written by `dot init` and `dot config set`), so it is loaded,
validated and dumped whole. It carries a `version`; an older layout is migrated in memory when
read and written in the new layout only by the next change, after the original is copied to
`config.yaml.v<N>.bak`. A file that does not parse or validate is never overwritten: the error
names the file and line and every command that would write it stops.

Read-modify-write happens under a file lock (`update_user_config`), so two `dot init` at once
cannot lose each other's project.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from datum_dot.config.yamlfile import YamlDocument, load_yaml
from datum_dot.errors import ConfigError
from datum_dot.home.locks import file_lock
from datum_dot.home.privatefiles import ensure_datum_home, unwritable_home, write_private
from datum_dot.home.settings import CONFIG_FILE

CURRENT_VERSION: Literal[1] = 1
LOCK_FILE = ".config.lock"
LOCK_TIMEOUT = 30.0
PROJECT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_HEADER = (
    "# datum-dot user configuration: registered projects and webhook settings.\n"
    "# Written by `dot init` and `dot config set`; see `dot config show`.\n"
)


class ProjectEntry(BaseModel):
    """One registered dbt project.

    Attributes:
        path: The folder holding dbt_project.yml.
        profiles_dir: The folder holding the profiles.yml runs started by the tool use.
        target: The default target, when the environment names none.
        dbt_version: The dbt-core version detected at registration.
        runtime: The runtime that executes the project's runs.
        created_at: When the project was registered (UTC).
        schedules: The project's schedules (their shape belongs to the scheduling module).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path
    profiles_dir: Path
    target: str = Field(min_length=1)
    dbt_version: str = ""
    runtime: str = "local"
    created_at: datetime
    schedules: list[dict[str, Any]] = Field(default_factory=list)


class WebhookSettings(BaseModel):
    """Where the webhook server listens and how it maps branches to environments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8080, ge=1, le=65535)
    github_secret_env: str | None = None
    branch_envs: dict[str, str] = Field(default_factory=dict)


def format_branch_envs(mapping: Mapping[str, str]) -> str:
    """`webhook.branch_envs` as `dot config set webhook.branch-envs` takes it: `main=prod,...`."""
    return ",".join(f"{branch}={env}" for branch, env in mapping.items())


class DatabaseSettings(BaseModel):
    """Where the run history is kept when not in SQLite under `$DATUM_HOME` (`database.url`),
    and whether runs keep their dbt artifacts in it too (`database.artifacts_to_db`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = None
    artifacts_to_db: bool = False


class WarmSettings(BaseModel):
    """The warm runner (`warm.*`): whether runs use it, and when it stops on its own.

    Attributes:
        mode: `auto` starts a runner on first use; `on` uses one `dot warm start` started;
            `off` never uses one.
        idle_timeout: Seconds without a run after which the runner stops.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["auto", "on", "off"] = "on"
    idle_timeout: int = Field(default=1800, ge=1)


class UserConfig(BaseModel):
    """The whole of `config.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = CURRENT_VERSION
    projects: dict[str, ProjectEntry] = Field(default_factory=dict)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    warm: WarmSettings = Field(default_factory=WarmSettings)

    @field_validator("projects")
    @classmethod
    def _ids_are_slugs(cls, value: dict[str, ProjectEntry]) -> dict[str, ProjectEntry]:
        for key in value:
            if not PROJECT_ID.fullmatch(key):
                raise ValueError(
                    f"project id '{key}' must be lowercase letters, digits, '-' and '_'"
                )
        return value


@dataclass(frozen=True)
class LoadedConfig:
    """A config as read, and the version it was migrated from (None: already current)."""

    config: UserConfig
    migrated_from: int | None = None


def config_path(home: Path) -> Path:
    """`$DATUM_HOME/config.yaml`."""
    return home / CONFIG_FILE


def load_user_config(home: Path) -> UserConfig:
    """Read `config.yaml`; an absent or empty file is an empty configuration.

    Raises:
        ConfigError: The file cannot be read, is not valid YAML, does not validate, or was
            written by a newer release; the message names the file and line.
    """
    return read_user_config(home).config


def read_user_config(home: Path) -> LoadedConfig:
    """Read `config.yaml`, migrating an older layout in memory (the file is not touched).

    Raises:
        ConfigError: As `load_user_config`.
    """
    path = config_path(home)
    if not path.exists():
        return LoadedConfig(UserConfig())
    doc = load_yaml(path)
    if doc.data is None:
        return LoadedConfig(UserConfig())
    if not isinstance(doc.data, dict):
        raise _corrupt(doc, (), "the file must be a mapping (version, projects, webhook)")
    data, version = _migrate(doc)
    try:
        config = UserConfig.model_validate(data)
    except ValidationError as e:
        # A wrong value says more than a missing key: report it first.
        errors = sorted(e.errors(), key=lambda error: error["type"] == "missing")
        err = errors[0]
        loc = tuple(str(part) for part in err["loc"])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise _corrupt(doc, loc, f"{'.'.join(loc) or '(top level)'}: {err['msg']}{more}") from e
    return LoadedConfig(config, None if version == CURRENT_VERSION else version)


def update_user_config(home: Path, change: Callable[[UserConfig], UserConfig]) -> UserConfig:
    """Apply `change` to the configuration and save it, under the config lock.

    Nothing is written when the result equals what was read (and no migration is pending).
    Before a migrated configuration is first written, the original file is copied to
    `config.yaml.v<N>.bak`.

    Args:
        home: `$DATUM_HOME`.
        change: Returns the new configuration; may raise to abandon the update.

    Returns:
        The configuration now on disk.

    Raises:
        ConfigError: The current file is corrupted (it is left as it is).
        DatumHomeError: `$DATUM_HOME` cannot be written.
        LockTimeoutError: Another process held the config lock too long.
    """
    ensure_datum_home(home)
    with file_lock(home / LOCK_FILE, timeout=LOCK_TIMEOUT):
        loaded = read_user_config(home)
        updated = change(loaded.config)
        if updated == loaded.config and loaded.migrated_from is None:
            return updated
        if loaded.migrated_from is not None:
            backup_config(home, loaded.migrated_from)
        save_user_config(home, updated)
    return updated


def save_user_config(home: Path, config: UserConfig) -> None:
    """Write `config.yaml` atomically with mode 0600 (callers hold the config lock).

    Raises:
        DatumHomeError: `$DATUM_HOME` cannot be written.
    """
    data = config.model_dump(mode="json")
    # Webhook defaults stay out of the file, so `dot config show` can tell them from a choice.
    hook = config.webhook.model_dump(mode="json", exclude_unset=True)
    if hook:
        data["webhook"] = hook
    else:
        del data["webhook"]
    database = config.database.model_dump(mode="json", exclude_defaults=True)
    if database:
        data["database"] = database
    else:
        del data["database"]
    warm = config.warm.model_dump(mode="json", exclude_unset=True)
    if warm:
        data["warm"] = warm
    else:
        del data["warm"]
    text = _HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    ensure_datum_home(home)
    try:
        write_private(config_path(home), text.encode("utf-8"))
    except OSError as e:
        raise unwritable_home(home, e) from e


def backup_config(home: Path, version: int) -> Path:
    """Copy `config.yaml` to `config.yaml.v<version>.bak` (never replacing an older backup).

    Raises:
        DatumHomeError: The copy cannot be written.
    """
    source = config_path(home)
    backup = home / f"{CONFIG_FILE}.v{version}.bak"
    if backup.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        backup = home / f"{CONFIG_FILE}.v{version}.{stamp}.bak"
    try:
        shutil.copy2(source, backup)
        backup.chmod(0o600)
    except OSError as e:
        raise unwritable_home(home, e) from e
    return backup


def find_project_by_path(config: UserConfig, path: Path) -> tuple[str, ProjectEntry] | None:
    """The registered project whose folder is `path` (symlinks resolved), if any."""
    wanted = path.resolve()
    for project_id, entry in config.projects.items():
        if entry.path.resolve() == wanted:
            return project_id, entry
    return None


def slugify(name: str) -> str:
    """A project id from a dbt project name: `Jaffle Shop!` -> `jaffle-shop`."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")
    return slug[:63].rstrip("-_") or "project"


def unique_project_id(config: UserConfig, name: str) -> str:
    """`slugify(name)`, with `-2`, `-3`, ... appended if another project has that id."""
    base = slugify(name)
    candidate, n = base, 1
    while candidate in config.projects:
        n += 1
        candidate = f"{base[:58]}-{n}"
    return candidate


def _migrate(doc: YamlDocument) -> tuple[dict[str, Any], int]:
    data: dict[str, Any] = dict(doc.data)
    version = data.get("version", CURRENT_VERSION)
    if "project" in data and "projects" not in data:
        return _from_datum_layout(data), 0
    if not isinstance(version, int) or isinstance(version, bool):
        raise _corrupt(doc, ("version",), f"version must be a whole number, not {version!r}")
    if version > CURRENT_VERSION:
        raise ConfigError(
            f"{doc.path}: version {version} was written by a newer datum-dot (this one reads up "
            f"to version {CURRENT_VERSION})",
            "upgrade datum-dot (pip install -U datum-dot); the file was left as it is",
        )
    if version < CURRENT_VERSION:
        raise _corrupt(doc, ("version",), f"unknown version {version}")
    return data, version


def _from_datum_layout(data: Mapping[str, Any]) -> dict[str, Any]:
    """Version 0: the datum CLI's layout, one `project:` with `project_path`, `profiles_path`."""
    project = data.get("project") or {}
    if not isinstance(project, Mapping):
        return {"projects": project}  # fails validation, naming `projects`
    path = Path(str(project.get("project_path", ".")))
    profiles = Path(str(project.get("profiles_path", Path.home() / ".dbt")))
    if profiles.suffix in {".yml", ".yaml"}:
        profiles = profiles.parent
    schedule = data.get("schedule")
    entry: dict[str, Any] = {
        "path": str(path),
        "profiles_dir": str(profiles),
        "target": str(project.get("target") or "dev"),
        "dbt_version": str(project.get("dbt_version") or ""),
        "created_at": datetime.now(UTC).isoformat(),
        "schedules": [{"name": "datum", **schedule}] if isinstance(schedule, Mapping) else [],
    }
    webhook = data.get("webhook")
    migrated: dict[str, Any] = {
        "version": CURRENT_VERSION,
        "projects": {slugify(str(project.get("project_id") or path.name)): entry},
    }
    if isinstance(webhook, Mapping):
        migrated["webhook"] = {k: webhook[k] for k in ("host", "port") if k in webhook}
    return migrated


def _corrupt(doc: YamlDocument, loc: tuple[str, ...], problem: str) -> ConfigError:
    line = doc.line_of(loc)
    where = f"{doc.path}:{line}" if line else str(doc.path)
    return ConfigError(
        f"{where}: {problem}",
        f"fix or move away {doc.path} (it is never overwritten while it is invalid)",
    )

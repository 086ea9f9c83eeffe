"""`dot config set KEY VALUE ...`: the keys a user may set, each validated before anything is saved.

Project keys change the registration of one project; `webhook.*` keys are user-wide. All pairs
of one command are checked first and saved together, or not at all.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from datum_dot.config import profiles
from datum_dot.errors import ConfigError, ProfileError, ProjectNotFoundError, UsageError
from datum_dot.home import userconfig
from datum_dot.home.userconfig import (
    ProjectEntry,
    UserConfig,
    WarmSettings,
    WebhookSettings,
    format_branch_envs,
)
from datum_dot.runtimes import registry

PROJECT_KEYS = {
    "target": "the default target, when the environment names none",
    "profiles-dir": "the folder of profiles.yml for runs the tool starts",
    "runtime": "what runs the project's dbt commands (local, subprocess, ...)",
    "project-path": "the project's folder, after moving it",
}
WEBHOOK_KEYS = {
    "webhook.host": "the address the webhook server binds (default 127.0.0.1)",
    "webhook.port": "the port the webhook server listens on (default 8080)",
    "webhook.github-secret-env": "the environment variable holding the GitHub webhook secret",
    "webhook.branch-envs": "GitHub pushes to build, as branch=environment pairs (main=prod,develop=dev)",
}
WARM_KEYS = {
    "warm": "use the warm runner: auto (start it on first use), on (when started), off",
    "warm.idle-timeout": "stop the warm runner after this long without a run (90s, 30m, 2h)",
}
DATABASE_KEYS = {
    "database.url": "the PostgreSQL database holding the run history (no password: use "
    'PGPASSWORD, ~/.pgpass or a service file); "" for SQLite under $DATUM_HOME',
    "database.artifacts-to-db": "keep every run's dbt artifacts in that database too "
    "(true/false), as --artifacts-to-db does",
}
SETTABLE_KEYS = {**PROJECT_KEYS, **WEBHOOK_KEYS, **WARM_KEYS, **DATABASE_KEYS}
_DURATION = re.compile(r"(\d+)([smh]?)")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENVIRONMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class ConfigChange:
    """One value changed by `dot config set`."""

    key: str
    before: str | None
    after: str


def parse_pairs(words: Sequence[str]) -> list[tuple[str, str]]:
    """`KEY VALUE [KEY VALUE ...]` into pairs, refusing unknown keys.

    Raises:
        UsageError: An odd number of words, or an unknown key (with a suggestion).
    """
    if not words or len(words) % 2:
        raise UsageError(
            "config set needs KEY VALUE pairs",
            f"for example: dot config set target prod; keys: {', '.join(SETTABLE_KEYS)}",
        )
    pairs = [(words[i], words[i + 1]) for i in range(0, len(words), 2)]
    for key, _ in pairs:
        if key not in SETTABLE_KEYS:
            close = difflib.get_close_matches(key, list(SETTABLE_KEYS), n=1)
            guess = f"; did you mean '{close[0]}'?" if close else ""
            raise UsageError(
                f"unknown config key '{key}'{guess}",
                f"settable keys: {', '.join(SETTABLE_KEYS)}",
            )
    return pairs


def set_values(
    home: Path, pairs: Sequence[tuple[str, str]], *, project_dir: Path | None
) -> list[ConfigChange]:
    """Validate every pair, then save them together.

    Args:
        home: `$DATUM_HOME`.
        pairs: What to set (keys already checked by `parse_pairs`).
        project_dir: The registered project the project keys apply to.

    Returns:
        The values that changed (empty when every value was already set).

    Raises:
        ConfigError: A value is invalid, config.yaml is corrupted, or the project is not
            registered.
        UsageError: A project key without a project.
        DatumHomeError: config.yaml cannot be written.
    """
    changes: list[ConfigChange] = []

    def change(config: UserConfig) -> UserConfig:
        changes.clear()
        projects = dict(config.projects)
        webhook = config.webhook
        warm = config.warm
        project_pairs = [(k, v) for k, v in pairs if k in PROJECT_KEYS]
        if project_pairs:
            project_id, entry = _registered(config, project_dir, home)
            updated = _updated_entry(config, project_id, entry, project_pairs, changes)
            projects[project_id] = updated
        hook_pairs = [(k, v) for k, v in pairs if k in WEBHOOK_KEYS]
        if hook_pairs:
            webhook = _updated_webhook(webhook, hook_pairs, changes)
        database = config.database
        for key, raw in pairs:
            if key in DATABASE_KEYS:
                database = _updated_database(database, key, raw, changes, home)
        if database != config.database:
            config = config.model_copy(update={"database": database})
        warm_pairs = [(k, v) for k, v in pairs if k in WARM_KEYS]
        if warm_pairs:
            warm = _updated_warm(warm, warm_pairs, changes)
        return config.model_copy(update={"projects": projects, "webhook": webhook, "warm": warm})

    userconfig.update_user_config(home, change)
    return changes


def targets_set_by_environments(project_dir: Path) -> dict[str, str] | None:
    """Each environment's target, when every environment of the project sets its own.

    The registered target applies only to an environment that names none: when every one
    does, setting it changes no run. None when at least one environment (or none at all)
    leaves the target to the registration.

    Raises:
        ConfigError: dot_environments.yml is invalid.
    """
    # lazy: the environments are read only when `target` is set
    from datum_dot.config.environments import load_environments

    envs = load_environments(project_dir)
    targets = {name: envs.resolve(name).flags.get("target") for name in envs.names}
    if not targets or any(target is None for target in targets.values()):
        return None
    return {name: str(target) for name, target in targets.items()}


def _registered(
    config: UserConfig, project_dir: Path | None, home: Path
) -> tuple[str, ProjectEntry]:
    if project_dir is None:
        raise UsageError(
            "project keys need a dbt project: no dbt_project.yml here or above",
            "run it inside the project, or pass --project-dir <folder>",
        )
    found = userconfig.find_project_by_path(config, project_dir)
    if found is None:
        raise ConfigError(
            f"{project_dir} is not registered in {userconfig.config_path(home)}",
            f"register it first: dot init --project-dir {project_dir}",
        )
    return found


def _updated_entry(
    config: UserConfig,
    project_id: str,
    entry: ProjectEntry,
    pairs: Sequence[tuple[str, str]],
    changes: list[ConfigChange],
) -> ProjectEntry:
    values: dict[str, Any] = entry.model_dump()
    for key, raw in pairs:
        field = {"project-path": "path"}.get(key, key.replace("-", "_"))
        if key == "project-path":
            value: Any = _project_path(config, project_id, raw)
        elif key == "profiles-dir":
            value = _profiles_dir(raw)
        elif key == "runtime":
            value = _runtime(raw)
        else:
            value = raw
        values[field] = value
        if str(getattr(entry, field)) != str(value):
            changes.append(ConfigChange(key, str(getattr(entry, field)), str(value)))
    if any(key == "target" for key, _ in pairs):
        _check_target(Path(values["path"]), Path(values["profiles_dir"]), str(values["target"]))
    try:
        return ProjectEntry.model_validate(values)
    except ValidationError as e:
        raise ConfigError(f"invalid value: {e.errors()[0]['msg']}", "see dot config show") from e


def _updated_warm(
    warm: WarmSettings, pairs: Sequence[tuple[str, str]], changes: list[ConfigChange]
) -> WarmSettings:
    values: dict[str, Any] = warm.model_dump(exclude_unset=True)
    for key, raw in pairs:
        if key == "warm":
            if raw not in ("auto", "on", "off"):
                raise ConfigError(
                    f"warm must be auto, on or off, not '{raw}'",
                    "for example: dot config set warm auto",
                )
            changes.append(ConfigChange(key, warm.mode, raw))
            values["mode"] = raw
            continue
        match = _DURATION.fullmatch(raw.strip())
        if match is None or int(match[1]) == 0:
            raise ConfigError(
                f"warm.idle-timeout must be a duration like 90s, 30m or 2h, not '{raw}'",
                "for example: dot config set warm.idle-timeout 30m",
            )
        seconds = int(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]
        changes.append(ConfigChange(key, f"{warm.idle_timeout}s", f"{seconds}s"))
        values["idle_timeout"] = seconds
    return WarmSettings(**values)


def _updated_database(
    database: userconfig.DatabaseSettings,
    key: str,
    raw: str,
    changes: list[ConfigChange],
    home: Path,
) -> userconfig.DatabaseSettings:
    # lazy: loaded only when the key is set
    from datum_dot.home.dburl import check_not_secret

    if key == "database.artifacts-to-db":
        wanted = raw.strip().lower()
        if wanted not in ("true", "false"):
            raise ConfigError(
                f"database.artifacts-to-db must be true or false, not '{raw}'",
                "for example: dot config set database.artifacts-to-db true",
            )
        if database.artifacts_to_db != (wanted == "true"):
            changes.append(ConfigChange(key, str(database.artifacts_to_db).lower(), wanted))
        return database.model_copy(update={"artifacts_to_db": wanted == "true"})
    url = raw.strip() or None
    if url is not None:
        check_not_secret(url, where=str(userconfig.config_path(home)))
    before = database.url
    if before != url:
        changes.append(ConfigChange(key, before, url or "(none: SQLite under $DATUM_HOME)"))
    return database.model_copy(update={"url": url})


def _updated_webhook(
    webhook: WebhookSettings, pairs: Sequence[tuple[str, str]], changes: list[ConfigChange]
) -> WebhookSettings:
    values: dict[str, Any] = webhook.model_dump(exclude_unset=True)
    for key, raw in pairs:
        field = key.removeprefix("webhook.").replace("-", "_")
        if field == "port" and not (raw.isdigit() and 1 <= int(raw) <= 65535):
            raise ConfigError(
                f"webhook.port must be a port number 1-65535, not '{raw}'",
                "for example: dot config set webhook.port 8080",
            )
        if field == "host" and (not raw or any(c.isspace() for c in raw)):
            raise ConfigError(
                f"webhook.host '{raw}' is not an address",
                "for example: dot config set webhook.host 127.0.0.1",
            )
        if field == "github_secret_env" and not _ENV_NAME.fullmatch(raw):
            raise ConfigError(
                f"webhook.github-secret-env '{raw}' is not a variable name",
                "for example: dot config set webhook.github-secret-env GH_SECRET",
            )
        before = getattr(webhook, field)
        if field == "branch_envs":
            mapping = parse_branch_envs(raw)
            values[field] = mapping
            if mapping != before:
                shown = format_branch_envs(before) if before else None
                changes.append(ConfigChange(key, shown, format_branch_envs(mapping) or "(none)"))
            continue
        values[field] = int(raw) if field == "port" else raw
        if str(before) != raw:
            changes.append(ConfigChange(key, None if before is None else str(before), raw))
    return WebhookSettings.model_validate(values)


def parse_branch_envs(raw: str) -> dict[str, str]:
    """`main=prod,develop=dev` as a mapping; an empty string is no mapping at all.

    Raises:
        ConfigError: A pair is not `branch=environment`, or a branch is named twice.
    """
    mapping: dict[str, str] = {}
    for pair in (p.strip() for p in raw.split(",")):
        if not pair:
            continue
        branch, sep, env = (part.strip() for part in pair.partition("="))
        if not sep or not branch or not _ENVIRONMENT.fullmatch(env) or _bad_branch(branch):
            raise ConfigError(
                f"webhook.branch-envs: '{pair}' is not branch=environment",
                'for example: dot config set webhook.branch-envs "main=prod,develop=dev" '
                '(or "" for none)',
            )
        if branch in mapping:
            raise ConfigError(
                f"webhook.branch-envs names branch '{branch}' twice",
                "give each branch one environment",
            )
        mapping[branch] = env
    return mapping


def _bad_branch(name: str) -> bool:
    # what `git check-ref-format` refuses in a branch name, and a leading dash
    return (
        name.startswith(("-", "/", "."))
        or name.endswith(("/", ".", ".lock"))
        or ".." in name
        or "@{" in name
        or any(c.isspace() or c in "~^:?*[\\" or ord(c) < 32 for c in name)
    )


def _project_path(config: UserConfig, project_id: str, raw: str) -> Path:
    folder = Path(raw).expanduser().resolve()
    if not (folder / "dbt_project.yml").is_file():
        raise ProjectNotFoundError(
            f"project-path {raw}: no dbt_project.yml in {folder}",
            "pass the folder that holds the project's dbt_project.yml",
        )
    other = userconfig.find_project_by_path(config, folder)
    if other is not None and other[0] != project_id:
        raise ConfigError(
            f"project-path {folder} is already registered as project '{other[0]}'",
            "pick another folder, or change that project instead",
        )
    return folder


def _profiles_dir(raw: str) -> Path:
    path = Path(raw).expanduser().absolute()
    folder = path.parent if path.name == profiles.PROFILES_FILE else path
    if not (folder / profiles.PROFILES_FILE).is_file():
        raise ConfigError(
            f"profiles-dir {raw}: no {profiles.PROFILES_FILE} in {folder}",
            "pass the folder that holds profiles.yml",
        )
    return folder


def _runtime(raw: str) -> str:
    known = registry.names()
    if known and raw not in known:
        close = difflib.get_close_matches(raw, known, n=1)
        guess = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"unknown runtime '{raw}'{guess}", f"installed: {', '.join(known)}")
    return raw


def _check_target(project_dir: Path, profiles_dir: Path, target: str) -> None:
    try:
        profile = profiles.read_project_profile_name(project_dir)
        loaded = profiles.load_profiles(profiles_dir / profiles.PROFILES_FILE)
        profiles.select_target(loaded, profile, target, path=profiles_dir / "profiles.yml")
    except (ConfigError, ProfileError) as e:
        raise ConfigError(f"target '{target}' cannot be used: {e.message}", e.hint) from e


def describe_keys() -> Mapping[str, str]:
    """Every settable key and what it means (for help texts)."""
    return SETTABLE_KEYS

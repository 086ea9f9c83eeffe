"""The effective settings of a project, and where each value comes from.

One order for every value, highest first: a command-line flag, the environment file
(`dot_environments.yml` and its user override, for the chosen environment), an environment
variable (`DBT_TARGET`, `DBT_PROFILES_DIR`, as dbt reads them), the user config
(`$DATUM_HOME/config.yaml`, for registered projects), and last the default (dbt's own:
the profile's `target:`, profiles.yml in the project folder or `~/.dbt`).

`dot config show` prints this and `dot validate` checks what it resolves to; the planner
applies the same order to every run (it passes the registered target and profiles folder to
dbt when nothing above the user config names them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from datum_dot import dbtcore
from datum_dot.config import profiles
from datum_dot.config.environments import Environment, EnvironmentsConfig, load_environments
from datum_dot.errors import ConfigError, ProfileError
from datum_dot.home.settings import CONFIG_FILE, DEFAULT_RUNTIME, datum_home

if TYPE_CHECKING:
    from datum_dot.home.userconfig import ProjectEntry, UserConfig


class Source(StrEnum):
    """Where a value came from, lowest priority last."""

    FLAG = "flag"
    ENVIRONMENT_FILE = "environment file"
    ENV_VAR = "env var"
    USER_CONFIG = "user config"
    DEFAULT = "default"
    PROJECT_FILE = "dbt_project.yml"
    DETECTED = "detected"


@dataclass(frozen=True)
class Setting:
    """One effective value.

    Attributes:
        key: Its name (`target`, `profiles-dir`).
        value: The value, or None when nothing sets it (or it cannot be found).
        source: Which layer set it.
        detail: Exactly where (`--target`, `DBT_TARGET`, `dot_environments.yml:13`, a path).
    """

    key: str
    value: str | None
    source: Source
    detail: str = ""

    def to_json(self) -> dict[str, str | None]:
        """The setting as plain data."""
        return {
            "key": self.key,
            "value": self.value,
            "source": self.source.value,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Flags:
    """Values given on the command line (None: not given)."""

    env: str | None = None
    target: str | None = None
    profiles_dir: Path | None = None
    runtime: str | None = None
    project: str | None = None
    """How the project was named on the command line (`--project shop`, `--project-dir`)."""


def environment_setting(envs: EnvironmentsConfig, flag: str | None) -> Setting:
    """The environment: `--env`, else the files' `environment.default`, else none."""
    if flag is not None:
        return Setting("environment", flag, Source.FLAG, "--env")
    default = envs.default
    if default is not None:
        return Setting("environment", default, Source.ENVIRONMENT_FILE, _origin(envs, None))
    return Setting("environment", None, Source.DEFAULT, "no environments file, or no default")


def profiles_dir_setting(
    project_dir: Path,
    *,
    env: Environment | None,
    entry: ProjectEntry | None,
    flag: Path | None,
    environ: Mapping[str, str],
    envs: EnvironmentsConfig | None = None,
) -> Setting:
    """The folder of profiles.yml: flag, environment file, DBT_PROFILES_DIR, user config, dbt."""
    key = "profiles-dir"
    if flag is not None:
        return Setting(key, str(_absolute(flag)), Source.FLAG, "--profiles-dir")
    from_env = _env_flag(env, key)
    if from_env is not None:
        where = _origin(envs, env, key) if envs is not None else ""
        return Setting(key, str(_absolute(Path(from_env))), Source.ENVIRONMENT_FILE, where)
    if environ.get("DBT_PROFILES_DIR"):
        value = _absolute(Path(environ["DBT_PROFILES_DIR"]))
        return Setting(key, str(value), Source.ENV_VAR, "DBT_PROFILES_DIR")
    if entry is not None:
        return Setting(key, str(entry.profiles_dir), Source.USER_CONFIG, _user_config_file(environ))
    clean = {k: v for k, v in environ.items() if k != "DBT_PROFILES_DIR"}
    try:
        found = profiles.find_profiles_dir(project_dir, flag_dir=None, environ=clean)
    except ProfileError as e:
        return Setting(key, None, Source.DEFAULT, e.message)
    where = "the project folder" if found == project_dir.absolute() else "~/.dbt"
    return Setting(key, str(found), Source.DEFAULT, f"dbt's search found it in {where}")


def target_setting(
    *,
    env: Environment | None,
    entry: ProjectEntry | None,
    flag: str | None,
    environ: Mapping[str, str],
    profile_default: str | None,
    envs: EnvironmentsConfig | None = None,
) -> Setting:
    """The target: flag, environment file, DBT_TARGET, user config, the profile's `target:`."""
    if flag is not None:
        return Setting("target", flag, Source.FLAG, "--target")
    from_env = _env_flag(env, "target")
    if from_env is not None:
        where = _origin(envs, env, "target") if envs is not None else ""
        return Setting("target", from_env, Source.ENVIRONMENT_FILE, where)
    if environ.get("DBT_TARGET"):
        return Setting("target", environ["DBT_TARGET"], Source.ENV_VAR, "DBT_TARGET")
    if entry is not None:
        return Setting("target", entry.target, Source.USER_CONFIG, _user_config_file(environ))
    detail = "the profile's `target:` in profiles.yml"
    return Setting("target", profile_default, Source.DEFAULT, detail)


def runtime_setting(
    *, env: Environment | None, entry: ProjectEntry | None, flag: str | None
) -> Setting:
    """The runtime: flag, environment file (`runtime:`), user config, `local`."""
    if flag is not None:
        return Setting("runtime", flag, Source.FLAG, "--runtime")
    if env is not None and env.runtime is not None:
        return Setting("runtime", env.runtime, Source.ENVIRONMENT_FILE, "runtime:")
    if entry is not None:
        return Setting("runtime", entry.runtime, Source.USER_CONFIG, "")
    return Setting("runtime", DEFAULT_RUNTIME, Source.DEFAULT, "")


def datum_home_setting(environ: Mapping[str, str]) -> Setting:
    """`$DATUM_HOME`, or `~/.datum`."""
    home = str(datum_home(environ))
    if environ.get("DATUM_HOME"):
        return Setting("datum-home", home, Source.ENV_VAR, "DATUM_HOME")
    return Setting("datum-home", home, Source.DEFAULT, "~/.datum")


def profile_default_target(profiles_dir: str | None, profile: str | None) -> str | None:
    """The `target:` of a profile in `profiles_dir/profiles.yml`, if it can be read."""
    if profiles_dir is None or profile is None:
        return None
    try:
        loaded = profiles.load_profiles(Path(profiles_dir) / profiles.PROFILES_FILE)
    except ProfileError:
        return None
    body = loaded.get(profile)
    target = body.get("target") if isinstance(body, dict) else None
    return None if target is None else str(target)


def _env_flag(env: Environment | None, key: str) -> str | None:
    if env is None:
        return None
    value = env.flags.get(key)
    return None if value is None or isinstance(value, bool | list | dict) else str(value)


def _origin(envs: EnvironmentsConfig | None, env: Environment | None, key: str = "") -> str:
    """`dot_environments.yml:13` for the block that last set `key` (or `environment.default`)."""
    if envs is None:
        return ""
    where = ""
    for layer in envs.layers:
        if layer.doc is None:
            continue
        section = layer.config.environment
        if not key:
            if section.default is not None:
                where = layer.doc.where(("environment", "default"))
            continue
        blocks = [("all", section.all)]
        if env is not None and env.name is not None and env.name in section.named:
            blocks.append((env.name, section.named[env.name]))
        for name, block in blocks:
            for flag in block.model_extra or {}:
                if flag.replace("_", "-") == key:
                    where = layer.doc.where(("environment", name, flag))
    return where


def _user_config_file(environ: Mapping[str, str]) -> str:
    return str(datum_home(environ) / CONFIG_FILE)


def _absolute(path: Path) -> Path:
    return path.expanduser().absolute()


def resolve_settings(
    project_dir: Path | None, *, flags: Flags, environ: Mapping[str, str], home: Path
) -> list[Setting]:
    """Every effective setting of a project (or only the user-level ones without a project).

    Raises:
        ConfigError: config.yaml or the project's environments files are invalid.
    """
    # the user config's models load only where it is read (30 ms a run otherwise)
    from datum_dot.home.userconfig import config_path, format_branch_envs, load_user_config

    config = load_user_config(home)
    out = [datum_home_setting(environ)]
    if project_dir is not None:
        out += _project_settings(project_dir, config, flags=flags, environ=environ)
    hook = config.webhook
    for field in ("host", "port", "github_secret_env", "branch_envs"):
        source = Source.USER_CONFIG if field in hook.model_fields_set else Source.DEFAULT
        raw = getattr(hook, field)
        if isinstance(raw, dict):
            value: str | None = format_branch_envs(raw) or None
        else:
            value = None if raw is None else str(raw)
        key = f"webhook.{field.replace('_', '-')}"
        out.append(Setting(key, value, source, str(config_path(home))))
    return out + _store_and_warm_settings(config, environ, home)


def _store_and_warm_settings(
    config: UserConfig, environ: Mapping[str, str], home: Path
) -> list[Setting]:
    """The run history's store and the warm runner: config.yaml, below their variables."""
    # lazy: the connection string's parts are read only here
    from datum_dot.home.dburl import URL_VARIABLE, database_url
    from datum_dot.home.userconfig import config_path

    where = str(config_path(home))
    found = database_url(home, environ)
    if found is None:
        store = Setting("database.url", None, Source.DEFAULT, f"SQLite under {home}")
    elif found.source == URL_VARIABLE:
        # shown as host, port and database only: the variable may hold a password
        store = Setting("database.url", found.where(), Source.ENV_VAR, URL_VARIABLE)
    else:
        store = Setting("database.url", found.where(), Source.USER_CONFIG, where)
    out = [store]
    variables = (
        ("database.artifacts-to-db", "DATUM_ARTIFACTS_TO_DB",
         str(config.database.artifacts_to_db).lower(),
         "artifacts_to_db" in config.database.model_fields_set),
        ("warm", "DOT_WARM", config.warm.mode, "mode" in config.warm.model_fields_set),
    )  # fmt: skip
    for key, variable, value, in_config in variables:
        if environ.get(variable, "").strip():
            out.append(Setting(key, environ[variable].strip(), Source.ENV_VAR, variable))
        else:
            out.append(Setting(key, value, Source.USER_CONFIG if in_config else Source.DEFAULT,
                               where))  # fmt: skip
    idle = config.warm.idle_timeout
    in_config = "idle_timeout" in config.warm.model_fields_set
    out.append(Setting("warm.idle-timeout", f"{idle}s",
                       Source.USER_CONFIG if in_config else Source.DEFAULT, where))  # fmt: skip
    return out


def _project_settings(
    project_dir: Path, config: UserConfig, *, flags: Flags, environ: Mapping[str, str]
) -> list[Setting]:
    from datum_dot.home.userconfig import config_path, find_project_by_path

    found = find_project_by_path(config, project_dir)
    entry = found[1] if found else None
    where = str(config_path(datum_home(environ)))
    out = [
        Setting("project", found[0], Source.USER_CONFIG, where)
        if found
        else Setting("project", None, Source.DEFAULT, "not registered: dot init"),
        Setting("project-path", str(project_dir), Source.FLAG, flags.project)
        if flags.project
        else Setting(
            "project-path", str(project_dir), Source.DEFAULT, "dbt_project.yml found here"
        ),
    ]
    envs = load_environments(project_dir)
    env_setting = environment_setting(envs, flags.env)
    env = envs.resolve(env_setting.value)
    try:
        profile: str | None = profiles.read_project_profile_name(project_dir)
        profile_detail = str(project_dir / "dbt_project.yml")
    except (ConfigError, ProfileError) as e:
        profile, profile_detail = None, e.message
    folder = profiles_dir_setting(
        project_dir, env=env, entry=entry, flag=flags.profiles_dir, environ=environ, envs=envs
    )
    target = target_setting(
        env=env,
        entry=entry,
        flag=flags.target,
        environ=environ,
        profile_default=profile_default_target(folder.value, profile),
        envs=envs,
    )
    installed = dbtcore.versions().get("dbt-core")
    registered = f"; {entry.dbt_version} at registration" if entry and entry.dbt_version else ""
    return [
        *out,
        env_setting,
        Setting("profile", profile, Source.PROJECT_FILE, profile_detail),
        folder,
        target,
        runtime_setting(env=env, entry=entry, flag=flags.runtime),
        Setting("dbt-version", installed, Source.DETECTED, f"installed dbt-core{registered}"),
    ]

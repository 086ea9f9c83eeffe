"""`run_preflight`: every check of `dot validate` for one project, in order; nothing changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from datum_dot.errors import ConfigError
from datum_dot.home import effective
from datum_dot.home.settings import DEFAULT_RUNTIME
from datum_dot.home.userconfig import LoadedConfig, read_user_config
from datum_dot.preflight import dbt, project, setup
from datum_dot.preflight.model import Check, Report, Status
from datum_dot.preflight.store import check_history_store


@dataclass(frozen=True)
class Options:
    """What to validate.

    Attributes:
        env: The environment (None: the default one).
        target: `--target`, overriding the environment's.
        profiles_dir: `--profiles-dir`, overriding dbt's search.
        connection: Also test the connection with `dbt debug`.
    """

    env: str | None = None
    target: str | None = None
    profiles_dir: Path | None = None
    connection: bool = False


def run_preflight(
    project_dir: Path, *, home: Path, environ: Mapping[str, str], options: Options
) -> Report:
    """Run every check for a dbt project; nothing is changed.

    Args:
        project_dir: The folder of dbt_project.yml.
        home: `$DATUM_HOME`.
        environ: The environment variables runs would see.
        options: What to validate.

    Returns:
        Every check, in a fixed order.
    """
    loaded: LoadedConfig | ConfigError
    try:
        loaded = read_user_config(home)
    except ConfigError as e:
        loaded = e
    registration, project_id, entry = setup.check_registration(project_dir, home, loaded)
    dbt_project, profile_name = project.check_dbt_project(project_dir)
    dot_config, envs, env = project.check_dot_config(project_dir, options.env)
    profiles_check, profiles_file, profiles = project.check_profiles_file(
        project_dir,
        envs=envs,
        env=env,
        entry=entry,
        flag=options.profiles_dir,
        environ=environ,
    )
    profile_check, body = project.check_profile(profile_name, profiles_file, profiles)
    target = None
    if body is not None:
        default = body.get("target")
        target = effective.target_setting(
            env=env,
            entry=entry,
            flag=options.target,
            environ=environ,
            profile_default=None if default is None else str(default),
            envs=envs,
        )
    target_check, adapter_type = project.check_target(profile_name, body, target, profiles_file)
    runtime = effective.runtime_setting(env=env, entry=entry, flag=None).value
    target_ok = target_check.status is Status.OK and target is not None
    checks: tuple[Check, ...] = (
        dbt_project,
        dot_config,
        profiles_check,
        profile_check,
        target_check,
        project.check_git(project_dir),
        project.check_isolated_profiles(project_dir),
        registration,
        setup.check_key(home, project_id),
        setup.check_token(home, registered=project_id is not None),
        setup.check_crontab(project_id, entry, environ),
        check_history_store(home, environ),
        dbt.check_dbt(runtime or DEFAULT_RUNTIME),
        dbt.check_adapter(adapter_type),
        dbt.check_connection(
            requested=options.connection,
            project_dir=project_dir,
            env_name=env.name if env is not None else options.env,
            profiles_dir=profiles_file.parent if profiles_file is not None else None,
            target=target.value if target_ok and target is not None else None,
            environ=environ,
        ),
    )
    return Report(project_dir=project_dir, checks=checks)

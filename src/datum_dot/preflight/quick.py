"""The cheap pre-flight checks a run makes before it starts.

`dot validate` runs every check; a run first makes the ones that cost no more than reading a
few files (well under 50 ms): dbt_project.yml, dot's config files and the environment's vars,
profiles.yml, the profile and the target, and the private key's file mode. The checks that
import dbt, start git or reach the warehouse are left to `dot validate`. A failure stops the
run with the message `dot validate` would show, and exit 20.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from datum_dot.errors import ConfigError, PreflightError
from datum_dot.home import effective, keys
from datum_dot.home.privatefiles import PRIVATE_FILE_MODE, file_mode
from datum_dot.preflight import project
from datum_dot.preflight.model import Check, Report, Status

if TYPE_CHECKING:
    from datum_dot.home.userconfig import ProjectEntry


def run_cheap_preflight(
    project_dir: Path,
    *,
    home: Path,
    environ: Mapping[str, str],
    env_name: str | None,
    target: str | None = None,
    profiles_dir: Path | None = None,
) -> Report:
    """The cheap checks for a run of `env_name` in `project_dir`; nothing is changed.

    Args:
        project_dir: The folder of dbt_project.yml.
        home: `$DATUM_HOME`.
        environ: The environment variables the run sees.
        env_name: The run's environment (None: the default one).
        target: A `--target` given to dbt, overriding the environment's.
        profiles_dir: A `--profiles-dir` given to dbt.

    Returns:
        The checks, in `dot validate`'s order.
    """
    project_id, entry, registration = _registration(project_dir, home)
    dbt_project, profile_name = project.check_dbt_project(project_dir)
    dot_config, envs, env = project.check_dot_config(project_dir, env_name, flag_names=False)
    profiles_check, profiles_file, loaded = project.check_profiles_file(
        project_dir, envs=envs, env=env, entry=entry, flag=profiles_dir, environ=environ
    )
    profile_check, body = project.check_profile(profile_name, profiles_file, loaded)
    setting = None
    if body is not None:
        default = body.get("target")
        setting = effective.target_setting(
            env=env,
            entry=entry,
            flag=target,
            environ=environ,
            profile_default=None if default is None else str(default),
            envs=envs,
        )
    target_check, _ = project.check_target(profile_name, body, setting, profiles_file)
    checks: tuple[Check, ...] = (
        dbt_project,
        dot_config,
        profiles_check,
        profile_check,
        target_check,
    )
    if registration is not None:
        checks = (*checks, registration)
    return Report(project_dir=project_dir, checks=(*checks, _key_mode(home, project_id)))


def raise_for_failure(report: Report, *, prog: str) -> None:
    """Stop the run at the first failed check, with its message and fix.

    Raises:
        PreflightError: A check failed (exit 20).
    """
    failed = [c for c in report.checks if c.status is Status.FAIL]
    if not failed:
        return
    first = failed[0]
    more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
    fix = f"{first.fix}; " if first.fix else ""
    raise PreflightError(
        f"pre-flight check failed: {first.name}: {first.detail}{more}",
        f"{fix}`{prog} validate` shows every check; --no-preflight skips them",
    )


def _registration(
    project_dir: Path, home: Path
) -> tuple[str | None, ProjectEntry | None, Check | None]:
    """The project's id and registration; a check only when config.yaml does not load."""
    from datum_dot.home.settings import CONFIG_FILE

    if not (home / CONFIG_FILE).exists():
        return None, None, None  # nothing registered: the config's models (30 ms) need not load
    from datum_dot.home.userconfig import find_project_by_path, load_user_config

    try:
        config = load_user_config(home)
    except ConfigError as e:
        return None, None, Check("registration", Status.FAIL, e.message, e.hint)
    found = find_project_by_path(config, project_dir)
    return (None, None, None) if found is None else (found[0], found[1], None)


def _key_mode(home: Path, project_id: str | None) -> Check:
    """The private key, when there is one, is readable by its owner only (no key is loaded)."""
    name = "key"
    if project_id is None:
        return Check(name, Status.SKIP, "not registered: no key pair")
    private = keys.key_files(home, project_id).private
    if not private.exists():
        return Check(name, Status.SKIP, f"{private} does not exist (`dot validate` says more)")
    mode = file_mode(private)
    if mode != PRIVATE_FILE_MODE:
        detail = f"{private} has mode {mode:04o}: others may read the private key"
        return Check(name, Status.FAIL, detail, f"chmod 600 {private}")
    return Check(name, Status.OK, f"{private}, mode 0600")

"""Checks of the dbt project itself: dbt_project.yml, dot's config files, profiles.yml, git."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datum_dot import dbtcore
from datum_dot.config import profiles
from datum_dot.config.environments import Environment, EnvironmentsConfig, load_environments
from datum_dot.config.variables import check_vars, load_var_declarations
from datum_dot.config.yamlfile import safe_load
from datum_dot.errors import ConfigError, GitError, ProfileError
from datum_dot.home import effective
from datum_dot.home.privatefiles import PRIVATE_FILE_MODE, file_mode
from datum_dot.preflight.model import AutoFix, Check, FixKind, Status
from datum_dot.vcs import git, ownership

if TYPE_CHECKING:
    from datum_dot.home.userconfig import ProjectEntry

DOT_DIR = ".dot"


@dataclass(frozen=True)
class ProfileFacts:
    """What the profile checks found, for the checks after them.

    Attributes:
        file: The profiles.yml in use, when found and valid.
        profile: The profile's body, when defined.
        target: The target the run would use, when defined in the profile.
        adapter_type: The target's `type:`.
    """

    file: Path | None = None
    profile: Mapping[str, Any] | None = None
    target: str | None = None
    adapter_type: str | None = None


def check_dbt_project(project_dir: Path) -> tuple[Check, str | None]:
    """dbt_project.yml is valid YAML with a `name:` and a literal `profile:`.

    Returns:
        The check, and the profile name when there is one.
    """
    name = "dbt_project.yml"
    path = project_dir / name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        return Check(name, Status.FAIL, f"cannot read {path}: {e.strerror}", f"ls -l {path}"), None
    try:
        profile = profiles.profile_name_from_text(text, source=str(path))
    except (ConfigError, ProfileError) as e:
        return Check(name, Status.FAIL, e.message, e.hint), None
    data = safe_load(text)  # it parsed above
    project_name = data.get("name")
    if not project_name:
        fix = "add `name: <project_name>` to dbt_project.yml"
        return Check(name, Status.FAIL, f"{path} has no `name:`", fix), profile
    return Check(name, Status.OK, f"project {project_name}, profile {profile}"), profile


def check_dot_config(
    project_dir: Path, env_name: str | None, *, flag_names: bool = True
) -> tuple[Check, EnvironmentsConfig | None, Environment | None]:
    """dot_environments.yml (+ user file) and dot_vars.yml validate, and the env's vars pass.

    Args:
        project_dir: The folder of dbt_project.yml.
        env_name: The environment (None: the default one).
        flag_names: Also check the environments' keys against dbt's options (imports dbt,
            a second or more: a run's own pre-flight leaves that to dbt).

    Returns:
        The check, the environments config and the resolved environment (None when invalid).
    """
    name = "dot config"
    try:
        envs = load_environments(project_dir)
        env = envs.resolve(env_name)
        declarations = load_var_declarations(project_dir)
        options = _dbt_options() if flag_names else None
        if options is not None:
            envs.check_flag_names(options)
    except ConfigError as e:
        return Check(name, Status.FAIL, e.message, e.hint), None, None
    vars_check = check_vars(env.vars, declarations, sources=env.var_sources, env_name=env.name)
    if vars_check.problems:
        detail = "; ".join(vars_check.problems)
        return Check(name, Status.FAIL, detail, "fix the vars or dot_vars.yml"), envs, env
    files = [p.name for p in envs.files] + (["dot_vars.yml"] if declarations.doc else [])
    if not files:
        return Check(name, Status.OK, "no dot config files: plain dbt settings"), envs, env
    detail = f"{', '.join(files)} valid; environment {env.name or '(none)'}"
    if vars_check.warnings:
        detail = f"{detail}; {'; '.join(vars_check.warnings)}"
        fix = "declare the var in dot_vars.yml, or correct its name"
        return Check(name, Status.WARN, detail, fix), envs, env
    return Check(name, Status.OK, detail), envs, env


def _dbt_options() -> frozenset[str] | None:
    """Every option of the installed dbt's commands; None without dbt-core (the dbt check says so)."""
    if "dbt-core" not in dbtcore.versions():
        return None
    return dbtcore.all_option_names()


def check_profiles_file(
    project_dir: Path,
    *,
    envs: EnvironmentsConfig | None,
    env: Environment | None,
    entry: ProjectEntry | None,
    flag: Path | None,
    environ: Mapping[str, str],
) -> tuple[Check, Path | None, dict[str, Any] | None]:
    """profiles.yml is found where dbt would look (or where we are told), readable and valid."""
    name = "profiles.yml"
    folder = effective.profiles_dir_setting(
        project_dir, env=env, entry=entry, flag=flag, environ=environ, envs=envs
    )
    if folder.value is None:
        return (
            Check(
                name,
                Status.FAIL,
                folder.detail,
                "create ~/.dbt/profiles.yml, or pass --profiles-dir / set DBT_PROFILES_DIR",
            ),
            None,
            None,
        )
    path = Path(folder.value) / profiles.PROFILES_FILE
    origin = f"{folder.source.value}{f': {folder.detail}' if folder.detail else ''}"
    if not path.is_file():
        fix = {
            effective.Source.FLAG: "pass --profiles-dir <folder of profiles.yml>",
            effective.Source.ENVIRONMENT_FILE: f"correct profiles-dir at {folder.detail}",
            effective.Source.ENV_VAR: "set DBT_PROFILES_DIR to the folder of profiles.yml",
            effective.Source.USER_CONFIG: "dot config set profiles-dir <folder of profiles.yml>",
        }.get(folder.source, f"create {path}")
        return Check(name, Status.FAIL, f"{path} not found ({origin})", fix), None, None
    try:
        loaded = profiles.load_profiles(path)
    except ProfileError as e:
        return Check(name, Status.FAIL, e.message, e.hint), None, None
    except OSError as e:
        detail = f"cannot read {path}: {e.strerror}"
        return Check(name, Status.FAIL, detail, f"chmod u+r {path}"), None, None
    return Check(name, Status.OK, f"{path} ({origin})"), path, loaded


def check_profile(
    profile: str | None, path: Path | None, loaded: Mapping[str, Any] | None
) -> tuple[Check, Mapping[str, Any] | None]:
    """The profile named by dbt_project.yml's `profile:` is in profiles.yml."""
    name = "profile"
    if profile is None or path is None or loaded is None:
        return Check(name, Status.SKIP, "needs dbt_project.yml and profiles.yml"), None
    body = loaded.get(profile)
    defined = ", ".join(sorted(str(k) for k in loaded if k != "config")) or "(none)"
    if not isinstance(body, dict):
        return (
            Check(
                name,
                Status.FAIL,
                f"profile '{profile}' (dbt_project.yml `profile:`) is not in {path}; "
                f"defined: {defined}",
                f"add profile '{profile}' to {path}, or set `profile:` in dbt_project.yml to "
                "one of the defined ones",
            ),
            None,
        )
    if not isinstance(body.get("outputs"), dict):
        fix = "see https://docs.getdbt.com/docs/core/connect-data-platform/profiles.yml"
        detail = f"profile '{profile}' in {path} has no `outputs:` mapping"
        return Check(name, Status.FAIL, detail, fix), None
    return Check(name, Status.OK, f"'{profile}' in {path}"), body


def check_target(
    profile: str | None,
    body: Mapping[str, Any] | None,
    setting: effective.Setting | None,
    path: Path | None,
) -> tuple[Check, str | None]:
    """The target the run would use is an output of the profile.

    Returns:
        The check, and the target's adapter `type:` when it is defined.
    """
    name = "target"
    if body is None or setting is None or path is None:
        return Check(name, Status.SKIP, "needs the profile"), None
    outputs = {str(k): v for k, v in body["outputs"].items()}
    defined = ", ".join(sorted(outputs)) or "(none)"
    origin = f"{setting.source.value}{f': {setting.detail}' if setting.detail else ''}"
    if setting.value is None:
        detail = f"no target: profile '{profile}' has no `target:` and nothing else names one"
        return Check(name, Status.FAIL, detail, f"add `target: <name>` to '{profile}'"), None
    if setting.value not in outputs:
        return (
            Check(
                name,
                Status.FAIL,
                f"target '{setting.value}' ({origin}) is not an output of profile '{profile}' "
                f"in {path}; defined: {defined}",
                f"add output '{setting.value}' to profile '{profile}' in {path}, or use one of: "
                f"{defined}",
            ),
            None,
        )
    settings = outputs[setting.value]
    adapter = settings.get("type") if isinstance(settings, dict) else None
    return Check(name, Status.OK, f"'{setting.value}' ({origin})"), (
        None if adapter is None else str(adapter)
    )


def check_git(project_dir: Path) -> Check:
    """The project is in a git repository, and `.dot/` is ignored there."""
    name = "git"
    try:
        root = git.find_repo_root(project_dir)
        ignored = root is not None and git.is_ignored(root, project_dir / DOT_DIR)
    except GitError as e:
        return Check(name, Status.WARN, e.message, e.hint)
    if root is None:
        return Check(
            name,
            Status.WARN,
            f"{project_dir} is not in a git repository: isolated builds (env@ref) need one",
            "git init && git add -A && git commit -m 'dbt project'",
        )
    if not ignored:
        gitignore = project_dir / ".gitignore"
        return Check(
            name,
            Status.WARN,
            f"repository {root}; .dot/ (build worktrees, profiles) is not git-ignored",
            f"add `.dot/` to {gitignore}",
            (AutoFix(FixKind.IGNORE_DOT_DIR, f"add .dot/ to {gitignore}", (gitignore,)),),
        )
    return Check(name, Status.OK, f"repository {root}; .dot/ is ignored")


def check_isolated_profiles(project_dir: Path) -> Check:
    """Every isolated build's profiles.yml is readable by its owner only."""
    name = "isolated profiles"
    # Only files reached without a link: `--fix` must never chmod a file outside the project.
    found = [
        p
        for p in sorted((project_dir / DOT_DIR / "build").glob("*/env/*/profiles.yml"))
        if ownership.kind_of(p) == "file" and ownership.is_below_without_links(project_dir, p)
    ]
    if not found:
        return Check(name, Status.OK, "no isolated builds yet")
    loose = [p for p in found if file_mode(p) != PRIVATE_FILE_MODE]
    if not loose:
        return Check(name, Status.OK, f"{len(found)} isolated profiles.yml, all mode 0600")
    listing = " ".join(str(p) for p in loose)
    return Check(
        name,
        Status.FAIL,
        f"{len(loose)} isolated profiles.yml readable by others: {listing}",
        f"chmod 600 {listing}",
        (AutoFix(FixKind.CHMOD_PRIVATE, f"chmod 600 {listing}", tuple(loose)),),
    )

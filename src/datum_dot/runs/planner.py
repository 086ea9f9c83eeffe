"""Gather what a plan needs (config files, git, profiles.yml) and assemble the BuildPlan.

Planning reads and never writes: a dry run and a real run make the same plan, and nothing is
created until `workspace.py` makes the plan real.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datum_dot.config import profiles
from datum_dot.config.environments import (
    Environment,
    EnvironmentsConfig,
    deep_merge,
    load_environments,
)
from datum_dot.config.variables import (
    check_vars,
    load_var_declarations,
    parse_cli_vars,
    raise_for_problems,
    split_vars_args,
)
from datum_dot.config.yamlfile import safe_load
from datum_dot.dbtcore import DBT_COMMANDS
from datum_dot.errors import (
    BaselineError,
    DotError,
    NotARepositoryError,
    ProjectNotFoundError,
    UsageError,
)
from datum_dot.home.settings import CONFIG_FILE, DEFAULT_RUNTIME, datum_home
from datum_dot.runs import isolatedprofiles
from datum_dot.runs.plan import (
    WRITING_COMMANDS,
    Baseline,
    BuildPlan,
    IsolatedBuild,
    defer_args,
    environment_flags,
    render_vars,
)
from datum_dot.runs.run import RunRequest
from datum_dot.runs.spec import Spec
from datum_dot.vcs import git, githead

if TYPE_CHECKING:
    from datum_dot.home.userconfig import ProjectEntry

OptionsLookup = Callable[[tuple[str, ...]], frozenset[str]]

DOT_DIR = ".dot"
PROJECT_FILE = "dbt_project.yml"
GROUP_COMMANDS = frozenset({"docs", "source"})
# Options that decide where dbt reads and writes; taken out of pass-through args so that an
# isolated build cannot be pointed back at the user's own profile or project.
_PLACEMENT_OPTIONS = {
    "--target": "target",
    "-t": "target",
    "--profiles-dir": "profiles-dir",
    "--project-dir": "project-dir",
}


@dataclass(frozen=True)
class _Placement:
    target: str | None = None
    profiles_dir: str | None = None


def find_project_dir(start: Path) -> Path:
    """Find the dbt project folder: `start` or the nearest parent holding dbt_project.yml.

    Raises:
        ProjectNotFoundError: No folder from `start` upwards holds dbt_project.yml.
    """
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    raise ProjectNotFoundError(
        f"no {PROJECT_FILE} in {start} or any folder above it",
        "run dot from inside a dbt project, or pass --project-dir <folder>",
    )


def command_key(command: Sequence[str]) -> tuple[str, ...]:
    """The words naming dbt's click command: (`docs`, `generate`) but only (`run-operation`,)."""
    return tuple(command[:2]) if command[0] in GROUP_COMMANDS else (command[0],)


def all_options(options_for: OptionsLookup) -> frozenset[str]:
    """Every option string at least one dbt command accepts: what an environment key may name."""
    keys = [
        (command, verb) if verb else (command,)
        for command, verbs in DBT_COMMANDS.items()
        for verb in verbs or ("",)
    ]
    return frozenset().union(*(options_for(key) for key in keys))


def make_plan(request: RunRequest, *, options_for: OptionsLookup) -> BuildPlan:
    """Plan a run: resolve config, vars, profiles and git refs, and assemble dbt's argv.

    Args:
        request: What to run.
        options_for: Which option strings a dbt command accepts (from dbt's own definitions).

    Returns:
        The plan; nothing on disk was changed.

    Raises:
        DotError: Any bad input (config, vars, spec, profiles, refs, baselines).
    """
    project_dir = request.project_dir.resolve()
    if not (project_dir / PROJECT_FILE).is_file():
        raise ProjectNotFoundError(
            f"no {PROJECT_FILE} in {project_dir}",
            "run dot from inside a dbt project, or pass --project-dir <folder>",
        )
    environ = request.environ if request.environ is not None else os.environ
    envs = load_environments(project_dir)
    env = envs.resolve(request.spec.env)
    extra, vars_texts = split_vars_args(request.dbt_args)
    extra, placed = _split_placement(extra)
    cli_vars: dict[str, Any] = dict(request.cli_vars)
    for text in vars_texts:
        cli_vars = deep_merge(cli_vars, parse_cli_vars(text))
    variables = deep_merge(env.vars, cli_vars)
    sources = {**env.var_sources, **dict.fromkeys(cli_vars, "--vars on the command line")}
    vars_check = check_vars(
        variables, load_var_declarations(project_dir), sources=sources, env_name=env.name
    )
    raise_for_problems(vars_check)

    registered = _registered(project_dir, environ)
    target = placed.target or _flag_str(env, "target")
    flag_dir = placed.profiles_dir or _flag_str(env, "profiles-dir")
    # The user config sits below the environment variables dbt reads (see `effective`).
    forced_target = placed.target
    if target is None and not environ.get("DBT_TARGET") and registered is not None:
        target = forced_target = registered.target
    if flag_dir is None and not environ.get("DBT_PROFILES_DIR") and registered is not None:
        flag_dir = str(registered.profiles_dir)
    profiles_dir = profiles.find_profiles_dir(
        project_dir, flag_dir=Path(flag_dir) if flag_dir else None, environ=environ
    )
    repo_root = (
        git.find_repo_root(project_dir) if request.spec.is_isolated or request.defer else None
    )
    isolated = None
    if request.spec.ref is not None:
        isolated = _plan_isolated(
            request.spec.ref,
            env,
            project_dir,
            repo_root,
            profiles_dir / "profiles.yml",
            target or environ.get("DBT_TARGET") or None,
            pinned=request.commit,
        )
    baseline = _plan_baseline(request.defer, envs, project_dir, repo_root, env)
    if (
        baseline is not None
        and isolated is not None
        and baseline.state_dir.parent == isolated.env_dir
    ):
        raise BaselineError(
            f"--defer {request.defer} is the build being run ({request.spec} is commit"
            f" {isolated.short_hash}, environment {env.dir_name}): a build cannot defer to itself",
            "defer to another commit or environment, for example --defer prod@main",
        )

    # Only now ask dbt which flags the command takes: that imports dbt (about 1.5 s), and bad
    # refs, profiles and baselines above should be answered at once.
    key = command_key(request.command)
    accepted = options_for(key)
    envs.check_flag_names(all_options(options_for))
    dbt_project_dir = project_dir
    run_profiles_dir = profiles_dir
    target_path = project_dir / "target"
    log_path = project_dir / "logs"
    placement: list[tuple[str, Path]] = [
        ("--project-dir", project_dir),
        ("--profiles-dir", profiles_dir),
    ]
    dbt_env: dict[str, str] = {}
    deps: tuple[str, ...] = ()
    if isolated is not None:
        rel = project_dir.relative_to(repo_root) if repo_root else Path()
        dbt_project_dir = isolated.worktree / rel
        run_profiles_dir = isolated.env_dir
        target_path = isolated.env_dir / "target"
        log_path = isolated.env_dir / "logs"
        placement = [
            ("--project-dir", dbt_project_dir),
            ("--profiles-dir", run_profiles_dir),
            ("--target-path", target_path),
            ("--log-path", log_path),
        ]
        # dbt retry has ignored --target-path in some versions; it always reads these.
        dbt_env = {"DBT_TARGET_PATH": str(target_path), "DBT_LOG_PATH": str(log_path)}
        if request.deps and key != ("deps",):
            deps = ("deps", "--project-dir", str(dbt_project_dir),
                    "--profiles-dir", str(run_profiles_dir))  # fmt: skip
    placement_args = [
        part for opt, path in placement if opt in accepted for part in (opt, str(path))
    ]
    flag_args, notes = environment_flags(env, accepted, request.command)
    if forced_target and "--target" in accepted:
        flag_args = _replace_target(flag_args, forced_target)
    # `dbt retry` reuses the failed run's vars; pass only vars given on this command line.
    retry_vars = cli_vars if key == ("retry",) else variables
    var_args = render_vars(retry_vars) if "--vars" in accepted else []
    check = (
        isolated is not None
        and request.command[0] in WRITING_COMMANDS
        and not request.allow_unisolated
    )
    parse_args: tuple[str, ...] = ()
    if check:
        parse_accepted = options_for(("parse",))
        parse_flags, _ = environment_flags(env, parse_accepted, ("parse",))
        if forced_target:
            parse_flags = _replace_target(parse_flags, forced_target)
        parse_args = (
            *(
                part
                for opt, path in placement
                if opt in parse_accepted
                for part in (opt, str(path))
            ),
            *parse_flags,
            *render_vars(variables),
        )
    argv = (
        *request.command,
        *placement_args,
        *flag_args,
        *var_args,
        *defer_args(baseline, accepted, request.command),
        *extra,
    )
    return BuildPlan(
        spec=request.spec,
        env=env,
        command=request.command,
        source_project_dir=project_dir,
        project_dir=dbt_project_dir,
        profiles_dir=run_profiles_dir,
        target_path=target_path,
        log_path=log_path,
        vars=variables,
        dbt_args=tuple(argv),
        dbt_env=dbt_env,
        deps_args=deps,
        isolated=isolated,
        baseline=baseline,
        parse_args=parse_args,
        check_isolation=check,
        notes=tuple(notes),
        runtime=request.runtime
        or env.runtime
        or (registered.runtime if registered else None)
        or DEFAULT_RUNTIME,
        warnings=vars_check.warnings,
    )


def _plan_isolated(
    ref: str,
    env: Environment,
    project_dir: Path,
    repo_root: Path | None,
    profiles_file: Path,
    target: str | None,
    *,
    pinned: str | None = None,
) -> IsolatedBuild:
    if repo_root is None:
        raise NotARepositoryError(
            f"{project_dir} is not inside a git repository, so '@{ref}' cannot be built",
            "isolated builds check out a commit: cd into the project's git repository, or make "
            "one (git init && git add -A && git commit -m 'dbt project'); or drop the '@ref'",
        )
    # A pinned commit (resolved when a queued request was accepted) wins over where `ref` is now.
    commit = git.resolve_commit(repo_root, pinned or ref)
    short = git.short_hash(commit, env.isolation.hash_length)
    rel = project_dir.relative_to(repo_root)
    project_file = (rel / PROJECT_FILE).as_posix()
    text = git.read_file_at(repo_root, commit, project_file)
    if text is None:
        raise ProjectNotFoundError(
            f"commit {short} ('{ref}') has no {project_file}",
            f"pick a commit that has the dbt project: git log --oneline -- {project_file}",
        )
    profile_name = profiles.profile_name_from_text(text, source=f"{project_file} at {short}")
    build_dir = project_dir / DOT_DIR / "build" / short
    env_dir = build_dir / "env" / env.dir_name
    change = isolatedprofiles.plan_isolated_profile(
        source=profiles_file,
        profile=profile_name,
        target=target,
        dest_dir=env_dir,
        schema_template=env.isolation.schema_template,
        short_hash=short,
        env=env.dir_name,
        ref_slug=isolatedprofiles.ref_slug(ref),
    )
    return IsolatedBuild(
        ref=ref,
        commit=commit,
        short_hash=short,
        build_dir=build_dir,
        worktree=build_dir / "worktree",
        env_dir=env_dir,
        profile=change,
    )


def _plan_baseline(
    defer: Spec | None,
    envs: EnvironmentsConfig,
    project_dir: Path,
    repo_root: Path | None,
    env: Environment,
) -> Baseline | None:
    if defer is None or defer.ref is None:
        return None
    if repo_root is None:
        raise NotARepositoryError(
            f"{project_dir} is not inside a git repository, so --defer {defer} cannot resolve",
            "baselines are isolated builds of commits: cd into the project's git repository",
        )
    base_env = envs.resolve(defer.env)
    commit = git.resolve_commit(repo_root, defer.ref)
    short = git.short_hash(commit, env.isolation.hash_length)
    state_dir = project_dir / DOT_DIR / "build" / short / "env" / base_env.dir_name / "target"
    build_cmd = f"dot build {defer}"
    if not state_dir.is_dir():
        raise BaselineError(
            f"baseline {defer} (commit {short}) has not been built: {state_dir} does not exist",
            f"build it first: {build_cmd}",
        )
    if not (state_dir / "manifest.json").is_file():
        raise BaselineError(
            f"baseline {defer} (commit {short}) has no manifest.json in {state_dir}",
            f"rebuild it: {build_cmd}",
        )
    return Baseline(spec=defer, commit=commit, state_dir=state_dir)


def _split_placement(args: Sequence[str]) -> tuple[list[str], _Placement]:
    rest: list[str] = []
    found: dict[str, str] = {}
    items = iter(args)
    for arg in items:
        name, eq, value = arg.partition("=")
        if name in _PLACEMENT_OPTIONS and arg.startswith("--") and eq:
            found[_PLACEMENT_OPTIONS[name]] = value
        elif arg in _PLACEMENT_OPTIONS:
            nxt = next(items, None)
            if nxt is None:
                raise UsageError(f"{arg} was given without a value", f"pass {arg} <value>")
            found[_PLACEMENT_OPTIONS[arg]] = nxt
        else:
            rest.append(arg)
    if "project-dir" in found:
        raise UsageError(
            "--project-dir after `--` would bypass dot's choice of project",
            "give it to dot instead: dot <command> --project-dir <folder> [spec]",
        )
    return rest, _Placement(target=found.get("target"), profiles_dir=found.get("profiles-dir"))


def _registered(project_dir: Path, environ: Mapping[str, str]) -> ProjectEntry | None:
    """The project's registration in the user config (`dot init`), if it has one."""
    home = datum_home(environ)
    if not (home / CONFIG_FILE).exists():
        return None
    # lazy: a plain run of an unregistered project is spared the config models (about 12 ms)
    from datum_dot.home.userconfig import find_project_by_path, load_user_config

    found = find_project_by_path(load_user_config(home), project_dir)
    return found[1] if found is not None else None


def _replace_target(flag_args: list[str], target: str) -> list[str]:
    out: list[str] = []
    items = iter(flag_args)
    for arg in items:
        if arg == "--target":
            next(items, None)
            continue
        out.append(arg)
    return [*out, "--target", target]


def _flag_str(env: Environment, key: str) -> str | None:
    value = env.flags.get(key)
    return None if value is None or isinstance(value, bool | list | dict) else str(value)


def project_name(project_dir: Path) -> str:
    """The project's name for run ids: dbt_project.yml's `name`, made safe, else the folder's."""
    import re

    import yaml

    try:
        data = safe_load((project_dir / PROJECT_FILE).read_text()) or {}
    except (OSError, yaml.YAMLError):
        data = {}
    raw = data.get("name") if isinstance(data, dict) else None
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", str(raw or project_dir.name)).strip("-_")[:64]
    return name or "project"


def working_tree_commit(project_dir: Path) -> str | None:
    """The commit HEAD points at for a working-tree run, or None (no repository, no commit).

    Read from the repository's files where `githead` can (no GitPython import, no git
    process: this is on the path of every plain run), else asked of git.
    """
    found = githead.head_commit(project_dir)
    if found is not githead.UNREADABLE:
        return found
    repo_root = git.find_repo_root(project_dir)
    if repo_root is None:
        return None
    try:
        return git.resolve_commit(repo_root, "HEAD")
    except DotError:
        return None

"""Gather what a plan needs (config files, git, profiles.yml) and assemble the BuildPlan.

Planning reads and never writes: a dry run and a real run make the same plan, and nothing is
created until `workspace.py` makes the plan real. `make_plan` reads in order: the project, the
commit being built (if any), the settings files (from that commit for an isolated build, see
`commitfiles`), its vars, the profiles folder and target, and the baseline; the folders, flags
and parse arguments are then assembled by the pure functions of `plan.py`.

About 440 lines, over the house norm: one small function per input a plan reads, each raising
its own bad-input error, and where each setting came from. The git questions of isolated builds
and baselines are `isolatedplan`'s.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datum_dot.config import profiles
from datum_dot.config.environments import (
    Environment,
    deep_merge,
    load_environments,
)
from datum_dot.config.sources import Origin, SettingsFile
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
    DotError,
    ProjectNotFoundError,
    UsageError,
)
from datum_dot.home.settings import CONFIG_FILE, DEFAULT_RUNTIME, datum_home
from datum_dot.runs import commitfiles, deferplan, isolatedplan, stateparse
from datum_dot.runs.isolatedplan import DOT_DIR as DOT_DIR
from datum_dot.runs.isolatedplan import PROJECT_FILE as PROJECT_FILE
from datum_dot.runs.plan import (
    WRITING_COMMANDS,
    Baseline,
    BuildPlan,
    IsolatedBuild,
    OptionsLookup,
    StateFrom,
    defer_args,
    environment_flags,
    parse_arguments,
    place_run,
    render_vars,
    replace_target,
)
from datum_dot.runs.provenance import (
    FileSource,
    PlanSettings,
    Setting,
    flag_settings,
    var_settings,
)
from datum_dot.runs.run import RunRequest
from datum_dot.runs.state import StateHistory
from datum_dot.vcs import git, githead

if TYPE_CHECKING:
    from datum_dot.home.userconfig import ProjectEntry

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


def make_plan(
    request: RunRequest,
    *,
    options_for: OptionsLookup,
    states: StateHistory | None = None,
    target_folder: str = "target",
) -> BuildPlan:
    """Plan a run: resolve config, vars, profiles and git refs, and assemble dbt's argv.

    Args:
        request: What to run.
        options_for: Which option strings a dbt command accepts (from dbt's own definitions).
        states: The run history, where `--defer ENV` (no ref) finds the live state.
        target_folder: An isolated build's target folder name (`state` for a `--state-from`
            parse).

    Returns:
        The plan; nothing on disk was changed.

    Raises:
        DotError: Any bad input (config, vars, spec, profiles, refs, baselines).
    """
    project_dir = _checked_project_dir(request.project_dir)
    environ = request.environ if request.environ is not None else os.environ
    repo_root = (
        git.find_repo_root(project_dir)
        if request.spec.is_isolated or request.defer or request.state_from
        else None
    )
    built = None
    if request.spec.ref is not None:
        built = isolatedplan.built_commit(
            request.spec.ref, project_dir, repo_root, pinned=request.commit
        )
    # An isolated build reads the project's settings as they are in its commit.
    files = built.files if built is not None else commitfiles.checkout_files(project_dir)
    envs = load_environments(project_dir, project_file=files.environments)
    env = isolatedplan.resolve_env(envs, request.spec, files.environments)
    extra, vars_texts = split_vars_args(request.dbt_args)
    extra, placed = _split_placement(extra)
    run_vars = _resolve_vars(request.cli_vars, vars_texts, env, project_dir, files.variables)
    registered = _registered(project_dir, environ)
    committed_dir = project_dir if built is not None and built.files.project_profile else None
    found = _resolve_profiles(project_dir, env, placed, registered, environ, committed_dir)
    isolated = None
    profile_file = _profile_file(found.profiles_dir)
    if built is not None:
        isolated, profile_file = isolatedplan.plan_isolated(
            built,
            env,
            project_dir,
            found.profiles_dir / "profiles.yml",
            found.target or environ.get("DBT_TARGET") or None,
        )
    baseline = deferplan.plan_defer(
        request,
        # the live environment is what a plain `dot build ENV` runs: the checkout's settings
        load_environments(project_dir)
        if built is not None and request.defer is not None and request.defer.ref is None
        else envs,
        project_dir,
        repo_root,
        project=project_name(project_dir),
        states=states,
        environ=environ,
    )
    isolatedplan.refuse_self_defer(request, env, isolated, baseline)
    _refuse_two_states(request, extra)
    state_from = _plan_state_from(request, project_dir, options_for)

    # Only now ask dbt which flags the command takes: that imports dbt (about 1.5 s), and bad
    # refs, profiles and baselines above should be answered at once.
    key = command_key(request.command)
    accepted = options_for(key)
    envs.check_flag_names(all_options(options_for))
    where = place_run(
        project_dir, found.profiles_dir, isolated, repo_root, target_folder=target_folder
    )
    deps: tuple[str, ...] = ()
    if isolated is not None and request.deps and key != ("deps",):
        deps = ("deps", "--project-dir", str(where.project_dir),
                "--profiles-dir", str(where.profiles_dir))  # fmt: skip
    flag_args, notes = environment_flags(env, accepted, request.command)
    if found.forced_target and "--target" in accepted:
        flag_args = replace_target(flag_args, found.forced_target)
    # `dbt retry` reuses the failed run's vars; pass only vars given on this command line.
    retry_vars = run_vars.given if key == ("retry",) else run_vars.merged
    var_args = render_vars(retry_vars) if "--vars" in accepted else []
    check = (
        isolated is not None
        and request.command[0] in WRITING_COMMANDS
        and not request.allow_unisolated
    )
    parse_args: tuple[str, ...] = ()
    if check:
        parse_args = parse_arguments(env, where, run_vars.merged, found.forced_target, options_for)
    argv = (
        *request.command,
        *where.option_args(accepted),
        *flag_args,
        *var_args,
        *defer_args(baseline, accepted, request.command, state_from),
        *extra,
    )
    return BuildPlan(
        spec=request.spec,
        env=env,
        command=request.command,
        source_project_dir=project_dir,
        project_dir=where.project_dir,
        profiles_dir=where.profiles_dir,
        target_path=where.target_path,
        log_path=where.log_path,
        vars=run_vars.merged,
        dbt_args=tuple(argv),
        dbt_env=where.dbt_env,
        deps_args=deps,
        isolated=isolated,
        baseline=baseline,
        state_from=state_from,
        parse_args=parse_args,
        check_isolation=check,
        notes=tuple(notes),
        runtime=request.runtime
        or env.runtime
        or (registered.runtime if registered else None)
        or DEFAULT_RUNTIME,
        warnings=(
            *files.warnings(project_dir),
            *run_vars.warnings,
            *(f"--defer {request.defer}: passed over {line}" for line in _skipped(baseline)),
        ),
        settings=PlanSettings(
            files=(*files.sources(project_dir), profile_file),
            flags=flag_settings(
                env,
                extra,
                _target_setting(placed.target, env, environ, registered, isolated),
            ),
            vars=var_settings(env, run_vars.merged, run_vars.given),
        ),
    )


def _skipped(baseline: Baseline | None) -> tuple[str, ...]:
    return () if baseline is None else baseline.skipped


def _refuse_two_states(request: RunRequest, extra: Sequence[str]) -> None:
    """`--state-from` and dbt's own `--state` after `--` name the same thing: keep one.

    Raises:
        UsageError: Both are given.
    """
    if request.state_from is None:
        return
    given = next((a for a in extra if a.partition("=")[0] in ("--state", "--defer-state")), None)
    if given is None:
        return
    option = given.partition("=")[0]
    raise UsageError(
        f"--state-from {request.state_from} and {option} after -- both name the state to "
        "compare against",
        f"keep one: drop `{option} DIR` after -- to compare against {request.state_from}, or "
        "drop --state-from to use that folder",
    )


def _plan_state_from(
    request: RunRequest, project_dir: Path, options_for: OptionsLookup
) -> StateFrom | None:
    """Plan `--state-from env@ref`: a `dbt parse` of the commit into its own `state` folder.

    Raises:
        DotError: As `make_plan`, for the state's spec (a ref that does not resolve, an
            environment its commit does not define).
    """
    spec = request.state_from
    if spec is None:
        return None
    parse = make_plan(
        RunRequest(
            command=("parse",),
            spec=spec,
            project_dir=project_dir,
            environ=request.environ,
            deps=request.deps,
            commit=None,
        ),
        options_for=options_for,
        target_folder="state",
    )
    assert parse.isolated is not None  # noqa: S101 - the spec has a ref
    key = stateparse.parse_key(parse.dbt_args)
    return StateFrom(
        spec=spec,
        commit=parse.isolated.commit,
        state_dir=parse.target_path,
        key=key,
        cached=stateparse.is_cached(parse.target_path, key),
        parse=parse,
    )


def _checked_project_dir(folder: Path) -> Path:
    """The project folder, resolved; it must hold dbt_project.yml."""
    project_dir = folder.resolve()
    if not (project_dir / PROJECT_FILE).is_file():
        raise ProjectNotFoundError(
            f"no {PROJECT_FILE} in {project_dir}",
            "run dot from inside a dbt project, or pass --project-dir <folder>",
        )
    return project_dir


@dataclass(frozen=True)
class _Vars:
    """A run's vars: those of the command line, and the environment's with those over them."""

    given: dict[str, Any]
    merged: dict[str, Any]
    warnings: tuple[str, ...]


def _resolve_vars(
    given: Mapping[str, Any],
    texts: Sequence[str],
    env: Environment,
    project_dir: Path,
    declarations: SettingsFile,
) -> _Vars:
    """Merge `--vars` over the environment's vars and check them against `dot_vars.yml`.

    Raises:
        ConfigError: A `--vars` text does not parse, or a var breaks its declaration.
    """
    cli_vars: dict[str, Any] = dict(given)
    for text in texts:
        cli_vars = deep_merge(cli_vars, parse_cli_vars(text))
    variables = deep_merge(env.vars, cli_vars)
    sources = {**env.var_sources, **dict.fromkeys(cli_vars, "--vars on the command line")}
    vars_check = check_vars(
        variables,
        load_var_declarations(project_dir, project_file=declarations),
        sources=sources,
        env_name=env.name,
    )
    raise_for_problems(vars_check)
    return _Vars(given=cli_vars, merged=variables, warnings=vars_check.warnings)


@dataclass(frozen=True)
class _Profiles:
    """Where dbt reads profiles.yml, and the target named above dbt's own default.

    Attributes:
        profiles_dir: The folder of the user's profiles.yml.
        target: The target a flag, the environment or the registration names, if any.
        forced_target: A target that replaces the environment's `--target` (a flag's, or the
            registration's when nothing above it names one).
    """

    profiles_dir: Path
    target: str | None
    forced_target: str | None


def _resolve_profiles(
    project_dir: Path,
    env: Environment,
    placed: _Placement,
    registered: ProjectEntry | None,
    environ: Mapping[str, str],
    committed_dir: Path | None,
) -> _Profiles:
    """Find profiles.yml and the target: flag, environment, dbt's variables, registration.

    `committed_dir` is the project folder when the commit an isolated build builds tracks a
    profiles.yml there: dbt, run in that commit's worktree, would find it before `~/.dbt`.
    """
    target = placed.target or _flag_str(env, "target")
    flag_dir = placed.profiles_dir or _flag_str(env, "profiles-dir")
    # The user config sits below the environment variables dbt reads (see `effective`).
    forced_target = placed.target
    if target is None and not environ.get("DBT_TARGET") and registered is not None:
        target = forced_target = registered.target
    if flag_dir is None and not environ.get("DBT_PROFILES_DIR") and registered is not None:
        flag_dir = str(registered.profiles_dir)
    if flag_dir is None and not environ.get("DBT_PROFILES_DIR") and committed_dir is not None:
        profiles_dir = committed_dir
    else:
        profiles_dir = profiles.find_profiles_dir(
            project_dir, flag_dir=Path(flag_dir) if flag_dir else None, environ=environ
        )
    return _Profiles(profiles_dir=profiles_dir, target=target, forced_target=forced_target)


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


def _target_setting(
    placed: str | None,
    env: Environment,
    environ: Mapping[str, str],
    registered: ProjectEntry | None,
    isolated: IsolatedBuild | None,
) -> Setting:
    """The target dbt uses and where it was named, in the order `_resolve_profiles` applies.

    When nothing names one, an isolated build knows the profile's default; a plain run leaves
    it to dbt.
    """
    if placed:
        return Setting("target", placed, Origin("command-line", key="after -- --target"))
    named = _flag_str(env, "target")
    if named is not None:
        return Setting("target", named, env.flag_origins.get("target", Origin("default")))
    if environ.get("DBT_TARGET"):
        return Setting(
            "target", environ["DBT_TARGET"], Origin("environment-variable", key="DBT_TARGET")
        )
    if registered is not None and registered.target:
        return Setting("target", registered.target, Origin("user-config", key="config.yaml"))
    default = isolated.profile.target if isolated is not None else None
    return Setting(
        "target", default, Origin("default", key="the profile's target: in profiles.yml")
    )


def _profile_file(profiles_dir: Path) -> FileSource:
    """The plan's record of the profiles.yml a working-tree run gives dbt."""
    return FileSource(profiles.PROFILES_FILE, "file", True, str(profiles_dir / "profiles.yml"))


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

"""The git side of planning an isolated build and its `--defer` baseline.

`built_commit` resolves the commit an `@ref` builds and checks it holds the project;
`plan_isolated` places the build (folders, isolated profile); `plan_baseline` finds the earlier
build a run defers to, with the environment and hash length its own commit's settings give.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datum_dot.config import profiles
from datum_dot.config.environments import Environment, EnvironmentsConfig, load_environments
from datum_dot.config.sources import SettingsFile
from datum_dot.errors import BaselineError, ConfigError, NotARepositoryError, ProjectNotFoundError
from datum_dot.runs import commitfiles, isolatedprofiles
from datum_dot.runs.plan import Baseline, IsolatedBuild
from datum_dot.runs.provenance import FileSource
from datum_dot.runs.run import RunRequest
from datum_dot.runs.spec import Spec
from datum_dot.vcs import git

DOT_DIR = ".dot"
PROJECT_FILE = commitfiles.PROJECT_FILE


def refuse_self_defer(
    request: RunRequest, env: Environment, isolated: IsolatedBuild | None, baseline: Baseline | None
) -> None:
    """Refuse a `--defer` baseline that is the very build being run."""
    if baseline is None or isolated is None or baseline.state_dir.parent != isolated.env_dir:
        return
    raise BaselineError(
        f"--defer {request.defer} is the build being run ({request.spec} is commit"
        f" {isolated.short_hash}, environment {env.dir_name}): a build cannot defer to itself",
        "defer to another commit or environment, for example --defer prod@main",
    )


@dataclass(frozen=True)
class BuiltCommit:
    """The commit an isolated build builds, the ref that named it, and its project's profile.

    Attributes:
        ref: The ref as the user wrote it.
        repo_root: The repository's top folder.
        commit: The full hash.
        profile_name: The `profile:` of the commit's dbt_project.yml.
        files: The commit's settings files.
    """

    ref: str
    repo_root: Path
    commit: git.Sha
    profile_name: str
    files: commitfiles.ProjectFiles


def built_commit(
    ref: str, project_dir: Path, repo_root: Path | None, *, pinned: str | None
) -> BuiltCommit:
    """Resolve the commit of an isolated build and check it holds the dbt project.

    Raises:
        NotARepositoryError: The project is not in a git repository.
        RefNotFoundError: The ref names no commit.
        ProjectNotFoundError: The commit has no dbt_project.yml where the project is.
    """
    if repo_root is None:
        raise NotARepositoryError(
            f"{project_dir} is not inside a git repository, so '@{ref}' cannot be built",
            "isolated builds check out a commit: cd into the project's git repository, or make "
            "one (git init && git add -A && git commit -m 'dbt project'); or drop the '@ref'",
        )
    # A pinned commit (resolved when a queued request was accepted) wins over where `ref` is now.
    commit = git.resolve_commit(repo_root, pinned or ref)
    short = git.short_hash(commit, commitfiles.LABEL_HASH_LENGTH)
    project_file = (project_dir.relative_to(repo_root) / PROJECT_FILE).as_posix()
    files = commitfiles.commit_files(project_dir, repo_root, commit)
    text = files.project
    if text is None:
        raise ProjectNotFoundError(
            f"commit {short} ('{ref}') has no {project_file}",
            f"pick a commit that has the dbt project: git log --oneline -- {project_file}",
        )
    name = profiles.profile_name_from_text(text, source=f"{project_file} at {short}")
    return BuiltCommit(ref=ref, repo_root=repo_root, commit=commit, profile_name=name, files=files)


def resolve_env(envs: EnvironmentsConfig, spec: Spec, project_file: SettingsFile) -> Environment:
    """The spec's environment; when the commit lacks the environments file, the error says so.

    Raises:
        ConfigError: The environment is not defined.
    """
    try:
        return envs.resolve(spec.env)
    except ConfigError as e:
        if project_file.commit is None or project_file.exists:
            raise
        raise ConfigError(
            f"{e.message}: commit {project_file.commit} has no {project_file.repo_path}",
            f"build a commit that has it, or leave the environment out: @{spec.ref}",
        ) from e


def plan_isolated(
    built: BuiltCommit,
    env: Environment,
    project_dir: Path,
    profiles_file: Path,
    target: str | None,
) -> tuple[IsolatedBuild, FileSource]:
    """Place an isolated build: its folders, and its profile (from the commit when it tracks
    the profiles.yml found, see `commitfiles.profile_source`).

    Returns:
        The build, and where its profile is read.

    Raises:
        ProfileError: The profile or target is missing, or the target has no schema.
        ConfigError: The schema template is invalid.
        GitError: git failed.
    """
    beside = project_dir / profiles.PROFILES_FILE
    tracked = (
        beside.relative_to(built.repo_root).as_posix() if built.files.project_profile else None
    )
    source = commitfiles.profile_source(
        profiles_file, built.repo_root, built.commit, tracked=tracked
    )
    short = git.short_hash(built.commit, env.isolation.hash_length)
    build_dir = project_dir / DOT_DIR / "build" / short
    env_dir = build_dir / "env" / env.dir_name
    change = isolatedprofiles.plan_isolated_profile(
        source=profiles_file,
        profile=built.profile_name,
        target=target,
        dest_dir=env_dir,
        schema_template=env.isolation.schema_template,
        short_hash=short,
        env=env.dir_name,
        ref_slug=isolatedprofiles.ref_slug(built.ref),
        committed=source.committed,
    )
    build = IsolatedBuild(
        ref=built.ref,
        commit=built.commit,
        short_hash=short,
        build_dir=build_dir,
        worktree=build_dir / "worktree",
        env_dir=env_dir,
        profile=change,
    )
    return build, source.file


def plan_baseline(defer: Spec | None, project_dir: Path, repo_root: Path | None) -> Baseline | None:
    """The `--defer` baseline: its commit, and its environment as the baseline's commit has it.

    Raises:
        NotARepositoryError: The project is not in a git repository.
        BaselineError: The baseline was never built.
        ConfigError: The baseline's commit does not define its environment.
    """
    if defer is None or defer.ref is None:
        return None
    if repo_root is None:
        raise NotARepositoryError(
            f"{project_dir} is not inside a git repository, so --defer {defer} cannot resolve",
            "baselines are isolated builds of commits: cd into the project's git repository",
        )
    commit = git.resolve_commit(repo_root, defer.ref)
    # The baseline was built with its own commit's settings: its environment and hash length.
    files = commitfiles.commit_files(project_dir, repo_root, commit)
    base_envs = load_environments(project_dir, project_file=files.environments)
    try:
        base_env = resolve_env(base_envs, defer, files.environments)
        undefined = None
    except ConfigError as e:
        if defer.env is None:
            raise
        # A build of an environment its commit does not define (made before builds read their
        # commit's settings) is still a baseline: the name alone finds its folder.
        base_env, undefined = (
            Environment(name=defer.env, isolation=base_envs.resolve(None).isolation),
            e,
        )
    short = git.short_hash(commit, base_env.isolation.hash_length)
    state_dir = project_dir / DOT_DIR / "build" / short / "env" / base_env.dir_name / "target"
    build_cmd = f"dot build {defer}"
    if not state_dir.is_dir():
        if undefined is not None:
            raise undefined
        raise BaselineError(
            f"baseline {defer} (commit {short}) has not been built: {state_dir} does not exist",
            f"build it first: {build_cmd}",
        )
    if not (state_dir / "manifest.json").is_file():
        raise BaselineError(
            f"baseline {defer} (commit {short}) has no manifest.json in {state_dir}",
            f"rebuild it: {build_cmd}",
        )
    return Baseline(
        spec=defer,
        commit=commit,
        state_dir=state_dir,
        env_name=base_env.name,
        settings_file=files.sources(project_dir)[0],
    )

"""What keeps an isolated build from being cleaned: a running job, or a schedule that needs it.

A running `dot` holds `<build>/env/<env>.lock` for the whole run and `<build>/worktree.lock`
while it prepares the worktree (see `workspace.py`). `dot clean` takes every one of them without
waiting, and holds them while it removes the build, so no run can start in a folder being
deleted. A schedule protects the builds its spec and its `defer` resolve to: its pinned commit,
or the commit its ref names now.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from datum_dot.builds.survey import Build, Project
from datum_dot.errors import ConfigError, DotError, LockTimeoutError
from datum_dot.home.locks import file_lock
from datum_dot.home.userconfig import load_user_config
from datum_dot.runs.spec import parse_spec
from datum_dot.vcs import git

WORKTREE_LOCK = "worktree.lock"
# Schedule keys holding a spec (`prod@main`) and keys holding a commit pinned at creation.
_SPEC_KEYS = ("spec", "defer")
_COMMIT_KEYS = ("pinned_commit", "defer_commit", "pinned_defer_commit")
_STATE_OPTIONS = ("--state", "--defer-state")
_BUILD_FOLDER = re.compile(r"(?:^|/)\.dot/build/([0-9a-f]{4,40})(?:/|$)")


class BuildInUseError(LockTimeoutError):
    """Another process holds one of the build's locks."""


def lock_files(build_dir: Path) -> list[Path]:
    """The lock files of a build: `worktree.lock` and one `env/<env>.lock` per environment."""
    env_locks = sorted((build_dir / "env").glob("*.lock")) if (build_dir / "env").is_dir() else []
    return [build_dir / WORKTREE_LOCK, *env_locks]


@contextlib.contextmanager
def holding_build(build_dir: Path) -> Iterator[None]:
    """Hold every lock of a build for the block, without waiting for any.

    Raises:
        BuildInUseError: Another process holds one of them (a run is using the build).
    """
    with contextlib.ExitStack() as stack:
        for path in lock_files(build_dir):
            if not path.exists():
                continue  # no process ever took it: nothing to wait for, nothing to create
            try:
                stack.enter_context(file_lock(path, timeout=0))
            except LockTimeoutError as e:
                raise BuildInUseError(
                    f"build {build_dir.name} is in use: another dot process holds {path}",
                    "wait for the run to finish, or pass --force to remove it anyway",
                ) from e
        yield


def is_in_use(build_dir: Path) -> bool:
    """Whether a running process holds one of the build's locks (checked, then let go)."""
    try:
        with holding_build(build_dir):
            return False
    except BuildInUseError:
        return True


@dataclass(frozen=True)
class Protections:
    """The builds schedules need, and why.

    Attributes:
        commits: Full hash -> the reasons (`schedule 'nightly' of project 'shop' (spec ...)`).
        warnings: Schedule entries that could not be resolved (a ref that no longer exists).
        folders: Build folder name -> the reasons, for a `--state .dot/build/<hash>/...` that
            a schedule passes to dbt.
    """

    commits: Mapping[str, tuple[str, ...]]
    warnings: tuple[str, ...] = ()
    folders: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def reasons_for(self, commit: str | None, short_hash: str) -> tuple[str, ...]:
        """Why the build of `commit` (folder `short_hash`) must stay; empty when it need not."""
        found: list[str] = list(self.folders.get(short_hash, ()))
        for protected, reasons in self.commits.items():
            if commit is not None:
                hit = commit == protected or (len(protected) >= 7 and commit.startswith(protected))
            else:
                hit = protected.startswith(short_hash)
            if hit:
                found.extend(reasons)
        return tuple(found)


def scheduled_commits(home: Path, project_dir: Path, repo_root: Path | None) -> Protections:
    """The commits the project's schedules build or defer to, from `$DATUM_HOME/config.yaml`.

    Args:
        home: `$DATUM_HOME`.
        project_dir: The dbt project (its registered entry is found by path).
        repo_root: Its git repository, to resolve refs; None protects only pinned commits.

    Returns:
        The protected commits.

    Raises:
        ConfigError: config.yaml cannot be read, so what is protected cannot be known.
    """
    config = load_user_config(home)
    wanted = project_dir.resolve()
    found: dict[str, dict[str, list[str]]] = {"commit": {}, "folder": {}}
    warnings: list[str] = []
    for project_id, entry in config.projects.items():
        if Path(entry.path).expanduser().resolve() != wanted:
            continue
        for index, raw in enumerate(entry.schedules):
            schedule = _as_mapping(raw)
            name = str(schedule.get("name") or f"#{index + 1}")
            label = f"schedule '{name}' of project '{project_id}'"
            for kind, key, why in _schedule_targets(schedule, repo_root, warnings, label):
                found[kind].setdefault(key, []).append(f"{label} ({why})")
    return Protections(
        commits={c: tuple(reasons) for c, reasons in found["commit"].items()},
        warnings=tuple(warnings),
        folders={f: tuple(reasons) for f, reasons in found["folder"].items()},
    )


def _schedule_targets(
    schedule: Mapping[str, object], repo_root: Path | None, warnings: list[str], label: str
) -> Iterator[tuple[str, str, str]]:
    """(`commit`, full hash, why) and (`folder`, build folder name, why) for one schedule."""
    pinned = False
    for key in _COMMIT_KEYS:
        value = schedule.get(key)
        if isinstance(value, str) and value.strip():
            pinned = pinned or key == "pinned_commit"
            yield "commit", value.strip().lower(), f"{key} {value.strip()[:12]}"
    for key in _SPEC_KEYS:
        value = schedule.get(key)
        # A pinned schedule builds its commit, whatever its ref names now.
        if isinstance(value, str) and not (key == "spec" and pinned):
            yield from _spec_target(key, value, repo_root, warnings, label)
    args = schedule.get("dbt_args")
    if isinstance(args, list | tuple):
        yield from _dbt_args_targets([str(a) for a in args], repo_root, warnings, label)


def _spec_target(
    key: str, value: str, repo_root: Path | None, warnings: list[str], label: str
) -> Iterator[tuple[str, str, str]]:
    if "@" not in value or repo_root is None:
        return
    try:
        ref = parse_spec(value).ref
        if ref is not None:
            yield "commit", git.resolve_commit(repo_root, ref), f"{key} {value}"
    except DotError as e:
        warnings.append(f"{label}: {key} '{value}' protects nothing: {e.message}")


def _dbt_args_targets(
    args: list[str], repo_root: Path | None, warnings: list[str], label: str
) -> Iterator[tuple[str, str, str]]:
    """`--state .dot/build/<hash>/...` (dbt's own defer) and `--defer env@ref` in dbt_args."""
    for index, arg in enumerate(args):
        option, eq, value = arg.partition("=")
        if not eq:
            value = args[index + 1] if index + 1 < len(args) else ""
        if option in _STATE_OPTIONS:
            folder = _BUILD_FOLDER.search(value.replace("\\", "/"))
            if folder is not None:
                yield "folder", folder[1], f"{option} {value}"
        elif option == "--defer":
            yield from _spec_target(option, value, repo_root, warnings, label)


def _as_mapping(item: object) -> Mapping[str, object]:
    """A schedule entry as a mapping, whether stored as a dict or a pydantic model."""
    if isinstance(item, Mapping):
        return {str(k): v for k, v in item.items()}
    dump = getattr(item, "model_dump", None)
    if callable(dump):
        data = dump()
        if isinstance(data, Mapping):
            return {str(k): v for k, v in data.items()}
    return {}


@dataclass(frozen=True)
class Guard:
    """What protects one build now (for `dot builds`).

    Attributes:
        in_use: A running process holds one of its locks.
        needed_by: The schedules that build it or defer to it.
    """

    in_use: bool
    needed_by: tuple[str, ...]


def guards(
    builds: Sequence[Build], project: Project, *, home: Path
) -> tuple[dict[Path, Guard], tuple[str, ...]]:
    """Whether each build is in use or needed by a schedule.

    Returns:
        Build folder -> its guard, and warnings (config.yaml unreadable: schedules unchecked;
        a schedule's ref that no longer resolves).
    """
    try:
        found = scheduled_commits(home, project.path, project.repo_root)
    except ConfigError as e:
        found = Protections({}, (f"schedules not checked: {e.message}",))
    return {
        build.path: Guard(
            in_use=is_in_use(build.path),
            needed_by=found.reasons_for(build.commit, build.short_hash),
        )
        for build in builds
    }, found.warnings

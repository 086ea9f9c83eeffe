"""The isolated builds of a project, as found on disk: `.dot/build/<short_hash>/`.

Each build is read from its folder (`commit`, `worktree/`, `env/<env>/profiles.yml`), from git
(which branches and tags point at its commit, whether the commit still exists) and from the run
history (its newest run). Only folders dot can prove it made are builds; the rest is foreign
(`survey_builds`). Nothing here changes anything; `cleanup.py` removes builds.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datum_dot.config import profiles
from datum_dot.errors import DotError, GitError
from datum_dot.history import RunStore, StoredRun
from datum_dot.runs import isolatedprofiles
from datum_dot.runs.planner import project_name
from datum_dot.vcs import git, ownership, worktrees

DOT_DIR = ownership.DOT_DIR
COMMIT_FILE = "commit"
WORKTREE = "worktree"
ENV_DIR = "env"
RUN_RESULTS = Path("target") / "run_results.json"
_HASH = re.compile(r"[0-9a-f]{4,40}")
_SHA = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class BuildEnv:
    """One environment built for a commit: `.dot/build/<short_hash>/env/<env>/`.

    Attributes:
        name: The environment's folder name (`prod`, or `default` without environments).
        path: The folder.
        target: Its profiles.yml as written (schema, database), or None when unreadable.
        problem: Why its profiles.yml could not be read.
        last_results: When dbt last wrote `target/run_results.json` there.
        parsed_only: Only a `--state-from` parse was made there (`state/`): nothing ran, so its
            schema was never created.
    """

    name: str
    path: Path
    target: isolatedprofiles.IsolatedTarget | None
    problem: str | None
    last_results: datetime | None
    parsed_only: bool = False

    def to_json(self) -> dict[str, Any]:
        """The environment as JSON-ready data."""
        target = self.target
        return {
            "name": self.name,
            "path": str(self.path),
            "schema": None if target is None else target.schema,
            "schema_key": None if target is None else target.schema_key,
            "database": None if target is None else target.database,
            "profile": None if target is None else target.profile,
            "target": None if target is None else target.target,
            "problem": self.problem,
            "last_run_results": _iso(self.last_results),
            "parsed_only": self.parsed_only,
        }


@dataclass(frozen=True)
class Build:
    """One isolated build folder.

    Attributes:
        short_hash: The folder's name.
        path: `.dot/build/<short_hash>`.
        commit: The full hash from its `commit` file, or None when missing or malformed.
        refs: Branches and tags pointing at the commit now.
        envs: The environments built.
        size_bytes: Disk space the folder takes (worktree, targets, logs).
        last_used: When it was last run: the history's newest run of the commit, else the
            newest `run_results.json`, else the folder's own time.
        last_used_from: `history`, `run_results` or `folder`.
        last_run: The history's newest isolated run of the commit in this project, if any.
        problems: What is broken (worktree folder gone, commit no longer in the repository).
    """

    short_hash: str
    path: Path
    commit: str | None
    refs: tuple[str, ...]
    envs: tuple[BuildEnv, ...]
    size_bytes: int
    last_used: datetime
    last_used_from: str
    last_run: StoredRun | None
    problems: tuple[str, ...]

    @property
    def worktree(self) -> Path:
        """The build's git worktree."""
        return self.path / WORKTREE

    @property
    def is_broken(self) -> bool:
        """Whether something about the build is missing or wrong."""
        return bool(self.problems)

    def to_json(self) -> dict[str, Any]:
        """The build as JSON-ready data (what `dot builds --json` prints)."""
        run = self.last_run
        return {
            "short_hash": self.short_hash,
            "commit": self.commit,
            "path": str(self.path),
            "worktree": str(self.worktree),
            "refs": list(self.refs),
            "envs": [env.to_json() for env in self.envs],
            "schemas": [env.target.schema for env in self.envs if env.target is not None],
            "size_bytes": self.size_bytes,
            "last_used": _iso(self.last_used),
            "last_used_from": self.last_used_from,
            "last_run": None
            if run is None
            else {
                "run_id": run.run_id,
                "status": run.status.value,
                "env": run.start.env,
                "spec": run.start.spec,
                "command": list(run.start.command),
                "started_at": _iso(run.started_at),
                "finished_at": _iso(run.finished_at),
            },
            "broken": self.is_broken,
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class Project:
    """Where a project's builds live, and the git repository around it.

    Attributes:
        path: The dbt project folder.
        name: The project's name in the run history.
        repo_root: The top of its git work tree, or None outside one.
    """

    path: Path
    name: str
    repo_root: Path | None

    @property
    def builds_dir(self) -> Path:
        """`.dot/build`."""
        return self.path / DOT_DIR / "build"

    @property
    def deps_cache(self) -> Path:
        """`.dot/cache/deps`."""
        return self.path / DOT_DIR / "cache" / "deps"

    def project_in(self, worktree: Path) -> Path:
        """The dbt project's folder inside a worktree of the repository."""
        if self.repo_root is None:
            return worktree
        return worktree / self.path.relative_to(self.repo_root)


def open_project(project_dir: Path) -> Project:
    """Describe the project at `project_dir` (a folder holding dbt_project.yml).

    Raises:
        GitError: The folder's git repository cannot be read.
    """
    path = project_dir.resolve()
    return Project(path=path, name=project_name(path), repo_root=git.find_repo_root(path))


@dataclass(frozen=True)
class Foreign:
    """Something under `.dot/build` that dot cannot prove it made; it is left alone.

    Attributes:
        path: The entry.
        reason: Why it is not a build of dot's.
    """

    path: Path
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The entry as JSON-ready data."""
        return {"name": self.path.name, "path": str(self.path), "reason": self.reason}


@dataclass(frozen=True)
class Survey:
    """What `.dot/build` holds: dot's builds, and the entries it leaves alone."""

    builds: list[Build]
    foreign: list[Foreign]


def list_builds(project: Project, *, home: Path) -> list[Build]:
    """dot's builds under `.dot/build`, most recently used first (see `survey_builds`).

    Raises:
        OwnershipError: `.dot` is a link or a file, or git tracks files under it.
        HistoryError: The run history is unusable.
    """
    return survey_builds(project, home=home).builds


def survey_builds(project: Project, *, home: Path) -> Survey:
    """Every entry under `.dot/build`: the builds dot can prove it made, and the rest.

    A build is a real folder (no link) named with 4 to 40 hex digits, whose `commit` file is a
    regular file holding a full hash that starts with that name, whose `env` is a real folder
    if present, and whose `worktree` is missing or registered by git at exactly that path
    (`worktrees.foreign_reason`). Anything else is foreign.

    Args:
        project: The project.
        home: `$DATUM_HOME`, whose run history says when each build was last run.

    Returns:
        The builds (broken ones included, with their problems), most recently used first,
        and the foreign entries by name.

    Raises:
        OwnershipError: `.dot` is a link or a file, or git tracks files under it.
        HistoryError: The run history is unusable.
    """
    ownership.check_dot_dir(project.path, project.repo_root)
    root = project.builds_dir
    reason = ownership.foreign_reason(root)
    if reason is not None:
        return Survey([], [Foreign(root, reason)])
    if not root.is_dir():
        return Survey([], [])
    folders: list[Path] = []
    foreign: list[Foreign] = []
    for entry in sorted(root.iterdir()):
        problem = build_foreign_reason(project, entry)
        if problem is None:
            folders.append(entry)
        elif not entry.name.endswith(".lock"):
            foreign.append(Foreign(entry, problem))
    commits = {folder: _read_commit(folder) for folder in folders}
    runs = RunStore(home).last_isolated_runs(
        project=project.name, commits=[c for c in commits.values() if c is not None]
    )
    builds = [_read_build(project, folder, commits[folder], runs) for folder in folders]
    builds.sort(key=lambda b: (b.last_used, b.short_hash), reverse=True)
    return Survey(builds, foreign)


def build_foreign_reason(project: Project, folder: Path) -> str | None:
    """Why `folder` (an entry of `.dot/build`) is not a build dot made; None when it is.

    Raises:
        OwnershipError: An entry cannot be examined (permissions).
        GitError: git could not be asked about the worktree.
    """
    reason = ownership.foreign_reason(folder)
    if reason is not None:
        return reason
    if not _HASH.fullmatch(folder.name):
        return f"{folder.name} is not a short commit hash, so it is not a build folder"
    commit_file = folder / COMMIT_FILE
    if ownership.kind_of(commit_file) != "file":
        return f"it has no {COMMIT_FILE} file (or it is a link or a folder)"
    commit = _read_commit(folder)
    if commit is None:
        return f"its {COMMIT_FILE} file does not hold a full commit hash"
    if not commit.startswith(folder.name):
        return f"its {COMMIT_FILE} file names {commit}, another commit"
    reason = ownership.foreign_reason(folder / ENV_DIR)
    if reason is not None:
        return reason
    worktree = folder / WORKTREE
    if project.repo_root is None:
        if ownership.kind_of(worktree) == "missing":
            return None
        return "the project is not in a git repository, so its worktree cannot be checked"
    return worktrees.foreign_reason(project.repo_root, worktree)


def _read_build(
    project: Project, folder: Path, commit: str | None, runs: dict[str, StoredRun]
) -> Build:
    problems: list[str] = []
    if not (folder / WORKTREE).is_dir():
        problems.append("the worktree folder is gone")
    refs: tuple[str, ...] = ()
    if project.repo_root is None:
        problems.append("the project is not in a git repository any more")
    elif commit is not None:
        refs, missing = _refs(project.repo_root, commit)
        if missing:
            problems.append("the commit is no longer in the repository")
    envs = _read_envs(folder)
    run = runs.get(commit) if commit is not None else None
    last_used, source = _last_used(folder, run, envs)
    return Build(
        short_hash=folder.name,
        path=folder,
        commit=commit,
        refs=refs,
        envs=envs,
        size_bytes=disk_usage(folder),
        last_used=last_used,
        last_used_from=source,
        last_run=run,
        problems=tuple(problems),
    )


def _read_commit(folder: Path) -> str | None:
    try:
        text = (folder / COMMIT_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if _SHA.fullmatch(text) else None


def _refs(repo_root: Path, commit: str) -> tuple[tuple[str, ...], bool]:
    """The refs at `commit`, and whether the commit is missing from the repository."""
    sha = git.Sha(commit)
    try:
        if not git.has_commit(repo_root, sha):
            return (), True
        return tuple(git.refs_pointing_at(repo_root, sha)), False
    except GitError:
        return (), False


def _read_envs(folder: Path) -> tuple[BuildEnv, ...]:
    env_root = folder / ENV_DIR
    if not env_root.is_dir():
        return ()
    envs = []
    for path in sorted(p for p in env_root.iterdir() if p.is_dir() and not p.is_symlink()):
        target, problem = None, None
        profile = path / profiles.PROFILES_FILE
        if profile.is_file():
            try:
                target = isolatedprofiles.read_isolated_target(profile)
            except DotError as e:
                problem = e.message
        else:
            problem = "no profiles.yml: the build stopped before it was written"
        results = _mtime(path / RUN_RESULTS)
        parsed_only = results is None and _parsed_only(path)
        envs.append(BuildEnv(path.name, path, target, problem, results, parsed_only))
    return tuple(envs)


def _parsed_only(env_dir: Path) -> bool:
    """Whether the environment's folder holds a `--state-from` parse and no dbt run's output."""
    # lazy: the parse cache's marker name lives with the planner, which imports more than this
    from datum_dot.runs.stateparse import MARKER

    marker = env_dir / "state" / MARKER
    target = env_dir / "target"
    ran = target.is_dir() and not target.is_symlink() and any(target.iterdir())
    return marker.is_file() and not marker.is_symlink() and not ran


def _last_used(
    folder: Path, run: StoredRun | None, envs: tuple[BuildEnv, ...]
) -> tuple[datetime, str]:
    if run is not None:
        return run.finished_at or run.started_at, "history"
    results = [env.last_results for env in envs if env.last_results is not None]
    if results:
        return max(results), "run_results"
    return _mtime(folder / COMMIT_FILE) or _mtime(folder) or datetime.now(UTC), "folder"


def _mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return None


def disk_usage(path: Path) -> int:
    """Bytes of disk a folder takes, as `du` counts them (links not followed, each inode once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [path]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            total += getattr(info, "st_blocks", 0) * 512 or info.st_size
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
    return total


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")

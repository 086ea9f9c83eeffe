"""Make a plan real on disk: `.dot/`, the worktree, the isolated profile, installed packages.

Everything here is idempotent and guarded by file locks: two processes building the same commit
and environment take turns; different commits build side by side.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from datum_dot.builds import packages
from datum_dot.errors import OwnershipError
from datum_dot.home.locks import file_lock
from datum_dot.runs import isolatedprofiles
from datum_dot.runs.plan import BuildPlan, IsolatedBuild
from datum_dot.vcs import git, ownership, worktrees

LOCK_TIMEOUT_SECONDS = 30 * 60.0

DepsRunner = Callable[[Sequence[str]], None]


@dataclass(frozen=True)
class Workspace:
    """What preparing the workspace did.

    Attributes:
        worktree: REUSED, CREATED or REPAIRED (None for a working-tree run).
        deps: "installed" (`dbt deps` ran), "cached" (copied from the cache), "copied" (from
            the checkout's identical install, through the cache), "current" (already in place),
            "none" (the project declares no packages), or "skipped".
    """

    worktree: worktrees.WorktreeStatus | None = None
    deps: str = "skipped"


def ensure_dot_dir(project_dir: Path) -> Path:
    """Create `.dot/` with its own `.gitignore` (`*`), so nothing under it is ever committed.

    Raises:
        OwnershipError: `.dot` is a symbolic link or a file.
    """
    dot_dir = ownership.require_real_dirs(project_dir, ownership.DOT_DIR, create=True)
    ignore = dot_dir / ".gitignore"
    if ownership.kind_of(ignore) == "missing":
        _write_new(ignore, "# Written by dot: build folders are never committed.\n*\n")
    return dot_dir


@contextmanager
def prepared(
    plan: BuildPlan,
    *,
    run_deps: DepsRunner,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[Workspace]:
    """Prepare an isolated build's folders and hold its lock while the caller runs dbt.

    Args:
        plan: The plan to make real.
        run_deps: Runs `dbt deps` with the given argv (through the same runtime as the run).
        on_wait: Called with a message when another process holds a lock we need.

    Yields:
        What was done.

    Raises:
        OwnershipError: `.dot` is a link, a file or tracked by git (in the index or in the
            commit), or a folder below it is a link or a file: nothing is written there.
        WorktreeError: The worktree could not be created or repaired.
        LockTimeoutError: Another process held the build for too long.
    """
    iso = plan.isolated
    if iso is None:
        yield Workspace()
        return
    project_dir = plan.source_project_dir
    repo_root = git.find_repo_root(project_dir)
    assert repo_root is not None  # noqa: S101 - the planner resolved the ref in this repository
    ownership.check_dot_dir(project_dir, repo_root, commit=iso.commit)
    ensure_dot_dir(project_dir)
    build_parts = iso.build_dir.relative_to(project_dir).parts
    ownership.require_real_dirs(project_dir, *build_parts, create=True)
    env_parts = iso.env_dir.relative_to(project_dir).parts
    ownership.require_real_dirs(project_dir, *env_parts, create=True).chmod(0o700)
    waiting = _waiter(on_wait, f"another dot process is building {plan.spec}; waiting for it")
    with (
        file_lock(iso.env_dir.with_suffix(".lock"), timeout=LOCK_TIMEOUT_SECONDS, on_wait=waiting),
        _shared_lock(plan, on_wait),
    ):
        with file_lock(
            iso.build_dir / "worktree.lock", timeout=LOCK_TIMEOUT_SECONDS, on_wait=waiting
        ):
            # The commit file goes first: it is what proves the folder is a build of dot's,
            # so an interrupted `worktree add` leaves a folder `dot clean` may remove.
            _write_atomic(iso.build_dir / "commit", iso.commit + "\n")
            status = worktrees.ensure_worktree(repo_root, iso.worktree, git.Sha(iso.commit))
            git.update_submodules(iso.worktree)
            deps = _install_packages(plan, run_deps) if plan.deps_args else "skipped"
        write_profile(iso)
        yield Workspace(worktree=status, deps=deps)


def _shared_lock(
    plan: BuildPlan, on_wait: Callable[[str], None] | None
) -> AbstractContextManager[None]:
    """The build's lock across hosts sharing a PostgreSQL history (nothing otherwise), keyed by
    the warehouse schema it writes and the commit: two hosts never build it at once."""
    # lazy: the history (and psycopg) load only for an isolated build
    from datum_dot.history import RunStore
    from datum_dot.home.settings import datum_home

    iso = plan.isolated
    assert iso is not None  # noqa: S101 - called for isolated builds only
    p = iso.profile
    parts = ("build", p.profile, str(p.database or ""), p.schema_after, iso.commit)
    return RunStore(datum_home()).shared_lock(
        parts, name=f"the build of {plan.spec}", timeout=LOCK_TIMEOUT_SECONDS, on_wait=on_wait
    )


def write_profile(iso: IsolatedBuild) -> None:
    """Write the isolated profiles.yml the plan describes (mode 0600, folders 0700)."""
    isolatedprofiles.write_isolated_profile(iso.profile)


def _install_packages(plan: BuildPlan, run_deps: DepsRunner) -> str:
    cache_root = ownership.require_real_dirs(
        plan.source_project_dir, ownership.DOT_DIR, "cache", "deps", create=True
    )
    return packages.install_packages(
        plan.project_dir,
        checkout_dir=plan.source_project_dir,
        cache_root=cache_root,
        run_deps=lambda: run_deps(plan.deps_args),
    )


def _write_atomic(path: Path, text: str) -> None:
    if ownership.kind_of(path) == "dir":
        raise OwnershipError(
            f"{path} is a folder where dot keeps a file",
            hint=f"move it out of the way: mv {path} {path}.moved",
        )
    # The rename replaces a link at `path` itself, never the file it points to.
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    _write_new(tmp, text)
    tmp.replace(path)


def _write_new(path: Path, text: str) -> None:
    """Create `path` and write `text`, failing rather than writing through a planted link."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _waiter(on_wait: Callable[[str], None] | None, message: str) -> Callable[[], None] | None:
    if on_wait is None:
        return None
    return lambda: on_wait(message)

"""Make a plan real on disk: `.dot/`, the worktree, the isolated profile, installed packages.

Everything here is idempotent and guarded by file locks: two processes building the same commit
and environment take turns; different commits build side by side.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from datum_dot import git, isolatedprofiles, worktrees
from datum_dot.locks import file_lock
from datum_dot.plan import BuildPlan, IsolatedBuild

LOCK_TIMEOUT_SECONDS = 30 * 60.0
PACKAGE_FILES = ("packages.yml", "dependencies.yml", "package-lock.yml")
DEPS_MARKER = ".dot-deps-digest"

DepsRunner = Callable[[Sequence[str]], None]


@dataclass(frozen=True)
class Workspace:
    """What preparing the workspace did.

    Attributes:
        worktree: REUSED, CREATED or REPAIRED (None for a working-tree run).
        deps: "installed", "cached" (copied from the cache), "current" (already in place),
            "none" (the project has no packages), or "skipped".
    """

    worktree: worktrees.WorktreeStatus | None = None
    deps: str = "skipped"


def ensure_dot_dir(project_dir: Path) -> Path:
    """Create `.dot/` with its own `.gitignore` (`*`), so nothing under it is ever committed."""
    dot_dir = project_dir / ".dot"
    dot_dir.mkdir(exist_ok=True)
    ignore = dot_dir / ".gitignore"
    if not ignore.is_file():
        ignore.write_text("# Written by dot: build folders are never committed.\n*\n")
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
        WorktreeError: The worktree could not be created or repaired.
        LockTimeoutError: Another process held the build for too long.
    """
    iso = plan.isolated
    if iso is None:
        yield Workspace()
        return
    ensure_dot_dir(plan.source_project_dir)
    repo_root = git.find_repo_root(plan.source_project_dir)
    assert repo_root is not None  # noqa: S101 - the planner resolved the ref in this repository
    _mkdir_private(iso.env_dir)
    waiting = _waiter(on_wait, f"another dot process is building {plan.spec}; waiting for it")
    with file_lock(iso.env_dir.with_suffix(".lock"), timeout=LOCK_TIMEOUT_SECONDS, on_wait=waiting):
        with file_lock(
            iso.build_dir / "worktree.lock", timeout=LOCK_TIMEOUT_SECONDS, on_wait=waiting
        ):
            status = worktrees.ensure_worktree(repo_root, iso.worktree, git.Sha(iso.commit))
            _write_atomic(iso.build_dir / "commit", iso.commit + "\n")
            deps = _install_deps(plan, run_deps) if plan.deps_args else "skipped"
        write_profile(iso)
        yield Workspace(worktree=status, deps=deps)


def write_profile(iso: IsolatedBuild) -> None:
    """Write the isolated profiles.yml the plan describes (mode 0600, folders 0700)."""
    change = iso.profile
    isolatedprofiles.write_isolated_profile(
        source=change.source_path,
        profile=change.profile,
        target=change.target,
        dest_dir=iso.env_dir,
        schema_template=change.schema_template,
        short_hash=iso.short_hash,
        env=change.env,
        ref_slug=change.ref_slug,
    )


def _install_deps(plan: BuildPlan, run_deps: DepsRunner) -> str:
    project = plan.project_dir
    digest = deps_digest(project)
    if digest is None:
        return "none"
    install_dir = project / _install_path(project)
    marker = install_dir / DEPS_MARKER
    if marker.is_file() and marker.read_text().strip() == digest:
        return "current"
    cache = plan.source_project_dir / ".dot" / "cache" / "deps" / digest
    with file_lock(cache.with_suffix(".lock"), timeout=LOCK_TIMEOUT_SECONDS):
        if (cache / DEPS_MARKER).is_file():
            _replace_tree(cache, install_dir)
            return "cached"
        run_deps(plan.deps_args)
        # Copy with symlinks resolved: `local:` packages are links into this worktree, and the
        # cache must not depend on a worktree that `dot clean` may remove.
        tmp = cache.with_name(cache.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        if install_dir.is_dir():
            shutil.copytree(install_dir, tmp, symlinks=False)
        else:
            tmp.mkdir(parents=True)
        (tmp / DEPS_MARKER).write_text(digest + "\n")
        shutil.rmtree(cache, ignore_errors=True)
        tmp.rename(cache)
        _replace_tree(cache, install_dir)
    return "installed"


def deps_digest(project_dir: Path) -> str | None:
    """Digest of the package files and any `local:` package contents; None without packages.

    Two commits with the same digest install the same packages, so the second reuses the first's.
    """
    present = [name for name in PACKAGE_FILES if (project_dir / name).is_file()]
    if not any(name in present for name in ("packages.yml", "dependencies.yml")):
        return None
    h = hashlib.sha256()
    for name in present:
        h.update(name.encode() + b"\0" + (project_dir / name).read_bytes() + b"\0")
    for local in _local_packages(project_dir):
        folder = (project_dir / local).resolve()
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            h.update(str(file.relative_to(folder)).encode() + b"\0" + file.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _local_packages(project_dir: Path) -> list[str]:
    paths: list[str] = []
    for name in ("packages.yml", "dependencies.yml"):
        file = project_dir / name
        if not file.is_file():
            continue
        data = yaml.safe_load(file.read_text()) or {}
        paths.extend(
            entry["local"]
            for entry in data.get("packages", []) or []
            if isinstance(entry, dict) and isinstance(entry.get("local"), str)
        )
    return paths


def _install_path(project_dir: Path) -> str:
    data = yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}
    value = data.get("packages-install-path", "dbt_packages")
    return str(value) if isinstance(value, str) and "{{" not in value else "dbt_packages"


def _replace_tree(source: Path, dest: Path) -> None:
    if dest.is_symlink() or dest.is_file():
        dest.unlink()
    elif dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest, symlinks=False)


def _mkdir_private(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _waiter(on_wait: Callable[[str], None] | None, message: str) -> Callable[[], None] | None:
    if on_wait is None:
        return None
    return lambda: on_wait(message)

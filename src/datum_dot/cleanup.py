"""`dot clean`: choose isolated builds to remove, show the plan, then remove them.

A build is removed in this order, holding its locks: its schemas are dropped through dbt (with
`--drop-schemas`), its worktree is removed with git (so `git worktree list` stays true), then its
folder is deleted. A build whose drop fails is kept whole, so the clean can be retried. After
the builds, `git worktree prune` runs and `.dot/cache/deps` entries no remaining build uses are
deleted. Builds in use by a running job, and builds a schedule builds or defers to, stay unless
forced.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from datum_dot import git
from datum_dot.builds import Build, Project, disk_usage, list_builds
from datum_dot.errors import DotError, UsageError
from datum_dot.locks import file_lock
from datum_dot.protection import (
    BuildInUseError,
    Protections,
    holding_build,
    is_in_use,
    scheduled_commits,
)
from datum_dot.schemadrop import (
    DropSettings,
    PlannedDrop,
    SchemaOutcome,
    drop_schema,
    load_drop_settings,
    plan_drops,
)


@dataclass(frozen=True)
class Selection:
    """Which builds to remove.

    Attributes:
        hashes: Builds named by short hash, a longer prefix of the commit, or the full hash.
        older_than: Builds last used longer ago than this.
        keep: Keep this many most recently used builds whatever their age.
        everything: Every build (`--all`).
    """

    hashes: tuple[str, ...] = ()
    older_than: timedelta | None = None
    keep: int | None = None
    everything: bool = False


@dataclass(frozen=True)
class Removal:
    """A build to remove, and the schemas to drop first."""

    build: Build
    drops: tuple[PlannedDrop, ...] = ()


@dataclass(frozen=True)
class Kept:
    """A selected build that stays.

    Attributes:
        build: The build.
        reason: Why it stays.
        warning: Something to look at (a schema dot will not drop), not a protection at work.
    """

    build: Build
    reason: str
    warning: bool = False


@dataclass(frozen=True)
class DepsEntry:
    """A `.dot/cache/deps/<digest>` folder no remaining build uses."""

    path: Path
    size_bytes: int


@dataclass(frozen=True)
class CleanPlan:
    """What `dot clean` will do (all of it is shown before anything is removed).

    Attributes:
        project: The project.
        removals: Builds to remove, with the schemas to drop.
        kept: Selected builds that stay, with the reason.
        deps: Package cache entries no remaining build uses.
        remaining: How many builds stay in all (selected or not).
        drop_schemas: The project's isolation settings when schemas are dropped, else None.
        warnings: Problems that do not stop the clean (a schedule's ref that no longer resolves).
    """

    project: Project
    removals: tuple[Removal, ...]
    kept: tuple[Kept, ...]
    deps: tuple[DepsEntry, ...]
    remaining: int
    drop_schemas: DropSettings | None
    warnings: tuple[str, ...] = ()

    @property
    def freed_bytes(self) -> int:
        """Disk space the removals and cache entries free."""
        return sum(r.build.size_bytes for r in self.removals) + sum(d.size_bytes for d in self.deps)


@dataclass(frozen=True)
class Failure:
    """A build that could not be removed (it was kept, so the clean can be retried)."""

    build: Build
    message: str


@dataclass(frozen=True)
class CleanResult:
    """What `dot clean --yes` did."""

    plan: CleanPlan
    removed: tuple[Build, ...] = ()
    drops: tuple[SchemaOutcome, ...] = ()
    kept: tuple[Kept, ...] = ()
    failures: tuple[Failure, ...] = ()
    deps_removed: tuple[DepsEntry, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def freed_bytes(self) -> int:
        """Disk space freed."""
        return sum(b.size_bytes for b in self.removed) + sum(d.size_bytes for d in self.deps_removed)


def plan_clean(
    project: Project,
    selection: Selection,
    *,
    home: Path,
    now: datetime,
    drop_schemas: bool = False,
    force: bool = False,
) -> CleanPlan:
    """Decide what to remove; nothing is changed.

    Args:
        project: The project whose `.dot/build` is cleaned.
        selection: Which builds.
        home: `$DATUM_HOME` (run history, schedules).
        now: The current time, for `older_than`.
        drop_schemas: Also drop each build's schemas.
        force: Remove builds in use or needed by a schedule too.

    Returns:
        The plan.

    Raises:
        UsageError: The selection is empty, contradictory, or names an unknown build.
        ConfigError: `$DATUM_HOME/config.yaml` (the schedules) or dot_environments.yml
            (the schema template) cannot be read.
    """
    builds = list_builds(project, home=home)
    chosen = select_builds(builds, selection, now=now)
    settings = load_drop_settings(project) if drop_schemas else None
    protections = (
        Protections({}) if force else scheduled_commits(home, project.path, project.repo_root)
    )
    removals: list[Removal] = []
    kept: list[Kept] = []
    for build in chosen:
        reasons = protections.reasons_for(build.commit, build.short_hash)
        if not force and is_in_use(build.path):
            kept.append(Kept(build, "in use: a running dot process holds its lock"))
        elif reasons:
            kept.append(Kept(build, "needed by " + "; ".join(reasons)))
        elif settings is not None:
            drops, problem = plan_drops(build, settings)
            if problem is not None:
                kept.append(Kept(build, problem, warning=True))
            else:
                removals.append(Removal(build, drops))
        else:
            removals.append(Removal(build))
    leaving = {r.build.path for r in removals}
    staying = [b.path for b in builds if b.path not in leaving]
    deps, deps_warning = unused_deps(project, staying)
    warnings = [*protections.warnings, *([deps_warning] if deps_warning else [])]
    return CleanPlan(
        project=project,
        removals=tuple(removals),
        kept=tuple(kept),
        deps=tuple(deps),
        remaining=len(staying),
        drop_schemas=settings,
        warnings=tuple(warnings),
    )


def apply_clean(plan: CleanPlan, *, force: bool = False) -> CleanResult:
    """Remove what the plan says: drop schemas, remove worktrees and folders, prune the cache.

    Failures are collected, not raised: a build that fails is kept and the others go on.

    Args:
        plan: The plan `plan_clean` made.
        force: Remove builds whose lock is held by another process too.

    Returns:
        What was done.
    """
    project = plan.project
    removed: list[Build] = []
    drops: list[SchemaOutcome] = []
    kept: list[Kept] = list(plan.kept)
    failures: list[Failure] = []
    for removal in plan.removals:
        build = removal.build
        try:
            with _holding(build.path, force=force):
                outcomes = [
                    drop_schema(project, build, planned, plan.drop_schemas)
                    for planned in removal.drops
                    if plan.drop_schemas is not None
                ]
                drops.extend(outcomes)
                bad = [o for o in outcomes if o.drop.outcome in ("failed", "refused")]
                if bad:
                    failures.append(Failure(build, _drop_failure(bad)))
                    continue
                _delete(project, build)
        except BuildInUseError:
            kept.append(Kept(build, "in use: a running dot process took its lock"))
            continue
        except (DotError, OSError) as e:
            failures.append(Failure(build, f"could not remove {build.path}: {e}"))
            continue
        removed.append(build)
    warnings: list[str] = []
    if project.repo_root is not None:
        try:
            git.prune_worktrees(project.repo_root)
        except DotError as e:
            warnings.append(e.message)
    staying = list(_build_dirs(project))
    deps, deps_warning = unused_deps(project, staying)
    warnings += [deps_warning] if deps_warning else []
    deps_removed = [entry for entry in deps if _remove_deps_entry(project, entry)]
    return CleanResult(
        plan=plan,
        removed=tuple(removed),
        drops=tuple(drops),
        kept=tuple(kept),
        failures=tuple(failures),
        deps_removed=tuple(deps_removed),
        warnings=tuple(warnings),
    )


def select_builds(builds: list[Build], selection: Selection, *, now: datetime) -> list[Build]:
    """The builds a selection names, most recently used first (`builds` is in that order).

    Raises:
        UsageError: Nothing is selected, the options contradict each other, `keep` is negative,
            or a hash is malformed, unknown or ambiguous.
    """
    _check_selection(selection)
    if selection.hashes:
        return list(dict.fromkeys(_find(builds, text) for text in selection.hashes))
    if selection.everything:
        return list(builds)
    keep = selection.keep or 0
    chosen = builds[keep:]
    if selection.older_than is not None:
        cutoff = now - selection.older_than
        chosen = [b for b in chosen if b.last_used < cutoff]
    return chosen


def _check_selection(selection: Selection) -> None:
    example = "for example: dot clean --older-than 14d --keep 5 (a dry run; add --yes to remove)"
    limits = selection.keep is not None or selection.older_than is not None
    if not (selection.hashes or selection.everything or limits):
        raise UsageError(
            "clean needs to know what to remove: a build's hash, --older-than AGE, --keep N "
            "or --all",
            example,
        )
    if selection.hashes and (selection.everything or limits):
        raise UsageError(
            "a build's hash cannot be combined with --all, --keep or --older-than",
            "name builds (dot clean 1a2b3c4d --yes) or give limits, not both",
        )
    if selection.everything and limits:
        raise UsageError("--all cannot be combined with --keep or --older-than", example)
    if selection.keep is not None and selection.keep < 0:
        raise UsageError(f"--keep must be 0 or more, got {selection.keep}", example)


_HASH_TEXT = re.compile(r"[0-9a-f]{4,40}")


def _find(builds: list[Build], text: str) -> Build:
    wanted = text.strip().lower()
    if not _HASH_TEXT.fullmatch(wanted):
        raise UsageError(
            f"'{text}' is not a commit hash (4 to 40 hex digits)",
            "`dot builds` lists the builds with their hashes; for example: dot clean 1a2b3c4d",
        )
    exact = [b for b in builds if b.short_hash == wanted]
    hits = exact or [b for b in builds if _matches(b, wanted)]
    if not hits:
        raise UsageError(
            f"unknown build '{text}': no isolated build of that commit in .dot/build",
            "`dot builds` lists the builds with their hashes",
        )
    if len(hits) > 1:
        names = ", ".join(b.short_hash for b in hits)
        raise UsageError(
            f"build hash '{text}' is ambiguous: it matches {names}",
            "give more of the hash; `dot builds` lists them",
        )
    return hits[0]


def _matches(build: Build, wanted: str) -> bool:
    if build.commit is not None:
        return build.commit.startswith(wanted)
    return build.short_hash.startswith(wanted) or wanted.startswith(build.short_hash)


@contextmanager
def _holding(build_dir: Path, *, force: bool) -> Iterator[None]:
    with ExitStack() as stack:
        try:
            stack.enter_context(holding_build(build_dir))
        except BuildInUseError:
            if not force:
                raise
        yield


def _delete(project: Project, build: Build) -> None:
    """Remove the worktree with git, then the build's folder."""
    if project.repo_root is not None:
        git.remove_worktree(project.repo_root, build.worktree)
    shutil.rmtree(build.path)


def _drop_failure(bad: list[SchemaOutcome]) -> str:
    parts = [f"{o.drop.schema or o.planned.schema} ({o.drop.outcome}: {o.drop.error})" for o in bad]
    return "schema not dropped, build kept: " + "; ".join(parts)


def _build_dirs(project: Project) -> Iterable[Path]:
    if not project.builds_dir.is_dir():
        return []
    return sorted(p for p in project.builds_dir.iterdir() if p.is_dir() and not p.is_symlink())


def unused_deps(project: Project, staying: Iterable[Path]) -> tuple[list[DepsEntry], str | None]:
    """The package cache entries no staying build's worktree uses.

    Returns:
        The entries (leftover `.tmp` folders of interrupted installs included), and a warning
        instead when a worktree's package files cannot be read (then nothing is removed).
    """
    from datum_dot.workspace import deps_digest

    cache = project.deps_cache
    if not cache.is_dir():
        return [], None
    used: set[str] = set()
    for build_dir in staying:
        worktree = build_dir / "worktree"
        if not worktree.is_dir():
            continue
        try:
            digest = deps_digest(project.project_in(worktree))
        except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError, TypeError) as e:
            # A malformed packages.yml (not a mapping, say): its entry cannot be told apart.
            return [], f"package cache left alone: cannot read the package files of {worktree}: {e}"
        if digest is not None:
            used.add(digest)
    entries = []
    for path in sorted(cache.iterdir()):
        if not path.is_dir() or path.is_symlink():
            continue
        if path.name in used:
            continue
        entries.append(DepsEntry(path, disk_usage(path)))
    return entries, None


def _remove_deps_entry(project: Project, entry: DepsEntry) -> bool:
    lock = entry.path.with_name(entry.path.name.removesuffix(".tmp") + ".lock")
    try:
        with ExitStack() as stack:
            if lock.exists():
                stack.enter_context(file_lock(lock, timeout=0))
            shutil.rmtree(entry.path)
    except (DotError, OSError):
        return False
    return True

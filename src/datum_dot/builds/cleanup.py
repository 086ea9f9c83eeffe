"""`dot clean`: choose isolated builds to remove, show the plan, then remove them.

Only builds dot can prove it made are removed (`builds.survey_builds`); foreign entries are
shown and left alone, even with `--force`. A build is removed in this order, holding its locks:
its schemas are dropped through dbt (with `--drop-schemas`), the proof is taken again, then its
worktree and folder are deleted without following any link, and git's records are pruned. A build whose drop fails is kept whole, so the clean can be retried. After
the builds, `git worktree prune` runs and `.dot/cache/deps` entries no remaining build uses are
deleted. Builds in use by a running job, and builds a schedule builds or defers to, stay unless
forced. A clean that drops schemas is a run in the history (command `clean`), like a build.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from datum_dot.builds.depscache import DepsEntry, remove_entry, unused_deps
from datum_dot.builds.protection import (
    BuildInUseError,
    Protections,
    holding_build,
    is_in_use,
    scheduled_commits,
)
from datum_dot.builds.schemadrop import (
    DropSettings,
    PlannedDrop,
    SchemaOutcome,
    drop_schema,
    load_drop_settings,
    plan_drops,
)
from datum_dot.builds.selection import Selection, select_builds
from datum_dot.builds.survey import Build, Foreign, Project, build_foreign_reason, survey_builds
from datum_dot.errors import CleanupError, DotError, ExitCode, OwnershipError
from datum_dot.history import RunEnd, RunRecorder, RunStart, RunStore
from datum_dot.home.settings import datum_home
from datum_dot.runs.run import RunStatus, Trigger
from datum_dot.vcs import ownership, worktrees

Say = Callable[[str, str], None]
"""Where a clean's output lines go (`stream`, `text`): the history, for a clean that drops."""


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
        foreign: Entries under `.dot/build` dot did not make; never removed, even with --force.
    """

    project: Project
    removals: tuple[Removal, ...]
    kept: tuple[Kept, ...]
    deps: tuple[DepsEntry, ...]
    remaining: int
    drop_schemas: DropSettings | None
    warnings: tuple[str, ...] = ()
    foreign: tuple[Foreign, ...] = ()

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
        return sum(b.size_bytes for b in self.removed) + sum(
            d.size_bytes for d in self.deps_removed
        )

    @property
    def failure_message(self) -> str | None:
        """The builds that could not be removed, and why; None when there are none."""
        if not self.failures:
            return None
        detail = "; ".join(f"{f.build.short_hash} ({f.message})" for f in self.failures)
        return f"{len(self.failures)} build(s) could not be removed and were kept: {detail}"

    @property
    def exit_code(self) -> ExitCode:
        """What `dot clean --yes` exits with: a failure's (see `CleanupError`), else 10 or 0."""
        if self.failures:
            return CleanupError.exit_code
        warned = self.warnings or self.plan.warnings or any(k.warning for k in self.kept)
        return ExitCode.WARNINGS if warned else ExitCode.OK


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
        OwnershipError: `.dot` is a link or a file, or git tracks files under it.
        ConfigError: `$DATUM_HOME/config.yaml` (the schedules) or dot_environments.yml
            (the schema template) cannot be read.
    """
    survey = survey_builds(project, home=home)
    builds = survey.builds
    _refuse_foreign_names(survey.foreign, builds, selection.hashes)
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
    warnings = [
        *protections.warnings,
        *([deps_warning] if deps_warning else []),
        *(f"left alone, not made by dot: {f.path}: {f.reason}" for f in survey.foreign),
    ]
    return CleanPlan(
        project=project,
        removals=tuple(removals),
        kept=tuple(kept),
        deps=tuple(deps),
        remaining=len(staying),
        drop_schemas=settings,
        warnings=tuple(warnings),
        foreign=tuple(survey.foreign),
    )


def apply_clean(
    plan: CleanPlan, *, force: bool = False, store: RunStore | None = None
) -> CleanResult:
    """Remove what the plan says: drop schemas, remove worktrees and folders, prune the cache.

    Failures are collected, not raised: a build that fails is kept and the others go on. A
    clean that drops schemas is recorded in the run history as one run (command `clean`,
    trigger `manual`), its output naming each schema and its outcome, its status and exit code
    those of the clean; a warning in the result says what the history could not save.

    Args:
        plan: The plan `plan_clean` made.
        force: Remove builds whose lock is held by another process too.
        store: The run history; the one in `$DATUM_HOME` by default.

    Returns:
        What was done.

    Raises:
        HistoryError: The history cannot record a clean that drops schemas (nothing was done).
        LockTimeoutError: As `RunStore.begin`.
    """
    if plan.drop_schemas is None or not any(r.drops for r in plan.removals):
        return _apply_clean(plan, force=force, say=lambda stream, text: None)
    start = RunStart(
        project=plan.project.name, spec="", command=("clean",), trigger=Trigger.MANUAL.value
    )
    with RunRecorder(store or RunStore(datum_home()), start) as recorder:
        recorder.begin()
        try:
            result = _apply_clean(plan, force=force, say=recorder.line)
        except BaseException as e:
            recorder.finish(_interrupted_end(e, recorder.line))
            raise
        recorder.finish(_clean_end(result))
        unsaved = recorder.unsaved()
    if unsaved is None:
        return result
    return dataclasses.replace(result, warnings=(*result.warnings, unsaved))


def _apply_clean(plan: CleanPlan, *, force: bool, say: Say) -> CleanResult:
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
                for outcome in outcomes:
                    say(*_drop_line(outcome))
                bad = [o for o in outcomes if o.drop.outcome in ("failed", "refused")]
                if bad:
                    failures.append(Failure(build, _drop_failure(bad)))
                    say("stderr", f"kept build {build.short_hash}, so the clean can be retried")
                    continue
                _delete(project, build)
        except BuildInUseError:
            kept.append(Kept(build, "in use: a running dot process took its lock"))
            say("stderr", f"kept build {build.short_hash}: {kept[-1].reason}")
            continue
        except (DotError, OSError) as e:
            hint = f" [{e.hint}]" if isinstance(e, DotError) and e.hint else ""
            failures.append(Failure(build, f"could not remove {build.path}: {e}{hint}"))
            say("stderr", f"kept build {build.short_hash}: {failures[-1].message}")
            continue
        removed.append(build)
        say("stdout", f"removed build {build.short_hash}")
    warnings: list[str] = []
    if project.repo_root is not None:
        try:
            worktrees.prune_worktrees(project.repo_root)
        except DotError as e:
            warnings.append(e.message)
    staying = list(_build_dirs(project))
    deps, deps_warning = unused_deps(project, staying)
    warnings += [deps_warning] if deps_warning else []
    deps_removed = [entry for entry in deps if remove_entry(entry)]
    return CleanResult(
        plan=plan,
        removed=tuple(removed),
        drops=tuple(drops),
        kept=tuple(kept),
        failures=tuple(failures),
        deps_removed=tuple(deps_removed),
        warnings=tuple(warnings),
    )


def _refuse_foreign_names(
    foreign: Iterable[Foreign], builds: Iterable[Build], hashes: Iterable[str]
) -> None:
    """A hash naming a foreign entry (and no build) gets the reason, not 'unknown build'."""
    for text in hashes:
        wanted = text.strip().lower()
        if any((b.commit or b.short_hash).startswith(wanted) for b in builds):
            continue
        for entry in foreign:
            if entry.path.name.startswith(wanted):
                raise OwnershipError(
                    f"{entry.path} is not a build dot made ({entry.reason}), so dot clean "
                    "leaves it alone, even with --force",
                    hint=f"look at it, and remove it yourself if nothing in it is yours: "
                    f"ls -la {entry.path}/",
                )


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
    """Prove the folder is still dot's, then delete its worktree and itself, following no link.

    The proof is taken again here, holding the build's locks, because the folder may have
    changed since the plan was made.
    """
    reason = build_foreign_reason(project, build.path)
    if reason is not None:
        raise OwnershipError(f"{build.path} is no longer a build dot made: {reason}")
    if project.repo_root is not None:
        worktrees.remove_worktree(project.repo_root, build.worktree)
    ownership.remove_tree(build.path)


def _drop_line(outcome: SchemaOutcome) -> tuple[str, str]:
    """The history's line for one drop: (stream, text)."""
    drop = outcome.drop
    schema = drop.schema or outcome.planned.schema
    where = f"schema {schema} (build {outcome.short_hash}, environment {outcome.planned.env})"
    if drop.outcome == "dropped":
        return "stdout", f"dropped {where}"
    if drop.outcome == "absent":
        return "stdout", f"{where} was not there: nothing to drop"
    verb = "refused to drop" if drop.outcome == "refused" else "could not drop"
    return "stderr", f"{verb} {where}: {drop.error}"


def _clean_end(result: CleanResult) -> RunEnd:
    """How a clean that dropped schemas ends in the history: as `dot clean` exits."""
    message = result.failure_message
    if message is None:
        return RunEnd(RunStatus.SUCCESS, int(result.exit_code))
    name = CleanupError.__name__
    return RunEnd(RunStatus.FAILED, int(result.exit_code), error_class=name, error_message=message)


def _interrupted_end(error: BaseException, say: Say) -> RunEnd:
    """A clean stopped by Ctrl-C is CANCELLED; anything else (a bug) FAILED, its trace logged."""
    if isinstance(error, KeyboardInterrupt):
        return RunEnd(RunStatus.CANCELLED, int(ExitCode.CANCELLED))
    say("stderr", traceback.format_exc())
    code, message = int(ExitCode.RUNTIME_FAILURE), str(error) or None
    return RunEnd(RunStatus.FAILED, code, error_class=type(error).__name__, error_message=message)


def _drop_failure(bad: list[SchemaOutcome]) -> str:
    verb = {"refused": "refused to drop"}
    parts = [
        f"{verb.get(o.drop.outcome, 'could not drop')} schema {o.drop.schema or o.planned.schema}"
        f": {o.drop.error}"
        for o in bad
    ]
    return "; ".join(parts)


def _build_dirs(project: Project) -> Iterable[Path]:
    if ownership.kind_of(project.builds_dir) != "dir":
        return []
    return sorted(p for p in project.builds_dir.iterdir() if ownership.kind_of(p) == "dir")

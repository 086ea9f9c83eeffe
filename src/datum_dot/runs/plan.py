"""The build plan: every path and dbt argument of a run, computed without side effects.

`--dry-run` prints a plan; `execute()` makes one real. The assembly here is pure: inputs that
need I/O (config files, git, profiles.yml) are gathered by `planner.py`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from datum_dot.config.environments import Environment
from datum_dot.config.models import FlagValue
from datum_dot.config.variables import format_cli_vars
from datum_dot.errors import UsageError
from datum_dot.home.settings import DEFAULT_RUNTIME
from datum_dot.runs.isolatedprofiles import ProfileChange
from datum_dot.runs.provenance import FileSource, PlanSettings
from datum_dot.runs.spec import Spec

OptionsLookup = Callable[[tuple[str, ...]], frozenset[str]]
"""Which option strings a dbt command accepts (dbt's own definitions, through `dbtcore`)."""

# Commands that write to the warehouse: an isolated build checks where they would write first.
WRITING_COMMANDS = frozenset({"build", "run", "seed", "snapshot", "clone", "test"})
# Flags the plan sets itself for an isolated build; an environment cannot override them.
OWNED_FLAGS = frozenset({"project-dir", "profiles-dir", "target-path", "log-path"})


@dataclass(frozen=True)
class IsolatedBuild:
    """Where an isolated build of one commit and environment lives.

    Attributes:
        ref: The ref as the user wrote it.
        commit: The full 40-character hash it resolved to.
        short_hash: The fixed-length prefix naming the folder and schema.
        build_dir: `.dot/build/<short_hash>`.
        worktree: The detached worktree of the commit.
        env_dir: `.dot/build/<short_hash>/env/<env>`.
        profile: How the profile is rewritten (schema before and after).
    """

    ref: str
    commit: str
    short_hash: str
    build_dir: Path
    worktree: Path
    env_dir: Path
    profile: ProfileChange


@dataclass(frozen=True)
class Baseline:
    """The state a run defers to: an isolated build, the live environment's last run, or the
    latest run of its dbt Cloud job.

    Attributes:
        spec: The spec as given to `--defer` (`prod@main`; `prod` for the live environment).
        commit: The full hash of the commit the state was built from (None when unknown).
        state_dir: The folder holding its manifest.json, given to dbt as `--state` (for a
            dbt Cloud run, the cache folder its manifest is fetched into before dbt runs).
        env_name: Its environment (None: no environment).
        settings_file: Where that commit's `dot_environments.yml` was read, if recorded.
        source: `build` (an isolated build), `history` (the live environment's newest
            successful plain run) or `cloud` (its dbt Cloud job's latest successful run).
        run_id: The run the state came from (a history run id, or a dbt Cloud run id).
        finished_at: When that run finished (UTC), where known.
        age_seconds: How old the state was when planned.
        skipped: Newer runs passed over, and why (deleted folder, manifest not JSON).
        cloud: The dbt Cloud provenance: account, job, run id, finished at.
    """

    spec: Spec
    commit: str | None
    state_dir: Path
    env_name: str | None = None
    settings_file: FileSource | None = None
    source: str = "build"
    run_id: str | None = None
    finished_at: datetime | None = None
    age_seconds: float | None = None
    skipped: tuple[str, ...] = ()
    cloud: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The provenance as JSON-ready data (the plan's `defer`, and the run's record)."""
        return {
            "spec": str(self.spec),
            "source": self.source,
            "commit": self.commit,
            "state": str(self.state_dir),
            "environment": self.env_name,
            "run_id": self.run_id,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "age_seconds": None if self.age_seconds is None else round(self.age_seconds, 3),
            "skipped": list(self.skipped),
            "cloud": None if self.cloud is None else dict(self.cloud),
            "settings_file": None if self.settings_file is None else self.settings_file.to_json(),
        }


@dataclass(frozen=True)
class StateFrom:
    """`--state-from env@ref`: a commit parsed (not built) to compare against.

    Attributes:
        spec: The spec as given.
        commit: The full hash its ref resolved to.
        state_dir: Where its parse writes manifest.json (`.dot/build/<hash>/env/<env>/state`):
            dbt's `--state`.
        key: What the cached parse must have been made with (digest of its argv).
        cached: Whether a parse with this key is already there (no parse needed).
        parse: The plan of its `dbt parse` (worktree, isolated profile, packages).
    """

    spec: Spec
    commit: str
    state_dir: Path
    key: str
    cached: bool
    parse: BuildPlan

    def to_json(self) -> dict[str, Any]:
        """JSON-ready data for the plan and the run's record."""
        return {
            "spec": str(self.spec),
            "source": "parse",
            "commit": self.commit,
            "state": str(self.state_dir),
            "environment": self.parse.env.name,
            "cached": self.cached,
            "parse_argv": ["dbt", *self.parse.dbt_args],
        }


@dataclass(frozen=True)
class BuildPlan:
    """Everything a run will do, decided before anything is touched.

    Attributes:
        spec: The spec being run.
        env: The resolved environment.
        command: The dbt command words.
        source_project_dir: The user's project folder.
        project_dir: Where dbt runs (the worktree's project for an isolated build).
        profiles_dir: The folder of the profiles.yml dbt reads.
        target_path: dbt's target folder.
        log_path: dbt's log folder.
        vars: The merged vars passed to dbt.
        dbt_args: dbt's argv, without the leading `dbt`.
        dbt_env: Environment variables set for dbt.
        deps_args: The `dbt deps` argv run first, or empty when deps are not run.
        parse_args: The `dbt parse` argv for the isolation check (same project, profile, vars).
        isolated: The isolated build, or None for a working-tree run.
        baseline: The `--defer` baseline, or None.
        check_isolation: Whether to check node schemas before running.
        notes: Debug-level notes (flags left out for this command).
        warnings: Problems worth showing that do not stop the run.
        runtime: The runtime `--runtime`, the environment or the registration names, in that
            order, else `local`.
        settings: Where each setting came from (files read, flags, vars).
    """

    spec: Spec
    env: Environment
    command: tuple[str, ...]
    source_project_dir: Path
    project_dir: Path
    profiles_dir: Path
    target_path: Path
    log_path: Path
    vars: Mapping[str, Any]
    dbt_args: tuple[str, ...]
    dbt_env: Mapping[str, str] = field(default_factory=dict)
    deps_args: tuple[str, ...] = ()
    parse_args: tuple[str, ...] = ()
    isolated: IsolatedBuild | None = None
    baseline: Baseline | None = None
    check_isolation: bool = False
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    runtime: str = DEFAULT_RUNTIME
    settings: PlanSettings = field(default_factory=PlanSettings)
    state_from: StateFrom | None = None

    def state_json(self) -> dict[str, Any] | None:
        """Where the run's deferred and compared state came from (None when it has none)."""
        if self.baseline is None and self.state_from is None:
            return None
        return {
            "defer": None if self.baseline is None else self.baseline.to_json(),
            "state_from": None if self.state_from is None else self.state_from.to_json(),
        }

    def to_json(self) -> dict[str, Any]:
        """Return the plan as plain JSON-ready data (what `--dry-run --json` prints)."""
        iso = self.isolated
        return {
            "spec": str(self.spec),
            "environment": self.env.name,
            "command": list(self.command),
            "project_dir": str(self.source_project_dir),
            "dbt_project_dir": str(self.project_dir),
            "profiles_dir": str(self.profiles_dir),
            "target_path": str(self.target_path),
            "log_path": str(self.log_path),
            "vars": dict(self.vars),
            "settings": self.settings.to_json(),
            "runtime": self.runtime,
            "isolated": None
            if iso is None
            else {
                "ref": iso.ref,
                "commit": iso.commit,
                "short_hash": iso.short_hash,
                "build_dir": str(iso.build_dir),
                "worktree": str(iso.worktree),
                "env_dir": str(iso.env_dir),
                "profile": {
                    "name": iso.profile.profile,
                    "target": iso.profile.target,
                    "source": iso.profile.source_label,
                    "source_commit": iso.profile.committed is not None,
                    "path": str(iso.profile.dest_path),
                    "schema_key": iso.profile.schema_key,
                    "schema_before": iso.profile.schema_before,
                    "schema_after": iso.profile.schema_after,
                },
            },
            "defer": None if self.baseline is None else self.baseline.to_json(),
            "state_from": None if self.state_from is None else self.state_from.to_json(),
            "deps": bool(self.deps_args),
            "deps_argv": ["dbt", *self.deps_args] if self.deps_args else None,
            "isolation_check": self.check_isolation,
            "dbt_env": dict(self.dbt_env),
            "argv": ["dbt", *self.dbt_args],
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }


def render_flag(key: str, value: FlagValue) -> list[str]:
    """Turn one environment key into dbt arguments: `true` -> `--key`, `false` -> nothing."""
    option = f"--{key}"
    if value is True:
        return [option]
    if value is False:
        return []
    if isinstance(value, list):
        return [option, *(_scalar(item) for item in value)] if value else []
    if isinstance(value, dict):
        return [option, json.dumps(value, sort_keys=True, default=str)]
    return [option, _scalar(value)]


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_vars(variables: Mapping[str, Any]) -> list[str]:
    """`--vars <text>` that dbt reads back as `variables` (see `format_cli_vars`); nothing if empty.

    Keys are sorted, so the same vars give the same argv.
    """
    if not variables:
        return []
    return ["--vars", format_cli_vars(variables)]


def environment_flags(
    env: Environment, accepted: frozenset[str], command: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Render the environment's dbt flags that this command accepts.

    Returns:
        The arguments, and a debug note for each flag left out.
    """
    args: list[str] = []
    notes: list[str] = []
    for key, value in env.flags.items():
        if key in OWNED_FLAGS:
            notes.append(f"environment flag '{key}' is set by dot for this run; left out")
            continue
        if f"--{key}" not in accepted and value is not False:
            notes.append(f"dbt {' '.join(command)} does not accept --{key}; left out")
            continue
        args += render_flag(key, value)
    return args, notes


def defer_args(
    baseline: Baseline | None,
    accepted: frozenset[str],
    command: Sequence[str],
    state_from: StateFrom | None = None,
) -> list[str]:
    """dbt's state options: `--defer --favor-state --state <dir>` for a baseline, `--state <dir>`
    for `--state-from`, and with both, `--defer-state <baseline>` beside `--state <parse>`.

    Raises:
        UsageError: The command takes no `--state` (or no `--defer-state`, with both).
    """
    if baseline is None and state_from is None:
        return []
    option = "--defer" if baseline is not None else "--state-from"
    if "--state" not in accepted:
        raise UsageError(
            f"dbt {' '.join(command)} does not take {option}",
            f"use {option} with build, run, test, compile, clone, ls, show or seed",
        )
    args = (
        [flag for flag in ("--defer", "--favor-state") if flag in accepted]
        if baseline is not None
        else []
    )
    if state_from is None:
        assert baseline is not None  # noqa: S101 - one of them is set
        return [*args, "--state", str(baseline.state_dir)]
    if baseline is not None:
        if "--defer-state" not in accepted:
            raise UsageError(
                f"dbt {' '.join(command)} cannot defer to one state and compare against another",
                "drop --defer or --state-from",
            )
        args += ["--defer-state", str(baseline.state_dir)]
    return [*args, "--state", str(state_from.state_dir)]


@dataclass(frozen=True)
class RunFolders:
    """Where dbt runs and writes, the options that say so, and the variables set for it."""

    project_dir: Path
    profiles_dir: Path
    target_path: Path
    log_path: Path
    options: tuple[tuple[str, Path], ...]
    dbt_env: dict[str, str]

    def option_args(self, accepted: frozenset[str]) -> list[str]:
        """The placement options a dbt command accepts, with their folders."""
        return [part for opt, path in self.options if opt in accepted for part in (opt, str(path))]


def place_run(
    project_dir: Path,
    profiles_dir: Path,
    isolated: IsolatedBuild | None,
    repo_root: Path | None,
    *,
    target_folder: str = "target",
) -> RunFolders:
    """Where dbt runs: the user's project and profiles, or for an isolated build its own folders.

    `target_folder` names an isolated build's target folder: `state` for a `--state-from`
    parse, which must never pass for a build of the commit (a `--defer env@ref` baseline).
    """
    if isolated is None:
        return RunFolders(
            project_dir=project_dir,
            profiles_dir=profiles_dir,
            target_path=project_dir / "target",
            log_path=project_dir / "logs",
            options=(("--project-dir", project_dir), ("--profiles-dir", profiles_dir)),
            dbt_env={},
        )
    rel = project_dir.relative_to(repo_root) if repo_root else Path()
    dbt_project_dir = isolated.worktree / rel
    target_path = isolated.env_dir / target_folder
    log_path = isolated.env_dir / "logs"
    return RunFolders(
        project_dir=dbt_project_dir,
        profiles_dir=isolated.env_dir,
        target_path=target_path,
        log_path=log_path,
        options=(
            ("--project-dir", dbt_project_dir),
            ("--profiles-dir", isolated.env_dir),
            ("--target-path", target_path),
            ("--log-path", log_path),
        ),
        # dbt retry has ignored --target-path in some versions; it always reads these.
        dbt_env={"DBT_TARGET_PATH": str(target_path), "DBT_LOG_PATH": str(log_path)},
    )


def parse_arguments(
    env: Environment,
    where: RunFolders,
    variables: Mapping[str, Any],
    forced_target: str | None,
    options_for: OptionsLookup,
) -> tuple[str, ...]:
    """The `dbt parse` argv of the isolation check: the run's project, profile and vars."""
    accepted = options_for(("parse",))
    flags, _ = environment_flags(env, accepted, ("parse",))
    if forced_target:
        flags = replace_target(flags, forced_target)
    return (*where.option_args(accepted), *flags, *render_vars(variables))


def replace_target(flag_args: list[str], target: str) -> list[str]:
    """The environment's flags with its `--target` (if any) replaced by `target`."""
    out: list[str] = []
    items = iter(flag_args)
    for arg in items:
        if arg == "--target":
            next(items, None)
            continue
        out.append(arg)
    return [*out, "--target", target]

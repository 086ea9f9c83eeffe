"""What to run (`RunRequest`) and what happened (`RunRecord`): the currency of `execute()`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from datum_dot.errors import ExitCode
from datum_dot.runs.spec import Spec

if TYPE_CHECKING:
    from datum_dot.runs.plan import BuildPlan


StateSource = Literal["history", "cloud"]
"""Where `--defer ENV` (without a ref) finds the live environment's state."""


class Trigger(StrEnum):
    """What started a run."""

    MANUAL = "manual"
    CRON = "cron"
    WEBHOOK = "webhook"
    SDK = "sdk"
    DAGSTER = "dagster"
    AIRFLOW = "airflow"


class RunStatus(StrEnum):
    """The state of a run, as recorded."""

    PLANNED = "PLANNED"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    CANCELLED = "CANCELLED"
    ABORTED = "ABORTED"
    SKIPPED = "SKIPPED"


@dataclass(frozen=True)
class RunRequest:
    """Everything needed to run one dbt command.

    Attributes:
        command: The dbt command words (`("build",)`, `("docs", "generate")`,
            `("run-operation", "my_macro")`).
        spec: Which environment, at which ref.
        project_dir: The user's dbt project folder (holding dbt_project.yml).
        dbt_args: Arguments passed to dbt untouched (what follows `--`).
        cli_vars: `--vars` given to the tool, merged over the environment's vars.
        defer: The state to defer to: with a ref, an isolated build; without one, the live
            environment (the newest successful plain run of it, or its dbt Cloud job).
        state_source: Where `--defer ENV` (no ref) reads the live state: `history` (the run
            history's artifacts) or `cloud` (the latest successful run of the environment's
            dbt Cloud job).
        state_from: A spec with a ref whose parse (no build) is dbt's `--state` for
            comparison (`state:modified`), separately from `defer`.
        max_state_age: Refuse deferred state older than this many seconds (None: any age).
        dry_run: Plan only; create and run nothing.
        deps: Install dbt packages before an isolated build.
        allow_unisolated: Skip the isolation safety check.
        timeout: Seconds before the run is stopped, or None for no limit.
        trigger: What started the run.
        environ: Environment variables to resolve profiles with (DBT_PROFILES_DIR, HOME).
        runtime: The runtime to run dbt with (`--runtime`); None: the environment's, or local.
        retries: Attempts after the first for transient failures (`--retries`).
        retry_delay: Seconds before the first retry; later ones back off (`--retry-delay`).
        cache: Use cached remote artifacts (False for `--no-cache`).
        schedule: The schedule that started the run (`dot schedule run NAME`), if any.
        notes: Lines written at the start of the run's output (a scheduler's warnings).
        run_id: The id to record the run under in the history, allocated by the caller (the
            webhook's queue answers with it before the run starts); None draws a new one.
        commit: The full hash `spec.ref` was resolved to when the request was accepted; an
            isolated build of a request that waited in a queue builds this commit, not where
            the ref points by the time it runs. None resolves the ref when the run starts.
        artifacts_to_db: Keep the run's dbt artifacts in the PostgreSQL run history too
            (`--artifacts-to-db`); `DATUM_ARTIFACTS_TO_DB` and config.yaml may ask it as well.
        retry_of: The run this one retries: the webhook's attempt that another server took
            over after the first server's host stopped renewing its lease.
    """

    command: tuple[str, ...]
    spec: Spec = field(default_factory=Spec)
    project_dir: Path = field(default_factory=Path.cwd)
    dbt_args: tuple[str, ...] = ()
    cli_vars: Mapping[str, Any] = field(default_factory=dict)
    defer: Spec | None = None
    state_source: StateSource = "history"
    state_from: Spec | None = None
    max_state_age: float | None = None
    dry_run: bool = False
    deps: bool = True
    allow_unisolated: bool = False
    timeout: float | None = None
    trigger: Trigger = Trigger.MANUAL
    environ: Mapping[str, str] | None = None
    runtime: str | None = None
    run_id: str | None = None
    retries: int = 0
    retry_delay: float = 2.0
    cache: bool = True
    schedule: str | None = None
    notes: tuple[str, ...] = ()
    commit: str | None = None
    artifacts_to_db: bool = False
    retry_of: str | None = None


@dataclass
class RunRecord:
    """What happened to one request.

    Attributes:
        request: The request that was run.
        plan: The plan that was made for it (None when planning itself failed).
        status: Where the run ended.
        exit_code: The process exit code this run maps to.
        started_at: UTC start time.
        finished_at: UTC end time, once finished.
        node_statuses: The status of each node result dbt reported.
        dbt_exit_code: dbt's own exit code (0 ok, 1 handled failure, 2 unhandled), once run.
        warnings: Problems worth showing that did not stop the run.
        error: The error message when the run failed.
        error_class: Why it failed (`connection`, `compilation`, ...), as the runner classified it.
        suggestion: What to do about the failure.
        attempts: How many times dbt was run (more than 1 after retries).
        runtime: The runtime that ran dbt.
        run_id: The run's id in the history (None for a dry run).
    """

    request: RunRequest
    plan: BuildPlan | None
    status: RunStatus
    exit_code: ExitCode
    started_at: datetime
    finished_at: datetime | None = None
    node_statuses: tuple[str, ...] = ()
    dbt_exit_code: int | None = None
    warnings: tuple[str, ...] = ()
    error: str | None = None
    error_class: str | None = None
    suggestion: str | None = None
    attempts: int = 1
    runtime: str | None = None
    run_id: str | None = None

    @property
    def duration_seconds(self) -> float | None:
        """Wall time of the run, once finished."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

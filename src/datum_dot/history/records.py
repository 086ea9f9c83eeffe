"""The shapes of the run history: what a run starts with, ends with, and how it is stored.

`RunStart` is written as a RUNNING record before dbt starts, `RunEnd` finalizes it, and a
`StoredRun` is what reading the history gives back. Run ids have one strict form,
`<project>-<YYYYmmddTHHMMSSZ>-<8 hex>`, checked before any path is built from one. People may
name a run by any unique prefix or suffix of its id (the 8 hex digits at its end, usually).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datum_dot.errors import HistoryError
from datum_dot.history.artifacts import ArtifactFile
from datum_dot.history.files import (
    LOG_FILES,
    METADATA,
    OUTPUT_LOG,
    RUN_RESULTS,
    STDERR_LOG,
    STDOUT_LOG,
    NodeCounts,
    first_failed_node,
    utc_now,
)
from datum_dot.home.liveness import current_boot_id, process_start_ticks
from datum_dot.runs.run import RunStatus

RUN_ID = re.compile(
    r"(?P<project>[A-Za-z0-9][A-Za-z0-9_-]{0,63})-(?P<time>\d{8}T\d{6}Z)-[0-9a-f]{8}"
)
# What a unique prefix or suffix of a run id may hold: nothing that could leave `runs/` once
# joined to it.
RUN_ID_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,89}")
FINAL_STATUSES = tuple(s for s in RunStatus if s not in (RunStatus.PLANNED, RunStatus.RUNNING))
STORED_STATUSES = (RunStatus.RUNNING, *FINAL_STATUSES)


def new_run_id(project: str, started_at: datetime) -> str:
    """A fresh run id: `<project>-<YYYYmmddTHHMMSSZ>-<8 random hex>`.

    Characters of `project` outside `[A-Za-z0-9_-]` become `_`, so every id is a safe file name.
    """
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", project).lstrip("_-")[:64] or "run"
    return f"{slug}-{started_at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{os.urandom(4).hex()}"


def hostname() -> str:
    """This machine's host name (what `socket.gethostname()` gives, without importing socket)."""
    return os.uname().nodename


def check_run_id_prefix(text: str) -> str:
    """Refuse anything that is not a run id or a part of one, before a file is touched.

    Args:
        text: A run id, or a unique prefix or suffix of one, as the user gave it.

    Returns:
        The text, unchanged.

    Raises:
        HistoryError: The text holds characters a run id never has (`/`, `.`, spaces, ...).
    """
    if not RUN_ID_PREFIX.fullmatch(text):
        raise HistoryError(
            f"{text!r} is not a run id: run ids look like shop-20240501T060000Z-1a2b3c4d",
            "run `dot logs` to list recent runs and their ids; a unique prefix or suffix of an "
            "id (its last 8 hex digits) is enough",
        )
    return text


def iso(moment: datetime) -> str:
    """A UTC ISO-8601 timestamp of fixed width, so that text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class RunStart:
    """What is known about a run before dbt starts: written as a RUNNING record.

    The writer fields (hostname, pid, boot id, start ticks) default to the calling process; they
    let a later reader tell that a RUNNING record's process is gone.

    Attributes:
        project: The project's name (the run id starts with it).
        spec: The spec as given (`prod@main`, "" for the default environment's working tree).
        command: The dbt command words (`["build"]`, `["docs", "generate"]`).
        argv: dbt's full argv, without the leading `dbt`.
        env: The environment's name, or None for plain dbt settings.
        ref: The git ref as given, or None for the working tree.
        commit: The full hash the ref resolved to, or None.
        runtime: What runs dbt (`local`, `subprocess`, `cloud`, `fusion`, a plugin's name).
        trigger: What started the run (`manual`, `cron`, `webhook`, `sdk`).
        hostname: The machine the writer runs on.
        pid: The writer's process id.
        boot_id: The writer's boot id ("" where the kernel has none).
        start_ticks: The writer's start time in clock ticks since boot, where known.
        started_at: When the run started (UTC); None means now, by the store's clock.
        schedule: The schedule that started the run (`nightly`), or None.
        state: Where the state the run deferred to or compared against came from (the
            plan's `defer` and `state_from`, as JSON), or None.
        warm: Whether a child of the warm runner ran it (`dot warm`), not a fresh process.
        retry_of: The run this one retries (a webhook run taken over from a host that stopped),
            or None.
    """

    project: str
    spec: str
    command: tuple[str, ...]
    argv: tuple[str, ...] = ()
    env: str | None = None
    ref: str | None = None
    commit: str | None = None
    runtime: str = "local"
    trigger: str = "manual"
    hostname: str = field(default_factory=hostname)
    pid: int = field(default_factory=os.getpid)
    boot_id: str = field(default_factory=current_boot_id)
    start_ticks: int | None = field(default_factory=lambda: process_start_ticks(os.getpid()))
    started_at: datetime | None = None
    schedule: str | None = None
    state: Mapping[str, Any] | None = None
    warm: bool = False
    retry_of: str | None = None


@dataclass(frozen=True)
class RunEnd:
    """How a run ended: what finalizes its record.

    Attributes:
        status: SUCCESS, FAILED, TIMEOUT, CANCELLED, ABORTED or SKIPPED.
        exit_code: The exit code the run maps to (0, 10, 20, 30, 40, 50).
        dbt_exit_code: dbt's own exit code, where dbt ran.
        error_class: The runner's classification of the failure (`DatabaseConnectionError`).
        error_message: The failure's message; None to take the failed node's message from
            `run_results` (a failed dbt node is reported there, not as an exception).
        suggestion: What to do about it, from the runner.
        counts: Node counts; None to count them from `run_results`.
        run_results: dbt's run_results.json in dbt's target folder: the artifacts of that
            folder written during the run are copied into the run's folder.
        finished_at: When the run ended (UTC); None means now, by the store's clock.
        error_node: The dbt node that failed (`model.shop.orders`); None to take the first
            failed node of `run_results`, if any.
        artifacts_to_db: Keep the artifacts in the PostgreSQL history too, compressed
            (`--artifacts-to-db`; see `dbartifacts`).
    """

    status: RunStatus
    exit_code: int
    dbt_exit_code: int | None = None
    error_class: str | None = None
    error_message: str | None = None
    suggestion: str | None = None
    counts: NodeCounts | None = None
    run_results: Path | None = None
    finished_at: datetime | None = None
    error_node: str | None = None
    artifacts_to_db: bool = False


@dataclass(frozen=True)
class StoredRun:
    """One run as the history holds it.

    Attributes:
        run_id: `<project>-<YYYYmmddTHHMMSSZ>-<8 hex>`.
        start: What the run started with (`started_at` always set).
        status: RUNNING until finished, then where it ended.
        finished_at: When it ended (for ABORTED: the last sign of life found).
        duration_seconds: Wall time, once finished.
        exit_code: The exit code the run mapped to, once finished.
        dbt_exit_code: dbt's own exit code, where dbt ran.
        error_class: The runner's classification of the failure.
        error_message: The failure's message (several lines, for a dbt node's error).
        suggestion: What to do about the failure.
        counts: Node counts from run_results.json, where there was one.
        run_dir: The run's folder (`$DATUM_HOME/runs/<run_id>`).
        error_node: The first dbt node that failed (`model.shop.orders`), where one did.
        artifacts: dbt's artifacts kept in the run's folder, by name, with their sha256.
        lines: Reads the run's stamped output lines from a number on, where they are not read
            from its folder: a history in PostgreSQL, whose runs may have run on another host.
    """

    run_id: str
    start: RunStart
    status: RunStatus
    run_dir: Path
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    exit_code: int | None = None
    dbt_exit_code: int | None = None
    error_class: str | None = None
    error_message: str | None = None
    suggestion: str | None = None
    counts: NodeCounts | None = None
    error_node: str | None = None
    artifacts: Mapping[str, ArtifactFile] = field(default_factory=dict)
    lines: Callable[[int], list[str]] | None = field(default=None, compare=False, repr=False)

    @property
    def started_at(self) -> datetime:
        """When the run started (UTC)."""
        assert self.start.started_at is not None  # noqa: S101 - the store always sets it
        return self.start.started_at

    def files(self) -> dict[str, Path]:
        """The run's files by role: metadata, output, stdout, stderr, run_results."""
        names = {
            "metadata": METADATA,
            "output": OUTPUT_LOG,
            "stdout": STDOUT_LOG,
            "stderr": STDERR_LOG,
            "run_results": RUN_RESULTS,
        }
        return {role: self.run_dir / name for role, name in names.items()}

    def with_failed_node(self) -> StoredRun:
        """This record, with its failed node and that node's message read from its copy of
        run_results.json where the record lacks them (records written before the history kept
        them); unchanged otherwise."""
        if self.status is RunStatus.SUCCESS or (self.error_node and self.error_message):
            return self
        failed = first_failed_node(self.run_dir / RUN_RESULTS)
        if failed is None:
            return self
        return replace(
            self,
            error_node=self.error_node or failed.unique_id,
            error_message=self.error_message or failed.message,
        )

    def has_log_files(self) -> bool:
        """Whether the log files are still on disk (someone may have deleted the folder); a run
        whose output is read from the database always has them."""
        if self.lines is not None:
            return True
        return all((self.run_dir / name).is_file() for name in LOG_FILES)

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-ready data (what metadata.json and `--json` hold)."""
        s = self.start
        return {
            "run_id": self.run_id,
            "project": s.project,
            "spec": s.spec,
            "env": s.env,
            "ref": s.ref,
            "commit": s.commit,
            "command": list(s.command),
            "argv": list(s.argv),
            "runtime": s.runtime,
            "trigger": s.trigger,
            "schedule": s.schedule,
            "hostname": s.hostname,
            "pid": s.pid,
            "boot_id": s.boot_id,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at) if self.finished_at else None,
            "duration_seconds": self.duration_seconds,
            "status": self.status.value,
            "exit_code": self.exit_code,
            "dbt_exit_code": self.dbt_exit_code,
            "error_class": self.error_class,
            "error_message": self.error_message,
            "error_node": self.error_node,
            "suggestion": self.suggestion,
            "counts": None if self.counts is None else asdict(self.counts),
            "run_dir": str(self.run_dir),
            "files": {role: path.name for role, path in self.files().items()},
            "state": None if s.state is None else dict(s.state),
            "artifacts": {name: a.to_json() for name, a in sorted(self.artifacts.items())},
            "warm": s.warm,
            "retry_of": s.retry_of,
        }


def run_time_of(run_id: str) -> datetime | None:
    """The start second a run id encodes, or None if `run_id` is not a run id."""
    match = RUN_ID.fullmatch(run_id)
    if match is None:
        return None
    return datetime.strptime(match["time"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


__all__ = [
    "FINAL_STATUSES",
    "RUN_ID",
    "STORED_STATUSES",
    "NodeCounts",
    "RunEnd",
    "RunStart",
    "StoredRun",
    "check_run_id_prefix",
    "iso",
    "new_run_id",
    "run_time_of",
    "utc_now",
]

"""The shapes the webhook's queue holds: what a client asked for, resolved, and its queue state."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from datum_dot.webhook.errors import IdempotencyConflictError


class JobState(StrEnum):
    """Where a queued request is: waiting, claimed by a worker, or finished with."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


class Source(StrEnum):
    """Which route accepted the request."""

    API = "api"
    TRIGGER = "trigger"
    GITHUB = "github"


@dataclass(frozen=True)
class JobRequest:
    """A request as accepted: checked, with its environment and commit resolved.

    Attributes:
        project: The registered project id (`shop`), as in the URL.
        project_dir: The dbt project folder the project id was registered with.
        project_name: The dbt project's name: the prefix of its run ids.
        spec: The spec as given (`prod@v1.2`).
        env: The environment's name after defaults (the serialization key; "" for none).
        ref: The git ref of the spec, or None for the working tree.
        commit: The full hash `ref` resolved to when the request was accepted.
        command: dbt's command words (`["build"]`, `["run-operation", "grant"]`).
        args: Arguments for dbt, passed untouched.
        vars: Variables merged over the environment's.
        timeout: Seconds before the run is stopped, or None.
        source: The route that accepted it.
        defer: `--defer`: `env` (the live environment) or `env@ref` (a build), or None.
        state_source: Where a live `defer` is read: `history` or `cloud`.
        state_from: `--state-from env@ref`, or None.
        max_state_age: `--max-state-age` in seconds, or None.
    """

    project: str
    project_dir: str
    project_name: str
    spec: str
    env: str
    ref: str | None
    commit: str | None
    command: tuple[str, ...]
    args: tuple[str, ...] = ()
    vars: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    source: Source = Source.API
    defer: str | None = None
    state_source: str = "history"
    state_from: str | None = None
    max_state_age: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The request as JSON-ready data (stored in the queue)."""
        data = asdict(self)
        data["command"] = list(self.command)
        data["args"] = list(self.args)
        data["source"] = self.source.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRequest:
        """The request stored by `to_json`."""
        return cls(
            **{
                **data,
                "command": tuple(data["command"]),
                "args": tuple(data["args"]),
                "source": Source(data["source"]),
            }
        )


@dataclass(frozen=True)
class Job:
    """One row of the queue.

    Attributes:
        seq: Its place in the queue (accept order).
        run_id: The run id the history records the run under.
        state: queued, running (claimed) or done.
        request: What to run.
        idempotency_key: The client's key, if it gave one.
        fingerprint: A digest of the request as the client sent it (`Ask.fingerprint`).
        accepted_at: When the request was accepted (UTC).
        claimed_at: When a worker took it.
        finished_at: When the worker was done with it.
        outcome: The run's final status as the worker saw it (`SUCCESS`, `ABORTED`, ...).
        attempt: 1, or more for a job another server took over after its first server stopped
            renewing its lease (a queue in PostgreSQL only).
        retry_of: The run id of the attempt before this one, which did not end.
    """

    seq: int
    run_id: str
    state: JobState
    request: JobRequest
    idempotency_key: str | None
    fingerprint: str
    accepted_at: datetime
    claimed_at: datetime | None = None
    finished_at: datetime | None = None
    outcome: str | None = None
    attempt: int = 1
    retry_of: str | None = None


@dataclass(frozen=True)
class Enqueued:
    """What `JobQueue.enqueue` did.

    Attributes:
        job: The job: the new one, or the one an earlier request with the same key made.
        created: False when the idempotency key named an earlier job.
    """

    job: Job
    created: bool


@dataclass(frozen=True)
class Recovered:
    """What a starting server found of a previous one's claimed jobs.

    Attributes:
        requeued: Jobs that were claimed but never started (no history record): queued again.
        finished: Jobs whose run had started (it is in the history): done, never run again.
    """

    requeued: tuple[str, ...] = ()
    finished: tuple[str, ...] = ()


def job_from_row(row: Mapping[str, Any]) -> Job:
    """A job from a row of either queue's `jobs` table (SQLite's has no attempts)."""
    keys = set(row.keys())
    return Job(
        seq=int(row["seq"]),
        run_id=str(row["run_id"]),
        state=JobState(row["state"]),
        request=JobRequest.from_json(json.loads(row["request"])),
        idempotency_key=row["idempotency_key"],
        fingerprint=row["fingerprint"],
        accepted_at=datetime.fromisoformat(row["accepted_at"]),
        claimed_at=_time(row["claimed_at"]),
        finished_at=_time(row["finished_at"]),
        outcome=row["outcome"],
        attempt=int(row["attempt"]) if "attempt" in keys else 1,
        retry_of=row["retry_of"] if "retry_of" in keys else None,
    )


def same_request(job: Job, fingerprint: str) -> Job:
    """`job`, found by its idempotency key, if it was made by the same request.

    Raises:
        IdempotencyConflictError: The key was used for another request.
    """
    if job.fingerprint != fingerprint:
        raise IdempotencyConflictError(
            f"idempotency key '{job.idempotency_key}' was used for another request "
            f"(run {job.run_id})",
            "send the same request again, or use a new key for a new request",
        )
    return job


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None

"""What the API answers about runs: history records and queued jobs, as JSON, with their URLs.

A run the history has is its history record (`StoredRun.to_json()`, what `dot logs --json`
prints). A run still in the queue (accepted, not begun) is shown as `"status": "queued"`: the
history only holds runs that began. Both carry `status_url`, `log_url`, `output_url` (the run's
record, as the datum CLI's answers had it) and `output_dir` (the run's folder in
`$DATUM_HOME/runs/` on the server's machine).
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from datum_dot.errors import DotError
from datum_dot.history import RunStore, StoredRun
from datum_dot.runs.run import RunStatus
from datum_dot.webhook.jobs import Job

QUEUED = "queued"
STATUSES = (QUEUED, *(s.value.lower() for s in RunStatus if s is not RunStatus.PLANNED))
_ONE_STATUS = "(?:" + "|".join(f"{s}|{s.upper()}" for s in STATUSES) + ")"
STATUS_PATTERN = f"^{_ONE_STATUS}(?:,{_ONE_STATUS})*$"


def urls(base_url: str, runs_dir: Path, run_id: str) -> dict[str, str]:
    """The URLs of a run: its record (`status_url`, and `output_url` as datum named it), its
    log, and its folder on the server's machine (`output_dir`)."""
    base = base_url.rstrip("/")
    return {
        "status_url": f"{base}/v1/runs/{run_id}",
        "log_url": f"{base}/v1/runs/{run_id}/log",
        "output_url": f"{base}/v1/runs/{run_id}",
        "output_dir": str(runs_dir.absolute() / run_id),
    }


def queued_view(job: Job, *, base_url: str, runs_dir: Path, position: int | None) -> dict[str, Any]:
    """A job whose run has not begun."""
    req = job.request
    return {
        "run_id": job.run_id,
        "status": QUEUED,
        "project": req.project_name,
        "project_id": req.project,
        "spec": req.spec,
        "env": req.env or None,
        "ref": req.ref,
        "commit": req.commit,
        "command": list(req.command),
        "args": list(req.args),
        "vars": req.vars,
        "timeout": req.timeout,
        "trigger": "webhook",
        "accepted_at": job.accepted_at.isoformat(),
        "queue_position": position,
        "idempotency_key": job.idempotency_key,
        **urls(base_url, runs_dir, job.run_id),
    }


def run_view(
    run: StoredRun,
    job: Job | None,
    *,
    base_url: str,
    runs_dir: Path,
    retried_as: str | None = None,
) -> dict[str, Any]:
    """A run the history has, with the webhook's facts about it when it came in that way.

    A job another server took over after its first server stopped (a queue in PostgreSQL)
    links its attempts: the retry names the run it retries (`retry_of`, `attempt`), and the
    ABORTED attempt the run that retried it (`retried_as`).
    """
    view = run.to_json()
    if job is not None:
        view["project_id"] = job.request.project
        view["accepted_at"] = job.accepted_at.isoformat()
        view["idempotency_key"] = job.idempotency_key
        if job.retry_of is not None:
            view["retry_of"] = job.retry_of
            view["attempt"] = job.attempt
    if retried_as is not None:
        view["retried_as"] = retried_as
    return {**view, **urls(base_url, runs_dir, run.run_id)}


def parse_statuses(text: str | None) -> set[str] | None:
    """`success,failed` -> {"success", "failed"}; None for no filter.

    Raises:
        ValueError: A status that does not exist (the message lists those that do).
    """
    if not text:
        return None
    wanted = {part.strip().lower() for part in text.split(",") if part.strip()}
    unknown = wanted - set(STATUSES)
    if unknown:
        raise ValueError(
            f"unknown status {', '.join(sorted(unknown))}; use any of: {', '.join(STATUSES)}"
        )
    return wanted


def history_statuses(wanted: Collection[str]) -> list[RunStatus]:
    """The history statuses among `wanted` (everything but `queued`)."""
    return [RunStatus(s.upper()) for s in wanted if s != QUEUED]


def lookup(store: RunStore, run_id: str) -> StoredRun | None:
    """The history's record of exactly this run id, or None."""
    try:
        run = store.get(run_id)
    except DotError:
        return None
    return run if run.run_id == run_id else None

"""The webhook's durable queue: ids, idempotency, serialization per environment, limits, recovery."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from datum_dot.history import RUN_ID
from datum_dot.webhook.errors import IdempotencyConflictError, QueueError, QueueFullError
from datum_dot.webhook.jobs import JobRequest, JobState
from datum_dot.webhook.queue import JobQueue


def request(env: str = "prod", *, project: str = "shop", spec: str | None = None) -> JobRequest:
    return JobRequest(
        project=project,
        project_dir="/srv/shop",
        project_name="jaffle_dot",
        spec=spec if spec is not None else env,
        env=env,
        ref=None,
        commit=None,
        command=("build",),
    )


def test_queue_enqueue_allocates_history_run_ids(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    done = queue.enqueue(request(), idempotency_key=None, fingerprint="a")
    assert done.created
    assert RUN_ID.fullmatch(done.job.run_id)
    assert done.job.run_id.startswith("jaffle_dot-")
    assert done.job.state is JobState.QUEUED
    assert queue.get(done.job.run_id) == done.job
    assert (tmp_path / "webhook.sqlite").stat().st_mode & 0o777 == 0o600


def test_queue_same_idempotency_key_same_job(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    first = queue.enqueue(request(), idempotency_key="k", fingerprint="a")
    again = queue.enqueue(request(), idempotency_key="k", fingerprint="a")
    assert not again.created
    assert again.job.run_id == first.job.run_id
    assert queue.find("shop", "k", "a") == first.job
    assert queue.counts()[JobState.QUEUED] == 1
    # The key is per project.
    other = queue.enqueue(request(project="other"), idempotency_key="k", fingerprint="a")
    assert other.created


def test_queue_idempotency_key_with_another_request_conflicts(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    queue.enqueue(request(), idempotency_key="k", fingerprint="a")
    with pytest.raises(IdempotencyConflictError, match="used for another request"):
        queue.enqueue(request("dev"), idempotency_key="k", fingerprint="b")
    with pytest.raises(IdempotencyConflictError):
        queue.find("shop", "k", "b")


def test_queue_concurrent_same_key_makes_one_job(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    ids: list[str] = []

    def add() -> None:
        ids.append(queue.enqueue(request(), idempotency_key="same", fingerprint="a").job.run_id)

    threads = [threading.Thread(target=add) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1
    assert queue.counts()[JobState.QUEUED] == 1


def test_queue_full_refuses_with_retry_after(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path, max_unfinished=2)
    queue.enqueue(request(), idempotency_key=None, fingerprint="a")
    job = queue.enqueue(request(), idempotency_key=None, fingerprint="a").job
    with pytest.raises(QueueFullError) as caught:
        queue.enqueue(request(), idempotency_key=None, fingerprint="a")
    assert caught.value.retry_after > 0
    queue.claim()
    queue.finish(job.run_id, "SUCCESS")  # done rows do not count
    queue.enqueue(request(), idempotency_key=None, fingerprint="a")


def test_queue_claim_serializes_one_environment(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    p1 = queue.enqueue(request("prod"), idempotency_key=None, fingerprint="a").job
    p2 = queue.enqueue(request("prod"), idempotency_key=None, fingerprint="a").job
    d1 = queue.enqueue(request("dev"), idempotency_key=None, fingerprint="a").job
    first, second = queue.claim(), queue.claim()
    assert first is not None
    assert second is not None
    assert (first.run_id, second.run_id) == (p1.run_id, d1.run_id)  # prod waits behind prod
    assert queue.claim() is None
    queue.finish(p1.run_id, "SUCCESS")
    third = queue.claim()
    assert third is not None
    assert third.run_id == p2.run_id
    assert third.state is JobState.RUNNING


def test_queue_release_keeps_the_place_in_line(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    a = queue.enqueue(request(), idempotency_key=None, fingerprint="a").job
    b = queue.enqueue(request("dev"), idempotency_key=None, fingerprint="a").job
    claimed = queue.claim()
    assert claimed is not None
    queue.release(claimed.run_id)
    again = queue.claim()
    assert again is not None
    assert again.run_id == a.run_id
    assert queue.position(b) == 0


def test_queue_recover_requeues_unstarted_and_finishes_started(tmp_path: Path) -> None:
    # A job claimed by a process that is gone: claim it in a child process that then exits.
    queue = JobQueue(tmp_path)
    started = queue.enqueue(request("prod"), idempotency_key=None, fingerprint="a").job
    unstarted = queue.enqueue(request("dev"), idempotency_key=None, fingerprint="a").job
    code = (
        "import sys; from pathlib import Path; from datum_dot.webhook.queue import JobQueue; "
        "q = JobQueue(Path(sys.argv[1])); q.claim(); q.claim()"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env=os.environ)
    assert queue.counts()[JobState.RUNNING] == 2
    mine = queue.enqueue(request("ci"), idempotency_key=None, fingerprint="a").job
    claimed = queue.claim()
    assert claimed is not None
    assert claimed.run_id == mine.run_id  # claimed by this live process: left alone
    history = {started.run_id: "ABORTED"}
    recovered = queue.recover(history.get)
    assert recovered.requeued == (unstarted.run_id,)
    assert recovered.finished == (started.run_id,)
    assert queue.get(started.run_id).outcome == "ABORTED"  # type: ignore[union-attr]
    assert queue.get(unstarted.run_id).state is JobState.QUEUED  # type: ignore[union-attr]
    assert queue.get(mine.run_id).state is JobState.RUNNING  # type: ignore[union-attr]


def test_queue_remembers_signatures_until_they_expire(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    assert queue.remember_signature("abc", expires_at=100.0, now=50.0)
    assert not queue.remember_signature("abc", expires_at=100.0, now=60.0)
    assert queue.remember_signature("abc", expires_at=300.0, now=200.0)  # expired, forgotten


def test_queue_prune_forgets_old_done_jobs(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path)
    job = queue.enqueue(request(), idempotency_key="k", fingerprint="a").job
    queue.claim()
    queue.finish(job.run_id, "SUCCESS")
    assert queue.prune(older_than=timedelta(days=1)) == 0
    assert queue.prune(older_than=timedelta(seconds=-1)) == 1
    assert queue.find("shop", "k", "a") is None


def test_queue_refuses_another_programs_file(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "webhook.sqlite")
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()
    with pytest.raises(QueueError, match="not a datum-dot webhook queue"):
        JobQueue(tmp_path).enqueue(request(), idempotency_key=None, fingerprint="a")

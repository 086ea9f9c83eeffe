"""The run history's schema in PostgreSQL: versioned migrations, in the `datum_dot` schema.

The columns are SQLite's (`database.MIGRATIONS`), so one SQL text serves both, plus what only a
shared database needs: the folder of the run on the host that ran it (`run_dir`), the writer's
lease (`lease_until`, renewed while the run runs: see `pglease`), and the output lines
(`run_lines`), so that another host can show and follow them. Times stay fixed-width ISO text,
as in SQLite: text order is time order, and a copy between the two is exact.

`run_id` sorts by bytes (`COLLATE "C"`) whatever the database's locale, as SQLite sorts it: the
prefix ranges `RunStore.get` uses depend on it.

Ordered; never edit one once shipped: append a new one.
"""

from __future__ import annotations

SCHEMA_NAME = "datum_dot"
LOCK_KEY = 0x646F7431  # "dot1": the advisory lock two starting hosts migrate under
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        run_id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
        project TEXT NOT NULL,
        spec TEXT NOT NULL,
        env TEXT,
        ref TEXT,
        commit_sha TEXT,
        command TEXT NOT NULL,
        argv TEXT NOT NULL,
        runtime TEXT NOT NULL,
        trigger TEXT NOT NULL,
        hostname TEXT NOT NULL,
        pid BIGINT NOT NULL,
        boot_id TEXT NOT NULL,
        start_ticks BIGINT,
        started_at TEXT COLLATE "C" NOT NULL,
        finished_at TEXT COLLATE "C",
        duration_seconds DOUBLE PRECISION,
        status TEXT NOT NULL CHECK (status IN
            ('RUNNING', 'SUCCESS', 'FAILED', 'TIMEOUT', 'CANCELLED', 'ABORTED', 'SKIPPED')),
        exit_code INTEGER,
        dbt_exit_code INTEGER,
        error_class TEXT,
        error_message TEXT,
        suggestion TEXT,
        models INTEGER, seeds INTEGER, snapshots INTEGER, tests INTEGER,
        failures INTEGER, warnings INTEGER, skipped INTEGER,
        schedule TEXT,
        error_node TEXT,
        artifacts TEXT,
        state TEXT,
        relations_indexed INTEGER,
        run_dir TEXT,
        warm INTEGER,
        lease_until TIMESTAMPTZ
    );
    CREATE INDEX runs_by_started ON runs (started_at, run_id);
    CREATE INDEX runs_by_status ON runs (status, started_at, run_id);
    CREATE INDEX runs_by_env ON runs (env, started_at, run_id);
    CREATE INDEX runs_by_project ON runs (project, started_at, run_id);
    CREATE INDEX runs_by_schedule ON runs (project, schedule, started_at, run_id);
    CREATE INDEX runs_by_env_finished ON runs (project, env, status, finished_at);
    CREATE INDEX runs_by_tail ON runs (right(run_id, 8));
    CREATE TABLE built_relations (
        run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        unique_id TEXT NOT NULL,
        relation TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        PRIMARY KEY (run_id, unique_id)
    );
    CREATE INDEX built_by_relation ON built_relations (relation);
    CREATE INDEX built_by_name ON built_relations (name);
    CREATE TABLE run_lines (
        run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        stream TEXT NOT NULL,
        line TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    """,
)
MIGRATIONS += (
    # 2: who holds each advisory lock (builds, schedules), so that a waiter can name the host.
    """
    CREATE TABLE lock_holders (
        key BIGINT PRIMARY KEY,
        name TEXT NOT NULL,
        hostname TEXT NOT NULL,
        pid BIGINT NOT NULL,
        since TEXT NOT NULL
    );
    """,
)
MIGRATIONS += (
    # 3: a run's dbt artifacts, kept in the database with `--artifacts-to-db` so that they
    # outlive the host (a pod) that ran it: zlib-compressed, with the sha256 of the bytes before
    # compression (see `dbartifacts`). Already compressed, so TOAST stores them as they are.
    """
    CREATE TABLE run_artifacts (
        run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        bytes BIGINT NOT NULL,
        data BYTEA NOT NULL,
        PRIMARY KEY (run_id, name)
    );
    ALTER TABLE run_artifacts ALTER COLUMN data SET STORAGE EXTERNAL;
    """,
)
MIGRATIONS += (
    # 4: the webhook's queue, shared by the servers of every host (webhook/pgqueue.py). One
    # running job per project and environment is a unique index, so two servers claiming at
    # once cannot both start one; a job's `run_id` is its current attempt's, `retry_of` the
    # attempt before it, taken over after its server stopped renewing `lease_until`;
    # `job_retries` links each attempt that did not end to the one that retried it.
    """
    CREATE TABLE jobs (
        seq BIGSERIAL PRIMARY KEY,
        run_id TEXT COLLATE "C" NOT NULL UNIQUE,
        project TEXT NOT NULL,
        env TEXT NOT NULL,
        idempotency_key TEXT,
        fingerprint TEXT NOT NULL,
        request TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done')),
        accepted_at TEXT NOT NULL,
        claimed_at TEXT,
        finished_at TEXT,
        outcome TEXT,
        worker_host TEXT,
        worker_pid BIGINT,
        worker_boot_id TEXT,
        worker_start_ticks BIGINT,
        lease_until TIMESTAMPTZ,
        attempt INTEGER NOT NULL DEFAULT 1,
        retry_of TEXT COLLATE "C",
        UNIQUE (project, idempotency_key)
    );
    CREATE INDEX jobs_by_state ON jobs (state, seq);
    CREATE UNIQUE INDEX jobs_one_running ON jobs (project, env) WHERE state = 'running';
    CREATE TABLE job_retries (
        run_id TEXT COLLATE "C" PRIMARY KEY,
        retried_as TEXT COLLATE "C" NOT NULL,
        seq BIGINT NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE
    );
    CREATE INDEX job_retries_by_job ON job_retries (seq);
    CREATE TABLE job_signatures (
        signature TEXT PRIMARY KEY,
        expires_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX job_signatures_by_expiry ON job_signatures (expires_at);
    """,
)
MIGRATIONS += (
    # 5: the run this one retries (SQLite's migration 6): a webhook job another server took over.
    """
    ALTER TABLE runs ADD COLUMN retry_of TEXT COLLATE "C";
    """,
)

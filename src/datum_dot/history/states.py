"""The live state of an environment, from the artifacts its plain runs left in the history.

`--defer ENV` (no ref) defers to the schema(s) a plain `dot build ENV` writes: the state is the
manifest of the newest successful plain run of ENV that wrote them (build, run, seed, snapshot,
clone; a cron or webhook run without `@ref` counts). A newer run whose folder was deleted, or
whose manifest.json is no longer what it wrote (its sha256 differs; not JSON), is passed over
with a line saying so, and the next older one is used. With the history in PostgreSQL, a run
whose artifacts are in the database (`--artifacts-to-db`) is used from there when its folder is
not on this host (a run another host, or a pod, made): they are fetched into
`$DATUM_HOME/artifacts/<run_id>/`, checked against their sha256.
"""

from __future__ import annotations

import json

from datum_dot.errors import HistoryError
from datum_dot.history.artifacts import MANIFEST, sha256_of
from datum_dot.history.records import StoredRun
from datum_dot.history.store import RunStore
from datum_dot.runs.state import WRITING_RUNS, LiveSearch, LiveState


class HistoryStates:
    """`runs.state.StateHistory` over a `RunStore`.

    Args:
        store: The run history.
    """

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def live_state(self, project: str, env: str) -> LiveSearch:
        """The newest successful plain run of `env` that wrote its schema(s), with a usable
        manifest; and the newer runs passed over, and why.

        Raises:
            HistoryError: The history file is unusable.
        """
        skipped: list[str] = []
        for run in self.store.plain_successes(project=project, env=env):
            if not run.start.command or run.start.command[0] not in WRITING_RUNS:
                continue
            if MANIFEST not in run.artifacts:
                continue  # recorded before runs kept their artifacts, or dbt wrote none
            state_dir = run.run_dir
            problem = _manifest_problem(run)
            if problem is not None and run.artifacts[MANIFEST].in_db and self.store.in_postgres:
                try:
                    state_dir = self.store.fetch_artifacts(run)
                    problem = None
                except (HistoryError, OSError) as e:
                    problem = f"{problem}; its copy in the database cannot be used: {_why(e)}"
            if problem is not None:
                skipped.append(problem)
                continue
            assert run.finished_at is not None  # noqa: S101 - a SUCCESS record is finished
            found = LiveState(
                run_id=run.run_id,
                commit=run.start.commit,
                finished_at=run.finished_at,
                state_dir=state_dir,
                command=run.start.command,
                trigger=run.start.trigger,
            )
            return LiveSearch(found, tuple(skipped))
        return LiveSearch(None, tuple(skipped))


def _why(error: HistoryError | OSError) -> str:
    if isinstance(error, HistoryError):
        return error.message
    return str(error.strerror or error)


def _manifest_problem(run: StoredRun) -> str | None:
    """Why a run's kept manifest cannot be used, or None when it is the file the run wrote."""
    path = run.run_dir / MANIFEST
    if not run.run_dir.is_dir():
        return f"run {run.run_id}: its folder {run.run_dir} was deleted"
    try:
        digest = sha256_of(path)
    except OSError as e:
        return f"run {run.run_id}: {path} cannot be read ({e.strerror or e})"
    if digest == run.artifacts[MANIFEST].sha256:
        return None
    try:
        json.loads(path.read_bytes())
    except (OSError, ValueError):
        return f"run {run.run_id}: {path} is not JSON"
    return f"run {run.run_id}: {path} changed since the run wrote it (sha256 differs)"

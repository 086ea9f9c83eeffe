"""Which source serves a dbt Cloud run's node results: the Discovery API or run_results.json.

`runtimes.cloud.results` chooses: `auto` (the default) asks the Discovery API and falls back to
the run's `run_results.json` artifact when the API is unreachable, refuses the token, errors or
has nothing yet; `discovery` asks only the API; `artifacts` reads only the artifact, as before
the API was used. Either way one line says which source served the run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from datum_dot.runtimes import clouddiscovery
from datum_dot.runtimes.base import JsonObject
from datum_dot.runtimes.cloudjob import CloudSettings

Source = Literal["discovery", "artifacts"]
RUN_RESULTS = "run_results.json"


@dataclass(frozen=True)
class Served:
    """The results chosen for one run.

    Attributes:
        document: The run_results document to keep (the artifact, or the API's merged over it);
            None when no source had results.
        source: Which source served them, or None.
        note: One line for the run's output naming the source (and why not the API).
        warning: The note is about results that could not be had at all.
    """

    document: JsonObject | None
    source: Source | None
    note: str
    warning: bool = False


def serve_results(
    settings: CloudSettings,
    token: str,
    *,
    run_id: int,
    job_id: int | None,
    artifact: JsonObject | None,
) -> Served:
    """Choose the run's node results as `settings.results` says.

    Args:
        settings: The cloud runtime's settings.
        token: The API token (also good for the Discovery API when it has metadata access).
        run_id: The finished run.
        job_id: Its job (the Discovery API finds runs by job), if known.
        artifact: The run's run_results.json, if it left one.

    Returns:
        The document to keep, its source and the line to show.
    """
    head = f"node results of dbt Cloud run {run_id}"
    if settings.results == "artifacts":
        return _artifact(head, artifact, "runtimes.cloud.results is artifacts")
    url = settings.discovery_endpoint()
    if url is None:
        problem = f"no Discovery API URL is known for {settings.base_url}; set runtimes.cloud.discovery_url"
    elif job_id is None:
        problem = "the run's job is not known"
    else:
        answer = clouddiscovery.fetch_results(
            url, token, job_id=job_id, run_id=run_id, timeout=settings.request_timeout_seconds
        )
        if not answer.problem:
            document = clouddiscovery.merge_results(artifact, answer.nodes)
            return Served(document, "discovery", f"{head}: from the Discovery API ({url})")
        problem = answer.problem
    if settings.results == "discovery":
        return Served(
            None,
            None,
            f"{head}: none, {problem} (runtimes.cloud.results is discovery: run_results.json is not read)",
            warning=True,
        )
    return _artifact(head, artifact, problem)


def keep_results(target: Path, served: Served, artifact: Path | None) -> None:
    """Put the chosen run_results.json in the run's target folder, where everything reads it.

    The artifact is copied as it is; the Discovery API's document is written atomically.
    """
    if served.source == "artifacts" and artifact is not None:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(artifact, target / RUN_RESULTS)
    elif served.document is not None:
        target.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".run_results.", suffix=".tmp", dir=target)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(served.document, handle)
            Path(tmp).replace(target / RUN_RESULTS)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)  # a half-written file must not pose as results
            raise


def _artifact(head: str, artifact: JsonObject | None, why: str) -> Served:
    if artifact is None:
        return Served(None, None, f"{head}: none, the run left no run_results.json and {why}")
    return Served(artifact, "artifacts", f"{head}: from run_results.json ({why})")

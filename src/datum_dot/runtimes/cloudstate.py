"""`--defer ENV --state-source cloud`: the live state of an environment run by a dbt Cloud job.

The environment's `runtimes.cloud` settings name the job (`job_ids.build`, else `default`, else
`job_id`); its latest successful run's artifacts are fetched through the Admin API into the
same cache the cloud runtime keeps (`.dot/cloud-cache/<run_id>/`), so a run id is fetched once.
Finding the run is a read (planning and dry runs do it); fetching happens before dbt runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from datum_dot.errors import BaselineError, ConfigError
from datum_dot.runtimes import cloudapi
from datum_dot.runtimes.cloudcache import ArtifactCache, cache_disabled
from datum_dot.runtimes.cloudjob import CloudSettings, parse_settings

STATE_ARTIFACTS = ("manifest.json", "run_results.json", "sources.json")


@dataclass(frozen=True)
class CloudState:
    """The dbt Cloud run whose manifest a run defers to.

    Attributes:
        account_id: The dbt Cloud account.
        job_id: The job of the environment.
        run_id: Its latest successful run.
        finished_at: When that run finished (UTC), as dbt Cloud says.
        git_sha: The commit it ran, where dbt Cloud says.
        folder: The cache folder its artifacts are (or will be) in.
    """

    account_id: int
    job_id: int
    run_id: int
    finished_at: datetime | None
    git_sha: str | None
    folder: Path

    def provenance(self) -> dict[str, Any]:
        """The provenance recorded with the run: account, job, run id, finished at."""
        return {
            "account_id": self.account_id,
            "job_id": self.job_id,
            "run_id": self.run_id,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "git_sha": self.git_sha,
        }


def _settings(env_name: str, runtimes: Mapping[str, Mapping[str, Any]]) -> CloudSettings:
    block = runtimes.get("cloud")
    if not block:
        raise ConfigError(
            f"--state-source cloud: environment {env_name} names no dbt Cloud job "
            "(no runtimes.cloud block)",
            f"add environment.{env_name}.runtimes.cloud (account_id, job_ids, api_token_env) to "
            f"dot_environments.yml, or defer to the run history: --defer {env_name}",
        )
    return parse_settings(block)


def _client(settings: CloudSettings, environ: Mapping[str, str]) -> cloudapi.CloudClient:
    token = environ.get(settings.api_token_env, "").strip()
    if not token:
        raise ConfigError(
            f"--state-source cloud: environment variable {settings.api_token_env} "
            "(runtimes.cloud.api_token_env) is not set",
            f"export {settings.api_token_env}=<a dbt Cloud service token>",
        )
    return cloudapi.CloudClient(
        base_url=settings.base_url,
        account_id=settings.account_id,
        token=token,
        token_env=settings.api_token_env,
        retry_delays=settings.retry_delays_seconds,
        timeout=settings.request_timeout_seconds,
    )


def find_cloud_state(
    env_name: str,
    runtimes: Mapping[str, Mapping[str, Any]],
    environ: Mapping[str, str],
    project_dir: Path,
) -> CloudState:
    """The latest successful run of the environment's dbt Cloud job (a read; nothing fetched).

    Raises:
        ConfigError: The environment names no job, or the token's variable is not set.
        BaselineError: The job has no successful run.
        CloudConfigError: dbt Cloud refused the token, the account or the job.
        CloudError: dbt Cloud could not be reached or answered oddly.
    """
    settings = _settings(env_name, runtimes)
    job_id = settings.job_for("build")
    assert job_id is not None  # noqa: S101 - parse_settings requires a job
    with _client(settings, environ) as client:
        run = client.latest_successful_run(job_id)
    if run is None:
        raise BaselineError(
            f"dbt Cloud job {job_id} (environment {env_name}) has no successful run to defer to",
            f"run the job in dbt Cloud first, or build it here: dot build {env_name} --runtime cloud",
        )
    return CloudState(
        account_id=settings.account_id,
        job_id=job_id,
        run_id=run.id,
        finished_at=run.finished_at,
        git_sha=run.git_sha,
        folder=_cache(settings, project_dir).folder(run.id),
    )


def fetch_cloud_state(
    state: CloudState,
    env_name: str,
    runtimes: Mapping[str, Mapping[str, Any]],
    environ: Mapping[str, str],
    project_dir: Path,
    *,
    use_cache: bool = True,
) -> Path:
    """Fetch the run's artifacts into the cache (unless already there); returns their folder.

    Raises:
        BaselineError: The run has no manifest.json.
        CloudConfigError: dbt Cloud refused the token or the run.
        CloudError: dbt Cloud could not be reached.
    """
    settings = _settings(env_name, runtimes)
    cache = _cache(settings, project_dir)
    if use_cache and not cache_disabled(environ) and cache.get(state.run_id) is not None:
        return cache.folder(state.run_id)
    with _client(settings, environ) as client:
        names = [n for n in client.list_artifacts(state.run_id) if n in STATE_ARTIFACTS]
        if "manifest.json" not in names:
            raise BaselineError(
                f"dbt Cloud run {state.run_id} (job {state.job_id}) has no manifest.json",
                "open the run in dbt Cloud to see why; a later successful run is used once "
                "there is one",
            )
        files = {name: client.artifact(state.run_id, name) for name in names}
    return cache.put(state.run_id, files, {"account_id": state.account_id, "job_id": state.job_id})


def _cache(settings: CloudSettings, project_dir: Path) -> ArtifactCache:
    root = project_dir / ".dot" / "cloud-cache"
    return ArtifactCache(root, ttl=timedelta(hours=settings.cache_ttl_hours))

"""A small client of the dbt Cloud Administrative API v2, with httpx.

Every JSON response is the envelope `{data, status: {code, is_success, user_message,
developer_message}, extra}` and is validated with pydantic before use. Run statuses are integers:
1 queued, 2 starting, 3 running, 10 success, 20 error, 30 cancelled (the last three are final).
401, 403, 404, 429 and 5xx each get their own message; 429 and 5xx (and dropped connections) are
retried with backoff (2, 4, 8 s by default; a 429's `Retry-After` wins).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import IntEnum
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from datum_dot.errors import BadInputError, DotError

T = TypeVar("T")
MAX_RETRY_AFTER_SECONDS = 60.0


class RunStatus(IntEnum):
    """dbt Cloud's run statuses."""

    QUEUED = 1
    STARTING = 2
    RUNNING = 3
    SUCCESS = 10
    ERROR = 20
    CANCELLED = 30

    @property
    def is_final(self) -> bool:
        """Success, error and cancelled are final."""
        return self >= RunStatus.SUCCESS


class CloudError(DotError):
    """dbt Cloud answered with an error we cannot recover from (exit 30)."""


class CloudTransientError(CloudError):
    """dbt Cloud was unreachable, rate-limiting or failing (429, 5xx) after every retry."""


class CloudConfigError(BadInputError):
    """dbt Cloud refused the request because of our settings (401, 403, 404): exit 20."""


def _timestamp(value: object) -> object:
    # dbt Cloud writes `2021-11-26 16:48:41.431645+00:00` (a space, not ISO's `T`).
    if isinstance(value, str) and len(value) > 10 and value[10] == " ":
        return value[:10] + "T" + value[11:]
    return value


class ApiStatus(BaseModel):
    """The `status` member of every response."""

    model_config = ConfigDict(extra="allow", frozen=True)

    code: int
    is_success: bool
    user_message: str | None = None
    developer_message: str | None = None


class Envelope(BaseModel, Generic[T]):
    """`{data, status, extra}`."""

    model_config = ConfigDict(extra="allow", frozen=True)

    data: T
    status: ApiStatus
    extra: dict[str, Any] | None = None


class ErrorEnvelope(BaseModel):
    """The envelope of an error response (`data` is usually null)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    status: ApiStatus


class RunStep(BaseModel):
    """One step (one dbt command) of a run."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: int | None = None
    index: int = 0
    name: str = ""
    status: int | None = None
    logs: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    _ts = field_validator("started_at", "finished_at", mode="before")(_timestamp)


class Run(BaseModel):
    """A run of a job (the fields we use; the API sends many more)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: int
    status: RunStatus
    account_id: int | None = None
    job_definition_id: int | None = None
    status_humanized: str | None = None
    status_message: str | None = None
    git_sha: str | None = None
    href: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    run_steps: list[RunStep] = Field(default_factory=list)

    _ts = field_validator("created_at", "started_at", "finished_at", mode="before")(_timestamp)


class TriggerRequest(BaseModel):
    """The body of `POST .../jobs/{job_id}/run/` (None members are left out)."""

    model_config = ConfigDict(frozen=True)

    cause: str
    git_sha: str | None = None
    schema_override: str | None = None
    steps_override: list[str] | None = None
    threads_override: int | None = None
    target_name_override: str | None = None


class CloudClient:
    """The Admin API v2 for one account, over one pooled httpx client."""

    def __init__(
        self,
        *,
        base_url: str,
        account_id: int,
        token: str,
        token_env: str,
        retry_delays: Sequence[float] = (2.0, 4.0, 8.0),
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.account_id = account_id
        self._token_env = token_env
        self._delays = tuple(retry_delays)
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=f"{base_url.rstrip('/')}/api/v2/accounts/{account_id}/",
            headers={"Authorization": f"Token {token}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
        )

    def __enter__(self) -> CloudClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def trigger(self, job_id: int, body: TriggerRequest) -> Run:
        """Start a run of a job. Raises CloudError, CloudConfigError."""
        payload = body.model_dump(exclude_none=True)
        return self._data("POST", f"jobs/{job_id}/run/", Run, what=f"job {job_id}", json=payload)

    def get_run(self, run_id: int, *, steps: bool = False) -> Run:
        """A run's state (with its steps' logs when `steps`)."""
        params = {"include_related": '["run_steps"]'} if steps else None
        return self._data("GET", f"runs/{run_id}/", Run, what=f"run {run_id}", params=params)

    def cancel(self, run_id: int) -> Run:
        """Ask dbt Cloud to cancel a run."""
        return self._data("POST", f"runs/{run_id}/cancel/", Run, what=f"run {run_id}")

    def retry(self, run_id: int) -> Run:
        """Start a new run that retries the failed nodes of a finished run."""
        return self._data("POST", f"runs/{run_id}/retry/", Run, what=f"run {run_id}")

    def latest_run(self, job_id: int) -> Run | None:
        """The newest run of a job, if it has any."""
        params = {"job_definition_id": str(job_id), "order_by": "-id", "limit": "1"}
        runs: list[Run] = self._data(
            "GET", "runs/", list[Run], what=f"runs of job {job_id}", params=params
        )
        return runs[0] if runs else None

    def latest_successful_run(self, job_id: int) -> Run | None:
        """The newest run of a job that succeeded (status 10), if it has one."""
        params = {
            "job_definition_id": str(job_id),
            "status": str(int(RunStatus.SUCCESS)),
            "order_by": "-id",
            "limit": "10",
        }
        runs: list[Run] = self._data(
            "GET", "runs/", list[Run], what=f"successful runs of job {job_id}", params=params
        )
        # The filter is the API's; checked here too, so a server that ignores it is no risk.
        return next((run for run in runs if run.status == RunStatus.SUCCESS), None)

    def list_artifacts(self, run_id: int) -> list[str]:
        """The paths of a run's artifacts (`manifest.json`, `compiled/...`)."""
        return self._data(
            "GET", f"runs/{run_id}/artifacts/", list[str], what=f"artifacts of run {run_id}"
        )

    def artifact(self, run_id: int, path: str) -> bytes:
        """One artifact, as the raw file."""
        response = self._send(
            "GET", f"runs/{run_id}/artifacts/{path}", what=f"{path} of run {run_id}"
        )
        return response.content

    def _data(
        self,
        method: str,
        path: str,
        model: type[T] | Any,
        *,
        what: str,
        json: Mapping[str, object] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> T:
        response = self._send(method, path, what=what, json=json, params=params)
        try:
            envelope: Envelope[Any] = Envelope[model].model_validate_json(response.content)  # type: ignore[valid-type]
        except ValidationError as e:
            raise CloudError(
                f"dbt Cloud's answer to {method} {path} does not have the API v2 shape: {e.errors()[0]['msg']} at {'.'.join(map(str, e.errors()[0]['loc']))}",
                "check runtimes.cloud.base_url: it must be the dbt Cloud host (https://cloud.getdbt.com or your region's)",
            ) from e
        return envelope.data  # type: ignore[no-any-return]

    def _send(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json: Mapping[str, object] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, json=json, params=params)
            except httpx.TransportError as e:
                if attempt >= len(self._delays):
                    raise CloudTransientError(
                        f"could not reach dbt Cloud at {self._http.base_url} ({type(e).__name__}: {e}) after {attempt + 1} attempts",
                        "check the network and runtimes.cloud.base_url, then run again",
                    ) from e
                self._sleep(self._delays[attempt])
                attempt += 1
                continue
            code = response.status_code
            if code < 400:
                return response
            if (code == 429 or code >= 500) and attempt < len(self._delays):
                self._sleep(_retry_after(response) or self._delays[attempt])
                attempt += 1
                continue
            raise self._error(response, method, what, attempts=attempt + 1)

    def _error(
        self, response: httpx.Response, method: str, what: str, *, attempts: int
    ) -> DotError:
        code = response.status_code
        detail = _user_message(response)
        said = f": {detail}" if detail else ""
        if code == 401:
            return CloudConfigError(
                f"dbt Cloud rejected the API token in ${self._token_env} (401 Unauthorized){said}",
                f"create a service token (Job Admin) in dbt Cloud and export {self._token_env}=<token>",
            )
        if code == 403:
            return CloudConfigError(
                f"the API token in ${self._token_env} may not {method} {what} in account {self.account_id} (403 Forbidden){said}",
                "give the service token Job Admin (or Job Runner) permission for this account and project",
            )
        if code == 404:
            return CloudConfigError(
                f"dbt Cloud has no {what} in account {self.account_id} (404 Not Found){said}",
                "check runtimes.cloud.account_id and job_ids in dot_environments.yml, and base_url for your region",
            )
        if code == 429:
            return CloudTransientError(
                f"dbt Cloud kept rate-limiting requests for {what} (429 Too Many Requests) after {attempts} attempts{said}",
                "wait a minute and run again, or raise runtimes.cloud.poll_interval_seconds",
            )
        if code >= 500:
            return CloudTransientError(
                f"dbt Cloud failed on {method} {what} ({code}) after {attempts} attempts{said}",
                "check https://status.getdbt.com, then run again (--retries N retries automatically)",
            )
        return CloudError(
            f"dbt Cloud refused {method} {what} ({code}){said}",
            "check the request settings in runtimes.cloud",
        )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_SECONDS)
    except ValueError:
        return None


def _user_message(response: httpx.Response) -> str | None:
    try:
        status = ErrorEnvelope.model_validate_json(response.content).status
    except ValidationError:
        return None
    return status.user_message or status.developer_message

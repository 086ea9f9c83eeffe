"""dbt Cloud runtime settings (`runtimes.cloud`) and the job run a dbt command becomes."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from datum_dot.errors import ConfigError, UsageError

_LOCAL_OPTIONS = frozenset({"--project-dir", "--profiles-dir", "--target-path", "--log-path"})
_STATE_OPTIONS = frozenset({"--state", "--defer-state", "--defer", "--favor-state"})


class CloudSettings(BaseModel):
    """`runtimes.cloud` in dot_environments.yml (the token itself is never here)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_id: int
    api_token_env: str = Field(min_length=1)
    job_id: int | None = None
    job_ids: dict[str, int] = Field(default_factory=dict)
    base_url: str = "https://cloud.getdbt.com"
    poll_interval_seconds: float = Field(default=2.0, gt=0)
    poll_max_interval_seconds: float = Field(default=30.0, gt=0)
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    retry_delays_seconds: list[float] = Field(default_factory=lambda: [2.0, 4.0, 8.0])
    cache_ttl_hours: float = Field(default=24.0, ge=0)
    cause: str = "Triggered by datum-dot"
    results: Literal["auto", "discovery", "artifacts"] = "auto"
    discovery_url: str | None = None

    def job_for(self, command: str) -> int | None:
        """The job to trigger for a dbt command: `job_ids[command]`, `job_ids.default`, `job_id`."""
        return self.job_ids.get(command) or self.job_ids.get("default") or self.job_id

    def discovery_endpoint(self) -> str | None:
        """The Discovery API (GraphQL) URL: `discovery_url`, else derived from a dbt Cloud host.

        dbt Cloud serves it on the `metadata.` host of each region (`cloud.getdbt.com` ->
        `metadata.cloud.getdbt.com`, `emea.dbt.com` -> `metadata.emea.dbt.com`, a cell
        `ab123.us1.dbt.com` -> `ab123.metadata.us1.dbt.com`). Any other host (a proxy, a local
        address) has no known metadata host: None, unless `discovery_url` says.
        """
        if self.discovery_url:
            return self.discovery_url
        parts = urlsplit(self.base_url)
        host = (parts.hostname or "").lower()
        scheme = parts.scheme or "https"
        if host.endswith(".getdbt.com") or host in {"au.dbt.com", "emea.dbt.com"}:
            return f"{scheme}://metadata.{host}/graphql"
        if host.endswith(".dbt.com") and host.count(".") >= 3:
            prefix, rest = host.split(".", 1)
            return f"{scheme}://{prefix}.metadata.{rest}/graphql"
        return None


def parse_settings(settings: Mapping[str, object]) -> CloudSettings:
    """Validate `runtimes.cloud`.

    Raises:
        ConfigError: A key is missing, unknown or of the wrong type, or a token is written inline.
    """
    inline = sorted(key for key in settings if key in {"api_token", "token", "api_key"})
    if inline:
        raise ConfigError(
            f"runtimes.cloud.{inline[0]}: API tokens are never read from config files",
            "remove it and set runtimes.cloud.api_token_env: DBT_CLOUD_API_TOKEN (the variable holding the token)",
        )
    try:
        parsed = CloudSettings.model_validate(dict(settings))
    except ValidationError as e:
        missing = [str(err["loc"][0]) for err in e.errors() if err["type"] == "missing"]
        if missing:
            raise ConfigError(
                f"the cloud runtime needs runtimes.cloud.{missing[0]}"
                + (f" (and {', '.join(missing[1:])})" if missing[1:] else ""),
                "add under environment.<env>.runtimes.cloud: account_id: <id>, job_ids: {build: <id>}, api_token_env: DBT_CLOUD_API_TOKEN",
            ) from e
        first = e.errors()[0]
        raise ConfigError(
            f"runtimes.cloud.{'.'.join(map(str, first['loc']))}: {first['msg']}",
            "see the README's Runtimes section for the cloud settings",
        ) from e
    if parsed.job_id is None and not parsed.job_ids:
        raise ConfigError(
            "the cloud runtime needs a job to trigger: runtimes.cloud.job_ids (or job_id) is not set",
            "add runtimes.cloud.job_ids: {build: <job id>, default: <job id>} (ids from the job's URL in dbt Cloud)",
        )
    return parsed


def build_step(args: Sequence[str]) -> tuple[str, str | None, int | None]:
    """The `steps_override` command for a local argv, and the target and threads it names.

    Local paths (`--project-dir`, `--profiles-dir`, `--target-path`, `--log-path`) mean nothing
    in dbt Cloud and are left out; `--target`/`--threads` become the run's overrides.

    Raises:
        UsageError: The argv defers to local state, which dbt Cloud cannot read.
    """
    words: list[str] = []
    target: str | None = None
    threads: int | None = None
    items = iter(args)
    for arg in items:
        name, eq, inline = arg.partition("=")
        if name in _STATE_OPTIONS:
            raise UsageError(
                "--defer to a local build cannot be used with the cloud runtime (dbt Cloud cannot read local state)",
                "drop --defer, or configure deferral on the dbt Cloud job itself",
            )
        if name in _LOCAL_OPTIONS or name in {"--target", "-t", "--threads"}:
            value = inline if eq else next(items, "")
            if name in {"--target", "-t"}:
                target = value
            elif name == "--threads":
                threads = int(value) if value.isdigit() else None
            continue
        words.append(arg)
    return shlex.join(["dbt", *words]), target, threads

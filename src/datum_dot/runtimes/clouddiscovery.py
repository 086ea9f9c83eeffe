"""Node results of a dbt Cloud run from the Discovery API (GraphQL), merged over run_results.json.

After a run ends, `job(id:, runId:)` is asked for the status, error and execution time of its
models, seeds, snapshots and tests, with the run's API token (`Authorization: Bearer`). What the
API answers is laid over the run's `run_results.json` when there is one: the API's value wins
where it has one, and the artifact keeps what the API does not carry (rows affected, failing-row
counts, timings, compiled code). So everything that reads `run_results.json` (the summary, the
history, the Python API) shows the same nodes whichever source served them.

Any failure (unreachable, 401/403, 5xx, a GraphQL error such as a token without metadata
access, an empty answer while dbt Cloud is still ingesting the run) is an `Answer` with a
`problem` and no nodes: the caller falls back to the artifact and says so in one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from datum_dot.runtimes.base import JsonObject

SOURCE_KEY = "datum_dot_results_source"
"""The key in run_results.json's `metadata` that says which source served the results."""

# Only fields the Discovery API's job schema documents for each kind: one unknown field fails
# the whole query, and the run would never be served from the API.
QUERY = """
query DotRunResults($jobId: BigInt!, $runId: BigInt) {
  job(id: $jobId, runId: $runId) {
    models { uniqueId status error skip executionTime }
    seeds { uniqueId status error skip executionTime }
    snapshots { uniqueId status error skip }
    tests { uniqueId status error skip fail warn }
  }
}
"""
_MESSAGE = 200  # a server's error text is cut to this many characters in the note line


class _Node(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="ignore", frozen=True)

    unique_id: str
    status: str | None = None
    error: str | None = None
    skip: bool | None = None
    execution_time: float | None = None
    fail: bool | None = None
    warn: bool | None = None


class _Job(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    models: list[_Node] | None = None
    seeds: list[_Node] | None = None
    snapshots: list[_Node] | None = None
    tests: list[_Node] | None = None


class _Data(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    job: _Job | None = None


class _Error(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    message: str = ""


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    data: _Data | None = None
    errors: list[_Error] | None = None


@dataclass(frozen=True)
class NodeResult:
    """One node as the Discovery API reports it (None where the API had no value).

    Attributes:
        unique_id: dbt's id of the node.
        status: dbt's status (`success`, `error`, `pass`, `fail`, `warn`, `skipped`).
        execution_time: Seconds the node took.
        error: The node's error message.
    """

    unique_id: str
    status: str | None
    execution_time: float | None
    error: str | None


@dataclass(frozen=True)
class Answer:
    """What the Discovery API gave for one run: nodes, or why there are none.

    Attributes:
        nodes: The run's nodes; empty when the API did not serve them.
        problem: Why it did not (one clause, no secret), or None when it did.
    """

    nodes: tuple[NodeResult, ...] = ()
    problem: str | None = None


def fetch_results(
    url: str, token: str, *, job_id: int, run_id: int, timeout: float = 30.0
) -> Answer:
    """Ask the Discovery API for a finished run's node results; never raises for its failures.

    Args:
        url: The GraphQL endpoint (`https://metadata.cloud.getdbt.com/graphql`).
        token: The dbt Cloud API token (sent as a bearer token, never shown).
        job_id: The run's job.
        run_id: The run.
        timeout: Seconds for the request.

    Returns:
        The nodes, or the problem that kept them from being served.
    """
    body = {"query": QUERY, "variables": {"jobId": job_id, "runId": run_id}}
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    try:
        with httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0))) as http:
            response = http.post(url, json=body, headers=headers)
    except httpx.HTTPError as e:
        return Answer(
            problem=f"the Discovery API at {url} could not be reached ({type(e).__name__})"
        )
    code = response.status_code
    if code in (401, 403):
        return Answer(
            problem=f"the Discovery API refused the token ({code}): it has no metadata access"
        )
    if code >= 400:
        return Answer(problem=f"the Discovery API failed ({code})")
    try:
        parsed = _Response.model_validate_json(response.content)
    except ValidationError:
        return Answer(problem="the Discovery API's answer is not a GraphQL response")
    if parsed.errors:
        said = _redact(parsed.errors[0].message, token)[:_MESSAGE]
        return Answer(problem=f"the Discovery API answered with an error: {said}")
    job = parsed.data.job if parsed.data is not None else None
    nodes = _nodes(job)
    if not nodes:
        return Answer(problem=f"the Discovery API has no results for run {run_id} (yet)")
    return Answer(nodes=nodes)


def merge_results(artifact: JsonObject | None, nodes: Sequence[NodeResult]) -> JsonObject:
    """run_results.json with the Discovery API's values laid over the artifact's (or alone).

    Args:
        artifact: The run's run_results.json, if it has one.
        nodes: What the Discovery API reported.

    Returns:
        A run_results document whose `metadata` names the Discovery API as the source.
    """
    base = artifact or {}
    found = base.get("results")
    results: list[dict[str, object]] = [
        dict(item) for item in (found if isinstance(found, list) else []) if isinstance(item, dict)
    ]
    index = {str(item.get("unique_id", "")): item for item in results}
    for node in nodes:
        item = index.get(node.unique_id)
        if item is None:
            item = {"unique_id": node.unique_id, "status": "", "execution_time": 0.0,
                    "message": None, "failures": None, "adapter_response": {}, "timing": [],
                    "thread_id": None}  # fmt: skip
            results.append(item)
            index[node.unique_id] = item
        if node.status:
            item["status"] = node.status
        if node.execution_time is not None:
            item["execution_time"] = node.execution_time
        if node.error:
            item["message"] = node.error
    meta = base.get("metadata")
    metadata = {**(meta if isinstance(meta, dict) else {}), SOURCE_KEY: "discovery"}
    return cast(JsonObject, {**base, "metadata": metadata, "results": results})


def _nodes(job: _Job | None) -> tuple[NodeResult, ...]:
    if job is None:
        return ()
    kinds = (job.models, job.seeds, job.snapshots, job.tests)
    return tuple(
        NodeResult(node.unique_id, _status(node), node.execution_time, node.error or None)
        for kind in kinds
        for node in kind or ()
        if node.unique_id
    )


def _status(node: _Node) -> str | None:
    if node.status:
        return node.status.lower()
    if node.skip:
        return "skipped"
    if node.fail:
        return "fail"
    if node.warn:
        return "warn"
    return None


def _redact(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text

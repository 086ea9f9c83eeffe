"""Node results of dbt Cloud runs from the Discovery API, and the fall back to run_results.json.

The double serves the Admin API and the Discovery API on loopback; its Discovery answers carry
execution times `DISCOVERY_EXTRA_SECONDS` longer than the artifact's, so each test can tell
which source served a run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datum_dot.runtimes.base import RuntimeContext
from datum_dot.runtimes.cloud import CloudRuntime
from datum_dot.runtimes.clouddiscovery import SOURCE_KEY
from datum_dot.runtimes.cloudjob import parse_settings
from tests.helpers.cloud_double import (
    ACCOUNT,
    DISCOVERY_EXTRA_SECONDS,
    ERROR_JOB,
    NO_METADATA_ACCESS,
    SUCCESS_JOB,
    TOKEN,
    CloudDouble,
    serve,
)
from tests.helpers.example import ExampleProject

TOKEN_ENV = "DBT_CLOUD_API_TOKEN"  # noqa: S105 - a variable name, not a token
BUILD = ["build", "--project-dir", "/local/p", "--select", "orders"]
ORDERS = "model.jaffle.orders"


class Sink:
    """An output sink that keeps every line."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def line(self, stream: str, text: str) -> None:
        self.lines.append((stream, text))

    def notes(self) -> list[tuple[str, str]]:
        return [(s, t) for s, t in self.lines if t.startswith("node results of dbt Cloud run")]


@pytest.fixture
def cloud() -> Iterator[tuple[CloudDouble, str]]:
    double = CloudDouble()
    with serve(double) as url:
        yield double, url


def settings(url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "account_id": ACCOUNT,
        "api_token_env": TOKEN_ENV,
        "job_ids": {"build": SUCCESS_JOB, "default": SUCCESS_JOB},
        "base_url": url,
        "discovery_url": f"{url}/graphql",
        "poll_interval_seconds": 0.02,
        "poll_max_interval_seconds": 0.05,
        "retry_delays_seconds": [0.05],
        **overrides,
    }


def runtime(url: str, tmp_path: Path, **overrides: Any) -> CloudRuntime:
    context = RuntimeContext(
        project_dir=tmp_path, environ={TOKEN_ENV: TOKEN}, target_path=tmp_path / "target"
    )
    made = CloudRuntime.from_settings(settings(url, **overrides), context)
    assert isinstance(made, CloudRuntime)
    return made


def kept_results(tmp_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp_path / "target" / "run_results.json").read_text())
    return data


def seconds(document: dict[str, Any]) -> dict[str, float]:
    return {item["unique_id"]: item["execution_time"] for item in document["results"]}


def test_discovery_serves_the_node_results(cloud: tuple[CloudDouble, str], tmp_path: Path) -> None:
    double, url = cloud
    sink = Sink()
    result = runtime(url, tmp_path).invoke(BUILD, env={}, output=sink)
    [run] = double.runs.values()
    assert result.success
    assert result.metadata["results_source"] == "discovery"
    assert result.statuses == ("success", "success", "pass")
    kept = kept_results(tmp_path)
    # only the GraphQL answer says 40.2 s: the artifact says 0.2 s
    assert seconds(kept)[ORDERS] == pytest.approx(0.2 + DISCOVERY_EXTRA_SECONDS)
    assert kept["metadata"][SOURCE_KEY] == "discovery"
    assert kept["metadata"]["run"] == run.id  # the artifact's own metadata is kept
    [(auth, body)] = double.graphql
    assert auth == f"Bearer {TOKEN}"
    assert body["variables"] == {"jobId": SUCCESS_JOB, "runId": run.id}
    assert "job(id: $jobId, runId: $runId)" in body["query"]
    assert "executionTime" in body["query"]
    assert sink.notes() == [
        (
            "stdout",
            f"node results of dbt Cloud run {run.id}: from the Discovery API ({url}/graphql)",
        )
    ]
    assert not any(TOKEN in text for _, text in sink.lines)


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        ("no-access", "the Discovery API refused the token (403): it has no metadata access"),
        ("down", "the Discovery API failed (500)"),
        ("graphql-error", f"the Discovery API answered with an error: {NO_METADATA_ACCESS}"),
        ("empty", "the Discovery API has no results for run {run} (yet)"),
    ],
)
def test_discovery_failure_falls_back_to_run_results(
    cloud: tuple[CloudDouble, str], tmp_path: Path, mode: str, why: str
) -> None:
    double, url = cloud
    double.discovery = mode
    sink = Sink()
    result = runtime(url, tmp_path).invoke(BUILD, env={}, output=sink)
    [run] = double.runs.values()
    assert result.success
    assert result.metadata["results_source"] == "artifacts"
    assert result.statuses == ("success", "success", "pass")
    kept = kept_results(tmp_path)
    assert seconds(kept)[ORDERS] == pytest.approx(0.2)
    assert SOURCE_KEY not in kept["metadata"]
    assert len(double.graphql) == 1
    assert sink.notes() == [
        (
            "stdout",
            f"node results of dbt Cloud run {run.id}: from run_results.json ({why.format(run=run.id)})",
        )
    ]
    assert not any(TOKEN in text for _, text in sink.lines)


def test_discovery_error_quoting_the_token_is_redacted(
    cloud: tuple[CloudDouble, str], tmp_path: Path
) -> None:
    double, url = cloud
    double.discovery = "echo-token"
    sink = Sink()
    result = runtime(url, tmp_path).invoke(BUILD, env={}, output=sink)
    assert result.metadata["results_source"] == "artifacts"
    [(_, note)] = sink.notes()
    assert "bad credentials: Bearer ***" in note
    assert not any(TOKEN in text for _, text in sink.lines)


def test_discovery_partial_answer_is_completed_from_the_artifact(
    cloud: tuple[CloudDouble, str], tmp_path: Path
) -> None:
    double, url = cloud
    double.discovery = "partial"
    result = runtime(url, tmp_path).invoke(BUILD, env={}, output=Sink())
    assert result.metadata["results_source"] == "discovery"
    kept = kept_results(tmp_path)
    assert seconds(kept) == {
        "model.jaffle.stg_orders": pytest.approx(0.1),  # null in the answer: the artifact's
        ORDERS: pytest.approx(0.2 + DISCOVERY_EXTRA_SECONDS),
        "test.jaffle.not_null_orders_id": 0.0,  # tests: null in the answer
    }
    assert result.statuses == ("success", "success", "pass")


def test_discovery_reports_a_failed_node(cloud: tuple[CloudDouble, str], tmp_path: Path) -> None:
    _, url = cloud
    result = runtime(url, tmp_path, job_ids={"build": ERROR_JOB}).invoke(
        BUILD, env={}, output=Sink()
    )
    assert not result.success
    assert result.metadata["results_source"] == "discovery"
    failed = {n.unique_id: n for n in result.nodes}[ORDERS]
    assert failed.status == "error"
    assert failed.message is not None
    assert failed.message.startswith("Database Error in model orders")
    assert seconds(kept_results(tmp_path))[ORDERS] == pytest.approx(0.2 + DISCOVERY_EXTRA_SECONDS)


def test_results_artifacts_never_asks_the_discovery_api(
    cloud: tuple[CloudDouble, str], tmp_path: Path
) -> None:
    double, url = cloud
    sink = Sink()
    made = runtime(url, tmp_path, results="artifacts")
    assert made.get_runtime_metadata()["results"] == "artifacts"
    result = made.invoke(BUILD, env={}, output=sink)
    assert result.metadata["results_source"] == "artifacts"
    assert double.graphql == []
    [(_, note)] = sink.notes()
    assert note.endswith("from run_results.json (runtimes.cloud.results is artifacts)")


def test_results_discovery_does_not_fall_back(
    cloud: tuple[CloudDouble, str], tmp_path: Path
) -> None:
    double, url = cloud
    double.discovery = "down"
    sink = Sink()
    result = runtime(url, tmp_path, results="discovery").invoke(BUILD, env={}, output=sink)
    assert result.success  # the run itself succeeded in dbt Cloud
    assert result.metadata["results_source"] is None
    assert result.nodes == ()
    assert not (tmp_path / "target" / "run_results.json").exists()
    [(stream, note)] = sink.notes()
    assert stream == "stderr"
    assert "none, the Discovery API failed (500)" in note
    assert "run_results.json is not read" in note


def test_no_discovery_url_for_a_local_host_says_how_to_set_one(
    cloud: tuple[CloudDouble, str], tmp_path: Path
) -> None:
    double, url = cloud
    sink = Sink()
    result = runtime(url, tmp_path, discovery_url=None).invoke(BUILD, env={}, output=sink)
    assert result.metadata["results_source"] == "artifacts"
    assert double.graphql == []
    [(_, note)] = sink.notes()
    assert f"no Discovery API URL is known for {url}; set runtimes.cloud.discovery_url" in note


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://cloud.getdbt.com", "https://metadata.cloud.getdbt.com/graphql"),
        ("https://emea.dbt.com", "https://metadata.emea.dbt.com/graphql"),
        ("https://au.dbt.com/", "https://metadata.au.dbt.com/graphql"),
        ("https://ab123.us1.dbt.com", "https://ab123.metadata.us1.dbt.com/graphql"),
        ("http://127.0.0.1:8080", None),
    ],
)
def test_discovery_endpoint_follows_the_region(base_url: str, expected: str | None) -> None:
    parsed = parse_settings(
        {"account_id": 1, "api_token_env": TOKEN_ENV, "job_id": 2, "base_url": base_url}
    )
    assert parsed.discovery_endpoint() == expected


def test_discovery_url_setting_wins_and_results_is_checked() -> None:
    base = {"account_id": 1, "api_token_env": TOKEN_ENV, "job_id": 2}
    explicit = parse_settings({**base, "discovery_url": "https://meta.example/graphql"})
    assert explicit.discovery_endpoint() == "https://meta.example/graphql"
    assert explicit.results == "auto"
    from datum_dot.errors import ConfigError

    with pytest.raises(ConfigError, match=r"runtimes\.cloud\.results"):
        parse_settings({**base, "results": "graphql"})


# --- end to end: the Python API and the history show what the Discovery API served -----------


@pytest.mark.slow
def test_api_and_history_show_discovery_results(
    cloud: tuple[CloudDouble, str], example: ExampleProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datum_dot

    double, url = cloud
    block = settings(url, job_ids={"build": SUCCESS_JOB})
    example.path.joinpath("dot_environments.user.yml").write_text(
        "environment:\n  all:\n    runtimes:\n      cloud: " + json.dumps(block) + "\n"
    )
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    result = datum_dot.Project(example.path).build("prod@main", runtime="cloud")
    assert result.status == "success", result.errors
    [run] = double.runs.values()
    node = {n.unique_id: n for n in result.nodes}[ORDERS]
    assert node.execution_time == pytest.approx(0.2 + DISCOVERY_EXTRA_SECONDS)
    assert result.metrics["models"] == 2
    assert result.metrics["tests"] == 1
    kept = json.loads(Path(str(result.artifacts["run_results"])).read_text())
    assert kept["metadata"][SOURCE_KEY] == "discovery"
    log = Path(str(result.logs["log_file"])).read_text()
    assert f"node results of dbt Cloud run {run.id}: from the Discovery API" in log
    assert TOKEN not in log
    [row] = datum_dot.Project(example.path).runs(last=1)
    assert row["run_id"] == result.run_id

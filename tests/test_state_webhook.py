"""The webhook takes the same state forms as the command line (`"defer": "prod"`,
`"state_from": "prod@main"`), checks them as it accepts a request, and hands them to the run.
Real git repositories and a real run history; the request models as the API serves them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from datum_dot.errors import BadInputError
from datum_dot.history import RunEnd, RunStart, RunStore
from datum_dot.home.settings import datum_home
from datum_dot.runs.run import RunStatus
from datum_dot.webhook.intake import Ask, Intake, Project
from datum_dot.webhook.jobs import JobRequest
from datum_dot.webhook.models import RunBody
from tests.helpers.example import ExampleProject, make_example
from tests.helpers.webhook import (
    environ,
    kill_fake_dbt,
    start_server,
    use_fake_dbt,
    write_fake_dbt,
)


def _project(example: ExampleProject) -> Project:
    return Project(id="shop", path=example.path, name="jaffle_dot")


def _prod_run(tmp_path: Path) -> str:
    """A successful plain run of prod with a kept manifest, as `dot build prod` leaves one."""
    target = tmp_path / "target"
    target.mkdir()
    (target / "manifest.json").write_text(json.dumps({"nodes": {}}))
    (target / "run_results.json").write_text(json.dumps({"results": []}))
    store = RunStore(datum_home())
    run_id = store.begin(
        RunStart(project="jaffle_dot", spec="prod", command=("build",), env="prod")
    )
    store.finish(run_id, RunEnd(RunStatus.SUCCESS, 0, run_results=target / "run_results.json"))
    return run_id


def test_webhook_state_forms_are_accepted_and_queued(
    example: ExampleProject, tmp_path: Path
) -> None:
    _prod_run(tmp_path)
    ask = Ask(spec="dev", defer="prod", state_from="prod@main", max_state_age=3600.0)
    job = Intake(datum_home()).resolve(_project(example), ask)
    assert (job.defer, job.state_from, job.max_state_age) == ("prod", "prod@main", 3600.0)
    stored = JobRequest.from_json(json.loads(json.dumps(job.to_json())))
    assert stored == job
    # A request queued before the fields existed still loads.
    old = {k: v for k, v in job.to_json().items() if k not in ("defer", "state_from")}
    assert JobRequest.from_json(old).defer is None
    assert ask.fingerprint() != Ask(spec="dev").fingerprint()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"defer": "prod"}, "no successful run of prod"),
        ({"defer": "nope"}, "unknown environment 'nope'"),
        ({"defer": "prod@"}, "empty git ref"),
        ({"defer": "prod@no-such-ref"}, "no-such-ref"),
        ({"state_from": "prod"}, "must name a git ref"),
        ({"state_from": "prod@no-such-ref"}, "no-such-ref"),
        ({"state_from": "prod@main", "args": ("--state", "x")}, "both name the state"),
        ({"state_source": "cloud"}, "reads a live environment's dbt Cloud job"),
        ({"max_state_age": 60.0}, "defer is not given"),
    ],
)
def test_webhook_state_bad_input_is_refused_at_intake(
    example: ExampleProject, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(BadInputError) as raised:
        Intake(datum_home()).resolve(_project(example), Ask(spec="dev", **fields))  # type: ignore[arg-type]
    assert message in raised.value.message
    assert raised.value.hint
    assert int(raised.value.exit_code) == 20


def test_webhook_body_takes_state_fields_strictly() -> None:
    body = RunBody.model_validate(
        {"spec": "dev", "defer": "prod", "state_from": "prod@main", "state_source": "cloud"}
    )
    assert (body.defer, body.state_from, body.state_source) == ("prod", "prod@main", "cloud")
    with pytest.raises(ValidationError):
        RunBody.model_validate({"spec": "dev", "state_source": "s3"})
    with pytest.raises(ValidationError):
        RunBody.model_validate({"spec": "dev", "defer": "prod", "max_state_age": -1})
    schema = RunBody.model_json_schema()["properties"]
    assert {"defer", "state_from", "state_source", "max_state_age"} <= set(schema)


@pytest.mark.slow
def test_webhook_runs_a_request_with_state_from(tmp_path: Path) -> None:
    """Through the real server: the commit is parsed first, and the run compares against it."""
    base = tmp_path
    example = make_example(base, monkeypatch_env=False)
    use_fake_dbt(example.path, write_fake_dbt(base))
    calls = base / "calls.log"
    env = environ(FAKE_DBT_CALLS=str(calls), DOT_EXAMPLE_DUCKDB=str(base / "w.duckdb"))
    assert example.dot("init", env=env).returncode == 0
    server = start_server(example.path, env=env)
    try:
        with server.client() as client:
            response = client.post(
                "/v1/projects/jaffle_dot/runs",
                json={"spec": "dev", "state_from": "prod@main", "args": ["-s", "state:modified+"]},
            )
            refused = client.post(
                "/v1/projects/jaffle_dot/runs", json={"spec": "dev", "state_from": "prod"}
            )
        assert response.status_code == 202, response.text
        assert refused.status_code == 422
        assert "must name a git ref" in refused.text
        record = server.wait_for(response.json()["run_id"])
        assert record["status"] == "SUCCESS", record
        short = example.repo.head()[:8]
        state_dir = example.path / ".dot" / "build" / short / "env" / "prod" / "state"
        assert record["state"]["state_from"]["state"] == str(state_dir)
        lines = calls.read_text().splitlines()
        parse = next(i for i, line in enumerate(lines) if " parse " in f"{line} ")
        build = next(i for i, line in enumerate(lines) if " build " in f"{line} ")
        assert parse < build
        assert f"--state {state_dir}" in lines[build]
        assert "--defer" not in lines[build]
    finally:
        kill_fake_dbt(calls)
        assert server.stop() == 0, server.log()

"""State from anywhere, on real dbt and DuckDB: artifacts kept per run, `--defer ENV` to the live
environment, `--state-from` a commit never built, and `dot which`.

`live` makes, once: commit A (the example) built as plain `prod`; commit B (orders changed)
run as plain `prod -s orders`; commit C (prod's profile reads its DuckDB path from a variable
without a default, the credential a parse must not need); branch `broken` (a model that does
not parse); and an uncommitted change to orders in the working tree. Then, as a user would:
`dot build dev --defer prod -- -s state:modified+`, and the same with `--state-from prod@C`
with that variable unset.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from datum_dot.errors import ExitCode
from datum_dot.history import RunStore
from datum_dot.history.artifacts import sha256_of
from tests.helpers.cloud_double import ACCOUNT, SUCCESS_JOB, TOKEN, CloudDouble, serve
from tests.helpers.example import ExampleProject, make_example
from tests.helpers.history import assert_bad_input, read_json, run_dot, run_in_process, table_names

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("state_live")]

ORDERS = "models/marts/orders.sql"
SECRET = "DOT_STATE_SECRET_DB"  # noqa: S105 - a variable's name, not a secret


@dataclass(frozen=True)
class Live:
    """The project, its history, and the two deferred dev builds."""

    example: ExampleProject
    home: Path
    commits: dict[str, str]
    runs: dict[str, str]
    deferred: subprocess.CompletedProcess[str]
    compared: subprocess.CompletedProcess[str]

    @property
    def env(self) -> dict[str, str]:
        return {"DATUM_HOME": str(self.home), "DOT_EXAMPLE_DUCKDB": str(self.example.database)}

    def dot(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_dot(*args, cwd=self.example.path, env={**self.env, **(env or {})})

    def store(self, home: Path | None = None) -> RunStore:
        return RunStore(home or self.home)


def _orders(marker: str, *, secret_column: bool = False) -> str:
    text = (Path(__file__).parents[1] / ".dot-example" / ORDERS).read_text()
    extra = f"    '{marker}' as version_marker,\n"
    if secret_column:
        # What the run saw of the parse's credential variable: nothing, if placeholders stay
        # with the parse.
        extra += f"    '{{{{ env_var('{SECRET}', 'unset') }}}}' as secret_seen,\n"
    return text.replace("    orders.status,\n", "    orders.status,\n" + extra)


def _secret_profile(project: Path) -> str:
    text = (project / "profiles.yml").read_text()
    head, prod = text.split("    prod:\n")
    line = "path: \"{{ env_var('DOT_EXAMPLE_DUCKDB', 'jaffle.duckdb') }}\""
    assert line in prod, "the example's profiles.yml changed"
    secret = "path: \"{{ env_var('" + SECRET + "') }}\""
    return head + "    prod:\n" + prod.replace(line, secret)


@pytest.fixture(scope="module")
def live(module_monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Live:
    example = make_example(tmp_path_factory.mktemp("live"), monkeypatch_env=False)
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(example.database))
    module_monkeypatch.delenv(SECRET, raising=False)
    home = Path(os.environ["DATUM_HOME"])
    repo, path = example.repo, example.path
    commits = {"A": repo.head()}
    deps, _ = run_in_process(path, "prod", command=("deps",))
    assert deps.exit_code is ExitCode.OK, deps.error
    first, _ = run_in_process(path, "prod")
    assert first.exit_code is ExitCode.OK, first.error
    commits["B"] = repo.commit({ORDERS: _orders("b")}, "orders: marker b")
    second, _ = run_in_process(path, "prod", "-s", "orders", command=("run",))
    assert second.exit_code is ExitCode.OK, second.error
    commits["C"] = repo.commit({"profiles.yml": _secret_profile(path)}, "prod: path from a secret")
    repo.git("checkout", "--quiet", "-b", "broken")
    commits["broken"] = repo.commit(
        {"models/broken.sql": "select {{ oops(\n"}, "a model with a bad tag"
    )
    repo.checkout("main")
    repo.write({ORDERS: _orders("wt", secret_column=True)})
    env = {"DATUM_HOME": str(home), "DOT_EXAMPLE_DUCKDB": str(example.database)}
    deferred = run_dot(
        "build", "dev", "--defer", "prod", "--", "-s", "state:modified+", cwd=path, env=env
    )
    assert deferred.returncode == 0, deferred.stdout + deferred.stderr
    # The dev target folder is the checkout's: keep what the first build left there.
    shutil.copytree(path / "target", path.parent / "deferred-target")
    compared = run_dot(
        "build", "dev", "--defer", "prod", "--state-from", f"prod@{commits['C']}",
        "--", "-s", "state:modified+", cwd=path, env=env,
    )  # fmt: skip
    assert compared.returncode == 0, compared.stdout + compared.stderr
    return Live(
        example,
        home,
        commits,
        {"A": str(first.run_id), "B": str(second.run_id)},
        deferred,
        compared,
    )


def _models(target: Path) -> set[str]:
    ids = [str(r["unique_id"]) for r in read_json(target / "run_results.json")["results"]]
    return {i for i in ids if i.startswith("model.")}


# --- every run keeps its artifacts -----------------------------------------------------------


def test_artifacts_kept_with_sha256_and_listed(live: Live) -> None:
    run = live.store().get(live.runs["A"])
    assert {"manifest.json", "run_results.json"} <= set(run.artifacts)
    for name, artifact in run.artifacts.items():
        kept = run.run_dir / name
        assert sha256_of(kept) == artifact.sha256
        assert kept.stat().st_size == artifact.size
        assert kept.stat().st_mode & 0o777 == 0o600
    # The checkout's target/ has since been rewritten by later runs; the copy has not.
    assert sha256_of(live.example.path / "target" / "manifest.json") != (
        run.artifacts["manifest.json"].sha256
    )
    listed = live.dot("logs", live.runs["A"][-8:], "--artifacts", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {a["name"]: a for a in json.loads(listed.stdout)["artifacts"]}
    assert rows["manifest.json"]["sha256"] == run.artifacts["manifest.json"].sha256
    assert rows["manifest.json"]["present"] is True
    text = live.dot("logs", live.runs["A"][-8:], "--artifacts")
    assert "manifest.json" in text.stdout
    assert str(run.run_dir / "run_results.json") in text.stdout


def test_prune_removes_artifacts_with_the_run(live: Live, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(live.home, home)
    pruned = run_dot("logs", "prune", "--keep", "1", cwd=live.example.path,
                     env={**live.env, "DATUM_HOME": str(home)})  # fmt: skip
    assert pruned.returncode == 0, pruned.stderr
    assert not (home / "runs" / live.runs["A"]).exists()
    with pytest.raises(Exception, match="no run with id"):
        RunStore(home).get(live.runs["A"])


# --- --defer ENV: the live environment --------------------------------------------------------


def test_defer_live_builds_only_changed_model_and_children(live: Live) -> None:
    target = live.example.path.parent / "deferred-target"
    assert _models(target) == {"model.jaffle_dot.orders", "model.jaffle_dot.customers"}
    args = read_json(target / "run_results.json")["args"]
    assert args["defer"] is True
    assert args["state"] == str(live.home / "runs" / live.runs["B"])


def test_defer_live_refs_resolve_to_the_live_schema(live: Live) -> None:
    compiled = live.example.path.parent / "deferred-target" / "compiled" / "jaffle_dot" / "models"
    orders = (compiled / "marts" / "orders.sql").read_text()
    assert re.search(r'"analytics"\."stg_orders"', orders)
    assert re.search(r'"analytics"\."stg_payments"', orders)  # through the ephemeral model
    assert '"dev"' not in orders
    customers = (compiled / "marts" / "customers.sql").read_text()
    assert re.search(r'"dev"\."orders"', customers)
    assert re.search(r'"analytics"\."stg_customers"', customers)
    assert table_names(live.example, "dev") == {"orders", "customers"}


def test_defer_live_plan_names_run_commit_and_age(live: Live) -> None:
    plan = live.dot("build", "dev", "--defer", "prod", "--dry-run", "--json")
    assert plan.returncode == 0, plan.stderr
    defer = json.loads(plan.stdout)["defer"]
    assert defer["source"] == "history"
    assert defer["run_id"] == live.runs["B"]
    assert defer["commit"] == live.commits["B"]
    assert defer["age_seconds"] > 0
    text = live.dot("build", "dev", "--defer", "prod", "--dry-run")
    assert f"live prod: run {live.runs['B']} at commit {live.commits['B'][:8]}" in text.stdout
    assert " old (" in text.stdout
    recorded = live.store().query(last=2, env="dev")[-1]
    assert recorded.start.state is not None
    assert recorded.start.state["defer"]["run_id"] == live.runs["B"]
    shown = live.dot("logs", recorded.run_id)
    assert f"deferred to  prod: run {live.runs['B']} at {live.commits['B'][:8]}" in shown.stdout
    assert "artifacts    manifest.json" in shown.stdout


def test_defer_live_too_old_is_refused_with_its_age(live: Live) -> None:
    result = live.dot("build", "dev", "--defer", "prod", "--max-state-age", "1s", "--dry-run")
    assert_bad_input(result, "older than --max-state-age 1s")
    assert re.search(r"is \d+[smhd]", result.stderr)
    ok = live.dot("build", "dev", "--defer", "prod", "--max-state-age", "1h", "--dry-run")
    assert ok.returncode == 0, ok.stderr


def test_defer_live_without_a_run_names_the_command(live: Live) -> None:
    result = live.dot("build", "dev", "--defer", "ci", "--dry-run")
    assert_bad_input(result, "no successful run of ci")
    assert "hint: run one first: dot build ci" in result.stderr


def test_defer_live_skips_a_manifest_that_is_not_json(live: Live, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(live.home, home)
    (home / "runs" / live.runs["B"] / "manifest.json").write_text("{not json")
    plan = run_dot("build", "dev", "--defer", "prod", "--dry-run", "--json",
                   cwd=live.example.path, env={**live.env, "DATUM_HOME": str(home)})  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    data = json.loads(plan.stdout)
    assert data["defer"]["run_id"] == live.runs["A"]
    warning = next(w for w in data["warnings"] if "passed over" in w)
    assert live.runs["B"] in warning
    assert "is not JSON" in warning
    assert "Traceback" not in plan.stderr


def test_defer_live_deleted_run_folder_uses_the_next_older(live: Live, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(live.home, home)
    shutil.rmtree(home / "runs" / live.runs["B"])
    plan = run_dot("build", "dev", "--defer", "prod", "--dry-run",
                   cwd=live.example.path, env={**live.env, "DATUM_HOME": str(home)})  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    assert f"live prod: run {live.runs['A']}" in plan.stdout
    assert f"passed over  run {live.runs['B']}: its folder" in plan.stdout
    assert "was deleted" in plan.stdout


# --- --state-from: compare against a commit never built ---------------------------------------


def test_state_from_selects_only_changed_nodes_and_builds_no_schema(live: Live) -> None:
    target = live.example.path / "target"
    assert _models(target) == {"model.jaffle_dot.orders", "model.jaffle_dot.customers"}
    short = live.commits["C"][:8]
    state_dir = live.example.path / ".dot" / "build" / short / "env" / "prod" / "state"
    args = read_json(target / "run_results.json")["args"]
    assert args["state"] == str(state_dir)
    assert args["defer_state"] == str(live.home / "runs" / live.runs["B"])
    assert (state_dir / "manifest.json").is_file()
    assert not any(short in schema for schema in live.example.schemas())
    # A parse is not a build: it can never pass for a `--defer prod@C` baseline.
    assert not (state_dir.parent / "target").exists()
    refused = live.dot("build", "dev", "--defer", f"prod@{live.commits['C']}", "--dry-run")
    assert_bad_input(refused, "has not been built")
    # `dot builds` shows the parse's folder for what it is, not as a built schema
    listed = live.dot("builds")
    assert listed.returncode == 0, listed.stderr
    assert "prod: parsed for --state-from only, no schema built" in listed.stdout
    builds = json.loads(live.dot("builds", "--json").stdout)["builds"]
    (parsed,) = [b for b in builds if b["commit"] == live.commits["C"]]
    assert [e["parsed_only"] for e in parsed["envs"]] == [True]


def test_state_from_parse_needs_no_credentials(live: Live) -> None:
    assert SECRET not in os.environ
    assert f"placeholders for the parse only (unset, read by the profile): {SECRET}" in (
        live.compared.stderr + live.compared.stdout
    )
    rows = live.example.query('select distinct secret_seen from "dev"."orders"')
    assert rows == [("unset",)]  # the run itself never saw the placeholder


def test_state_from_parse_is_cached_by_commit_and_environment(live: Live) -> None:
    spec = f"prod@{live.commits['C']}"
    plan = live.dot("build", "dev", "--state-from", spec, "--dry-run", "--json")
    assert plan.returncode == 0, plan.stderr
    state = json.loads(plan.stdout)["state_from"]
    assert state["cached"] is True
    assert state["commit"] == live.commits["C"]
    other = live.dot("build", "dev", "--state-from", f"dev@{live.commits['C']}", "--dry-run",
                     "--json")  # fmt: skip
    assert json.loads(other.stdout)["state_from"]["cached"] is False


def test_state_from_never_writes_or_reads_through_a_link(live: Live, tmp_path: Path) -> None:
    (state,) = live.example.path.glob(f".dot/build/{live.commits['C'][:8]}/env/prod/state")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's own\n")
    aside = tmp_path / "aside"
    state.rename(aside)  # the real parse, put back below
    state.symlink_to(mine)
    try:
        result = live.dot("build", "dev", "--state-from", f"prod@{live.commits['C']}",
                          "--disable-prompts", "--", "-s", "state:modified+")  # fmt: skip
    finally:
        state.unlink()
        aside.rename(state)
    assert_bad_input(result, "is a symbolic link")
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]  # nothing written there


def test_state_from_and_state_both_given_is_bad_input(live: Live) -> None:
    result = live.dot("build", "dev", "--state-from", "prod@main", "--dry-run", "--",
                      "--state", "elsewhere")  # fmt: skip
    assert_bad_input(result, "--state after -- both name the state to compare against")
    assert "keep one" in result.stderr


def test_state_from_ref_that_does_not_resolve_is_bad_input(live: Live) -> None:
    result = live.dot("build", "dev", "--state-from", "prod@no-such-ref", "--dry-run")
    assert_bad_input(result, "no-such-ref")


def test_state_from_parse_failure_shows_error_and_is_recorded(live: Live) -> None:
    result = live.dot("build", "dev", "--state-from", "prod@broken", "--disable-prompts")
    assert result.returncode == 30, result.stdout + result.stderr
    assert "dbt parse of commit" in result.stderr
    assert "oops" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    failed = live.store().query(last=1)[0]
    assert failed.status.value == "FAILED"
    assert failed.exit_code == 30
    assert failed.start.state is not None
    assert failed.start.state["state_from"]["commit"] == live.commits["broken"]


# --- dot which --------------------------------------------------------------------------------


def test_which_names_the_newer_of_two_builds(live: Live) -> None:
    answer = live.dot("which", "analytics.orders", "--json")
    assert answer.returncode == 0, answer.stderr
    data = json.loads(answer.stdout)
    assert (data["run_id"], data["commit"]) == (live.runs["B"], live.commits["B"])
    assert (data["environment"], data["command"], data["node_status"]) == (
        "prod",
        ["run"],
        "success",
    )
    older = json.loads(live.dot("which", "analytics.stg_orders", "--json").stdout)
    assert (older["run_id"], older["commit"]) == (live.runs["A"], live.commits["A"])
    dev = json.loads(live.dot("which", "orders", "dev", "--json").stdout)
    assert dev["environment"] == "dev"
    assert dev["relation"].endswith(".dev.orders")
    text = live.dot("which", "analytics.orders")
    assert f"commit       {live.commits['B'][:8]}" in text.stdout
    assert "node success, run SUCCESS" in text.stdout


# --- --defer ENV --state-source cloud -----------------------------------------------------------


def test_defer_cloud_reads_the_jobs_latest_successful_run(live: Live) -> None:
    double = CloudDouble()
    manifest = (live.home / "runs" / live.runs["B"] / "manifest.json").read_bytes()
    double.job_artifacts[SUCCESS_JOB] = {"manifest.json": manifest}
    good = double.add_finished_run(SUCCESS_JOB, 10)
    double.add_finished_run(SUCCESS_JOB, 20)  # newer, and failed: not a state to defer to
    user_file = live.example.path / "dot_environments.user.yml"
    cloud = ["build", "dev", "--defer", "prod", "--state-source", "cloud"]
    env = {"DOT_TEST_CLOUD_TOKEN": TOKEN}
    with serve(double) as url:
        user_file.write_text(
            "environment:\n  prod:\n    runtimes:\n      cloud:\n"
            f"        account_id: {ACCOUNT}\n        job_ids: {{build: {SUCCESS_JOB}}}\n"
            f"        api_token_env: DOT_TEST_CLOUD_TOKEN\n        base_url: {url}\n"
        )
        try:
            plan = live.dot(*cloud, "--dry-run", "--json", env=env)
            assert plan.returncode == 0, plan.stderr
            defer = json.loads(plan.stdout)["defer"]
            assert (defer["source"], defer["run_id"]) == ("cloud", str(good))
            assert defer["cloud"]["account_id"] == ACCOUNT
            assert defer["cloud"]["job_id"] == SUCCESS_JOB
            assert defer["cloud"]["finished_at"]
            assert double.count("GET", "/artifacts/") == 0  # a plan fetches nothing
            run = live.dot(*cloud, "--", "-s", "state:modified+", env=env)
            assert run.returncode == 0, run.stdout + run.stderr
            target = live.example.path / "target"
            assert _models(target) == {"model.jaffle_dot.orders", "model.jaffle_dot.customers"}
            folder = live.example.path / ".dot" / "cloud-cache" / str(good)
            assert read_json(target / "run_results.json")["args"]["state"] == str(folder)
            recorded = live.store().query(last=1)[0]
            assert recorded.start.state is not None
            assert recorded.start.state["defer"]["cloud"]["run_id"] == good
            listed = live.dot("ls", "dev", "--defer", "prod", "--state-source", "cloud", env=env)
            assert listed.returncode == 0, listed.stderr
            assert double.count("GET", "/artifacts/manifest.json") == 1  # cached by run id
            refused = live.dot(*cloud, "--dry-run", env={"DOT_TEST_CLOUD_TOKEN": "wrong"})
            assert_bad_input(refused, "401 Unauthorized")
        finally:
            user_file.unlink()
    unset = live.dot(*cloud, "--dry-run")
    assert_bad_input(unset, "names no dbt Cloud job")

"""Isolated builds and --defer against a real PostgreSQL server, through the installed `dot`.

One module-scoped project runs every build once (they take most of the time): prod at two tags,
a defer build of dev@HEAD against prod@v1, and a dev@v1 build with a wrong password. The tests then
inspect the server (information_schema, psycopg2 on 127.0.0.1) and the files dot wrote.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.example import BIN
from tests.helpers.postgres import PostgresServer
from tests.helpers.repo import GitRepo, make_repo

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.xdist_group("postgres")]

# libpq reads these; unset so that the only way a password reaches the server is env_var().
LIBPQ_VARS = ("PGPASSWORD", "PGPASSFILE", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE")

PROJECT = {
    "dbt_project.yml": """\
name: pgshop
version: "1.0.0"
config-version: 2
profile: pgshop
model-paths: ["models"]
models:
  pgshop:
    +materialized: table
""",
    "profiles.yml": """\
pgshop:
  target: prod
  outputs:
    prod:
      type: postgres
      host: 127.0.0.1
      port: "{{ env_var('PGPORT_TEST') | int }}"
      user: postgres
      password: "{{ env_var('DBT_PG_PASSWORD') }}"
      dbname: shop
      schema: analytics
      threads: 2
    dev:
      type: postgres
      host: 127.0.0.1
      port: "{{ env_var('PGPORT_TEST') | int }}"
      user: postgres
      password: "{{ env_var('DBT_PG_PASSWORD') }}"
      dbname: shop
      schema: dev
      threads: 2
""",
    "dot_environments.yml": """\
environment:
  default: prod
  prod:
    target: prod
  dev:
    target: dev
""",
    "models/customers.sql": """\
select 1 as customer_id, 'Ada' as name
union all
select 2 as customer_id, 'Grace' as name
""",
}


def orders_sql(amount: int) -> str:
    """The model that changes between the tags: a view, so the server records what it reads."""
    return (
        "{{ config(materialized='view') }}\n"
        f"select 101 as order_id, customer_id, name, {amount} as amount\n"
        "from {{ ref('customers') }}\nwhere customer_id = 1\n"
    )


@dataclass(frozen=True)
class Shop:
    """The project, its two tagged commits, and what each `dot` run returned."""

    repo: GitRepo
    server: PostgresServer
    v1: str
    v2: str
    prod_v1: subprocess.CompletedProcess[str]
    prod_v2: subprocess.CompletedProcess[str]
    defer: subprocess.CompletedProcess[str]
    wrong_password: subprocess.CompletedProcess[str]

    def profile_file(self, short: str, env: str) -> Path:
        return self.repo.path / ".dot" / "build" / short / "env" / env / "profiles.yml"


def _dot(
    repo: GitRepo, env: dict[str, str], command: str, *args: str
) -> subprocess.CompletedProcess[str]:
    # --disable-prompts goes before the arguments, which may end with `-- <dbt args>`.
    return subprocess.run(
        [str(BIN / "dot"), command, "--disable-prompts", *args],
        cwd=repo.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


@pytest.fixture(scope="module")
def shop(
    postgres_server: PostgresServer,
    module_monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> Shop:
    for key in LIBPQ_VARS:
        module_monkeypatch.delenv(key, raising=False)
    repo = make_repo(tmp_path_factory.mktemp("pgshop") / "repo")
    v1 = repo.commit({**PROJECT, "models/orders.sql": orders_sql(10)}, "v1")
    repo.tag("v1")
    v2 = repo.commit({"models/orders.sql": orders_sql(20)}, "v2: orders amount 20")
    repo.tag("v2")
    env = {
        **os.environ,
        "DBT_PG_PASSWORD": postgres_server.password,
        "PGPORT_TEST": str(postgres_server.port),
    }
    return Shop(
        repo=repo,
        server=postgres_server,
        v1=v1[:8],
        v2=v2[:8],
        prod_v1=_dot(repo, env, "build", "prod@v1"),
        prod_v2=_dot(repo, env, "build", "prod@v2"),
        defer=_dot(
            repo, env, "build", "dev@HEAD", "--defer", "prod@v1", "--", "-s", "state:modified+"
        ),
        wrong_password=_dot(
            repo, {**env, "DBT_PG_PASSWORD": "not-the-password"}, "build", "dev@v1"
        ),
    )


def test_prod_build_creates_hash_suffixed_schema_on_the_server(shop: Shop) -> None:
    assert shop.prod_v1.returncode == 0, _output(shop.prod_v1)
    assert f"into schema analytics_{shop.v1}" in shop.prod_v1.stderr
    schema = f"analytics_{shop.v1}"
    assert schema in shop.server.schemas()
    assert shop.server.relations(schema) == {"customers": "BASE TABLE", "orders": "VIEW"}
    customers = shop.server.rows(schema, "customers", ["customer_id", "name"])
    assert customers == [(1, "Ada"), (2, "Grace")]


def test_isolated_builds_leave_the_profile_schemas_untouched(shop: Shop) -> None:
    assert shop.prod_v1.returncode == 0, _output(shop.prod_v1)
    schemas = shop.server.schemas()
    assert "analytics" not in schemas
    assert "dev" not in schemas


def test_two_refs_build_two_schemas_with_their_own_contents(shop: Shop) -> None:
    assert shop.prod_v2.returncode == 0, _output(shop.prod_v2)
    assert shop.v1 != shop.v2
    amounts = {
        ref: shop.server.rows(f"analytics_{ref}", "orders", ["order_id", "name", "amount"])
        for ref in (shop.v1, shop.v2)
    }
    assert amounts == {shop.v1: [(101, "Ada", 10)], shop.v2: [(101, "Ada", 20)]}


def test_isolated_profile_keeps_env_var_calls_and_no_credentials(shop: Shop) -> None:
    assert shop.prod_v1.returncode == 0, _output(shop.prod_v1)
    path = shop.profile_file(shop.v1, "prod")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert "env_var('DBT_PG_PASSWORD')" in text
    assert "env_var('PGPORT_TEST')" in text
    assert shop.server.password not in text
    assert not re.search(rf"(?<!\d){shop.server.port}(?!\d)", text), text
    assert f"schema: analytics_{shop.v1}" in text


def test_password_is_written_nowhere_under_the_build_folders(shop: Shop) -> None:
    build = shop.repo.path / ".dot" / "build"
    profiles = {(p.parents[2].name, p.parent.name) for p in build.glob("*/env/*/profiles.yml")}
    assert profiles == {(shop.v1, "prod"), (shop.v2, "prod"), (shop.v2, "dev"), (shop.v1, "dev")}
    secret = shop.server.password.encode()
    # Profiles, dbt's logs and artifacts (manifest, run results) of all four builds.
    files = [p for p in build.rglob("*") if p.is_file() and not p.is_symlink()]
    assert len(files) > 20
    assert [p for p in files if secret in p.read_bytes()] == []


def test_defer_builds_only_the_modified_model_on_the_baseline_parent(shop: Shop) -> None:
    assert shop.prod_v1.returncode == 0, _output(shop.prod_v1)
    assert shop.defer.returncode == 0, _output(shop.defer)
    dev_schema, baseline = f"dev_{shop.v2}", f"analytics_{shop.v1}"
    # Only the modified model was built; its unchanged parent is not in the dev schema.
    assert shop.server.relations(dev_schema) == {"orders": "VIEW"}
    rows = shop.server.rows(dev_schema, "orders", ["order_id", "name", "amount"])
    assert rows == [(101, "Ada", 20)]
    # The server says which table the view reads: the baseline's, not a dev or prod@v2 one.
    used = shop.server.query(
        "select table_schema, table_name from information_schema.view_table_usage "
        "where view_schema = %s and view_name = 'orders'",
        (dev_schema,),
    )
    assert used == [(baseline, "customers")]


def test_env_var_password_is_what_authenticates(shop: Shop) -> None:
    assert shop.wrong_password.returncode != 0, _output(shop.wrong_password)
    assert "password authentication failed" in _output(shop.wrong_password)
    assert f"dev_{shop.v1}" not in shop.server.schemas()

"""datum_dot.config.profiles: finding, reading and isolating profiles.yml."""

from __future__ import annotations

import stat
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from datum_dot.config import profiles
from datum_dot.errors import ConfigError, ProfileError, ProjectNotFoundError
from datum_dot.runs import isolatedprofiles
from datum_dot.runs.isolatedprofiles import ProfileChange

SECRET = "s3cr3t-Pa55word"  # noqa: S105 - fake; the test proves it is never written

PROFILES = """\
config:
  send_anonymous_usage_stats: false
  use_colors: false

# the user's comment
shop:
  target: dev
  outputs:
    dev:
      type: postgres
      host: localhost
      user: "{{ env_var('DB_USER') }}"
      password: "{{ env_var('DB_PASSWORD') }}"
      port: 5432
      dbname: analytics
      database: analytics
      schema: dbt_dev
      threads: 4
    prod:
      type: postgres
      host: db.example.invalid
      user: loader
      password: literal-prod-secret
      port: 5432
      dbname: analytics
      schema: "{{ env_var('DBT_SCHEMA') }}"
      threads: 8
warehouse:
  target: bq
  outputs:
    bq:
      type: bigquery
      method: oauth
      project: acme-data
      dataset: marts
    bq_alias:
      type: bigquery
      method: oauth
      project: acme-data
      schema: marts_alias
    noschema:
      type: duckdb
      path: warehouse.duckdb
"""


def _write(folder: Path, text: str = PROFILES, name: str = "profiles.yml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def _isolate(source: Path, dest_dir: Path, **overrides: Any) -> ProfileChange:
    arguments: dict[str, Any] = {
        "source": source,
        "profile": "shop",
        "target": None,
        "dest_dir": dest_dir,
        "schema_template": isolatedprofiles.DEFAULT_SCHEMA_TEMPLATE,
        "short_hash": "abc12345",
        "env": "prod",
        "ref_slug": "main",
    }
    arguments.update(overrides)
    planned = isolatedprofiles.plan_isolated_profile(**arguments)
    return isolatedprofiles.write_isolated_profile(planned)


# --- find_profiles_dir ----------------------------------------------------------------------


def test_find_profiles_dir_order(tmp_path: Path, hermetic: Path) -> None:
    project, flag, env_dir = tmp_path / "project", tmp_path / "flag", tmp_path / "env"
    home_dbt = hermetic / ".dbt"
    for folder in (project, flag, env_dir, home_dbt):
        _write(folder)
    environ = {"DBT_PROFILES_DIR": str(env_dir)}

    assert profiles.find_profiles_dir(project, flag_dir=flag, environ=environ) == flag
    assert profiles.find_profiles_dir(project, flag_dir=None, environ=environ) == env_dir
    assert profiles.find_profiles_dir(project, flag_dir=None, environ={}) == project
    (project / "profiles.yml").unlink()
    assert profiles.find_profiles_dir(project, flag_dir=None, environ={}) == home_dbt
    empty_var = {"DBT_PROFILES_DIR": ""}
    assert profiles.find_profiles_dir(project, flag_dir=None, environ=empty_var) == home_dbt


def test_find_profiles_dir_not_found_lists_places(tmp_path: Path, hermetic: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    with pytest.raises(ProfileError) as info:
        profiles.find_profiles_dir(project, flag_dir=None, environ={})
    message = info.value.message
    assert message.startswith("profiles.yml not found; looked in: ")
    assert str(project) in message
    assert str(hermetic / ".dbt") in message
    assert "--profiles-dir" in info.value.hint
    assert "DBT_PROFILES_DIR" in info.value.hint


def test_find_profiles_dir_explicit_folder_without_file_is_final(
    tmp_path: Path, hermetic: Path
) -> None:
    _write(hermetic / ".dbt")
    named = tmp_path / "named"
    named.mkdir()
    with pytest.raises(ProfileError, match="DBT_PROFILES_DIR"):
        profiles.find_profiles_dir(
            tmp_path, flag_dir=None, environ={"DBT_PROFILES_DIR": str(named)}
        )
    with pytest.raises(ProfileError, match="--profiles-dir"):
        profiles.find_profiles_dir(tmp_path, flag_dir=named, environ={})


# --- dbt_project.yml and profiles.yml -------------------------------------------------------


def test_read_project_profile_name(tmp_path: Path) -> None:
    (tmp_path / "dbt_project.yml").write_text("name: shop\nprofile: shop\nversion: '1.0'\n")
    assert profiles.read_project_profile_name(tmp_path) == "shop"


def test_read_project_profile_name_errors(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFoundError):
        profiles.read_project_profile_name(tmp_path)
    project_file = tmp_path / "dbt_project.yml"
    project_file.write_text("name: shop\nmodels:\n  - a\n  b: c\n")
    with pytest.raises(ConfigError, match=r"dbt_project\.yml:4"):
        profiles.read_project_profile_name(tmp_path)
    project_file.write_text("name: shop\n")
    with pytest.raises(ProfileError, match="no `profile:`"):
        profiles.read_project_profile_name(tmp_path)


def test_profile_name_from_text_names_its_source() -> None:
    assert profiles.profile_name_from_text("profile: shop\n", source="x at abc") == "shop"
    with pytest.raises(ConfigError, match="x at abc:2"):
        profiles.profile_name_from_text("profile: [\n", source="x at abc")


def test_load_profiles_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "shop:\n  target: dev\n  outputs:\n    dev: {type: postgres\n")
    with pytest.raises(ProfileError) as info:
        profiles.load_profiles(path)
    assert f"{path}:" in info.value.message
    assert "not valid YAML" in info.value.message
    assert "fix the YAML" in info.value.hint

    path.write_text("shop:\n  target: dev\n bad: indentation\n")
    with pytest.raises(ProfileError, match=r"profiles\.yml:3"):
        profiles.load_profiles(path)


def test_load_profiles_missing_and_empty(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="not found"):
        profiles.load_profiles(tmp_path / "profiles.yml")
    assert profiles.load_profiles(_write(tmp_path, "")) == {}


def test_select_target_default_and_named(tmp_path: Path) -> None:
    loaded = profiles.load_profiles(_write(tmp_path))
    path = tmp_path / "profiles.yml"
    name, settings = profiles.select_target(loaded, "shop", None, path=path)
    assert (name, settings["schema"]) == ("dev", "dbt_dev")
    name, settings = profiles.select_target(loaded, "shop", "prod", path=path)
    assert (name, settings["threads"]) == ("prod", 8)


def test_select_target_missing_profile_lists_defined_ones(tmp_path: Path) -> None:
    loaded = profiles.load_profiles(_write(tmp_path))
    with pytest.raises(ProfileError) as info:
        profiles.select_target(loaded, "shpo", None, path=tmp_path / "profiles.yml")
    assert "profile 'shpo' not found" in info.value.message
    assert "defined profiles: shop, warehouse" in info.value.message
    with pytest.raises(ProfileError, match="defined profiles: shop, warehouse"):
        profiles.select_target(loaded, "config", None, path=tmp_path / "profiles.yml")


def test_select_target_missing_target_lists_defined_ones(tmp_path: Path) -> None:
    loaded = profiles.load_profiles(_write(tmp_path))
    with pytest.raises(ProfileError) as info:
        profiles.select_target(loaded, "shop", "staging", path=tmp_path / "profiles.yml")
    assert "target 'staging' not found in profile 'shop'" in info.value.message
    assert "defined targets: dev, prod" in info.value.message


def test_select_target_without_default_lists_targets(tmp_path: Path) -> None:
    loaded = {"shop": {"outputs": {"dev": {"schema": "a"}, "ci": {"schema": "b"}}}}
    with pytest.raises(ProfileError) as info:
        profiles.select_target(loaded, "shop", None, path=tmp_path / "profiles.yml")
    assert "no default `target:`" in info.value.message
    assert "defined targets: ci, dev" in info.value.message


# --- ref_slug and isolated_schema -----------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "slug"),
    [
        ("main", "main"),
        ("feature/Add-Orders", "feature_add_orders"),
        ("HEAD@{1}", "head_1"),
        ("@{-1}", "1"),
        ("v1.2.0", "v1_2_0"),
        ("---", "ref"),
        ("x" * 50, "x" * 40),
    ],
)
def test_ref_slug_examples(ref: str, slug: str) -> None:
    assert isolatedprofiles.ref_slug(ref) == slug


@given(st.text())
def test_ref_slug_is_always_schema_safe(ref: str) -> None:
    slug = isolatedprofiles.ref_slug(ref)
    assert 1 <= len(slug) <= 40
    assert set(slug) <= set("abcdefghijklmnopqrstuvwxyz0123456789_")
    assert not slug.startswith("_")
    assert not slug.endswith("_")
    assert "__" not in slug


def test_isolated_schema_default_and_placeholders() -> None:
    kwargs = {"short_hash": "abc12345", "env": "prod", "ref_slug": "main"}
    assert isolatedprofiles.isolated_schema(
        "analytics", template="{schema}_{short_hash}", **kwargs
    ) == ("analytics_abc12345")
    assert (
        isolatedprofiles.isolated_schema(
            "analytics", template="{env}_{schema}_{ref_slug}", **kwargs
        )
        == "prod_analytics_main"
    )


def test_isolated_schema_puts_suffix_outside_jinja() -> None:
    result = isolatedprofiles.isolated_schema(
        "{{ env_var('DBT_SCHEMA') }}",
        template="{schema}_{short_hash}",
        short_hash="abc12345",
        env="prod",
        ref_slug="main",
    )
    assert result == "{{ env_var('DBT_SCHEMA') }}_abc12345"


@pytest.mark.parametrize("template", ["{schema}_{sha}", "{schema}_{short_hash", "{schema}"])
def test_isolated_schema_bad_templates(template: str) -> None:
    with pytest.raises(ConfigError):
        isolatedprofiles.isolated_schema(
            "analytics", template=template, short_hash="abc12345", env="prod", ref_slug="main"
        )


schema_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1)


@given(schema=schema_text, short=st.text(alphabet="0123456789abcdef", min_size=4, max_size=40))
def test_isolated_schema_default_is_suffix(schema: str, short: str) -> None:
    result = isolatedprofiles.isolated_schema(
        schema,
        template=isolatedprofiles.DEFAULT_SCHEMA_TEMPLATE,
        short_hash=short,
        env="e",
        ref_slug="r",
    )
    assert result == f"{schema}_{short}"


# --- write_isolated_profile -----------------------------------------------------------------


def test_write_isolated_profile_keeps_only_profile_target_and_config(tmp_path: Path) -> None:
    source = _write(tmp_path / "home")
    dest_dir = tmp_path / "project" / ".dot" / "build" / "abc12345" / "env" / "prod"
    change = _isolate(source, dest_dir, target="prod")
    written = yaml.safe_load(change.dest_path.read_text())
    assert list(written) == ["config", "shop"]
    assert written["config"] == {"send_anonymous_usage_stats": False, "use_colors": False}
    assert written["shop"]["target"] == "prod"
    assert list(written["shop"]["outputs"]) == ["prod"]
    original = yaml.safe_load(PROFILES)["shop"]["outputs"]["prod"]
    isolated = written["shop"]["outputs"]["prod"]
    assert {k: v for k, v in isolated.items() if k != "schema"} == {
        k: v for k, v in original.items() if k != "schema"
    }
    assert isolated["schema"] == "{{ env_var('DBT_SCHEMA') }}_abc12345"
    assert change == ProfileChange(
        profile="shop",
        target="prod",
        source_path=source,
        dest_path=dest_dir / "profiles.yml",
        schema_key="schema",
        schema_before="{{ env_var('DBT_SCHEMA') }}",
        schema_after="{{ env_var('DBT_SCHEMA') }}_abc12345",
        database=None,
        schema_template="{schema}_{short_hash}",
        short_hash="abc12345",
        env="prod",
        ref_slug="main",
    )


def test_write_isolated_profile_keeps_env_var_unrendered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_PASSWORD", SECRET)
    monkeypatch.setenv("DB_USER", "someone")
    change = _isolate(_write(tmp_path / "home"), tmp_path / "out")
    text = change.dest_path.read_text()
    assert SECRET not in text
    assert "someone" not in text
    dev = yaml.safe_load(text)["shop"]["outputs"]["dev"]
    assert dev["password"] == "{{ env_var('DB_PASSWORD') }}"  # noqa: S105
    assert dev["user"] == "{{ env_var('DB_USER') }}"
    assert dev["schema"] == "dbt_dev_abc12345"
    assert change.database == "analytics"
    assert "comment" not in text


def test_write_isolated_profile_is_private(tmp_path: Path) -> None:
    dest_dir = tmp_path / "dot" / "build" / "env" / "prod"
    (tmp_path / "dot").mkdir(mode=0o755)
    change = _isolate(_write(tmp_path / "home"), dest_dir, target="prod")
    assert "literal-prod-secret" in change.dest_path.read_text()
    assert stat.S_IMODE(change.dest_path.stat().st_mode) == 0o600
    for folder in (dest_dir, dest_dir.parent, dest_dir.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(p.name for p in dest_dir.iterdir()) == ["profiles.yml"]


def test_write_isolated_profile_tightens_existing_folder_and_replaces_file(
    tmp_path: Path,
) -> None:
    dest_dir = tmp_path / "out"
    dest_dir.mkdir(mode=0o755)
    (dest_dir / "profiles.yml").write_text("old: content\n")
    (dest_dir / "profiles.yml").chmod(0o644)
    change = _isolate(_write(tmp_path / "home"), dest_dir)
    assert stat.S_IMODE(dest_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(change.dest_path.stat().st_mode) == 0o600
    assert "old" not in yaml.safe_load(change.dest_path.read_text())


def test_write_isolated_profile_bigquery_dataset(tmp_path: Path) -> None:
    source = _write(tmp_path / "home")
    change = _isolate(source, tmp_path / "out", profile="warehouse")
    assert (change.schema_key, change.schema_after) == ("dataset", "marts_abc12345")
    assert change.database == "acme-data"
    bq = yaml.safe_load(change.dest_path.read_text())["warehouse"]["outputs"]["bq"]
    assert bq["dataset"] == "marts_abc12345"
    assert "schema" not in bq

    alias = _isolate(source, tmp_path / "out2", profile="warehouse", target="bq_alias")
    assert (alias.schema_key, alias.schema_after) == ("schema", "marts_alias_abc12345")


def test_write_isolated_profile_dataset_key_outside_bigquery(tmp_path: Path) -> None:
    source = _write(
        tmp_path / "home",
        "p:\n  target: t\n  outputs:\n    t: {type: spark, dataset: raw}\n",
    )
    change = _isolate(source, tmp_path / "out", profile="p")
    assert (change.schema_key, change.schema_after) == ("dataset", "raw_abc12345")


def test_write_isolated_profile_template_with_env_and_ref_slug(tmp_path: Path) -> None:
    change = _isolate(
        _write(tmp_path / "home"),
        tmp_path / "out",
        schema_template="{schema}_{env}_{ref_slug}_{short_hash}",
        env="ci",
        ref_slug=isolatedprofiles.ref_slug("feature/Orders"),
    )
    assert change.schema_after == "dbt_dev_ci_feature_orders_abc12345"


def test_write_isolated_profile_without_schema_cannot_isolate(tmp_path: Path) -> None:
    dest_dir = tmp_path / "out"
    with pytest.raises(ProfileError, match="has no `schema`"):
        _isolate(_write(tmp_path / "home"), dest_dir, profile="warehouse", target="noschema")
    assert not dest_dir.exists()


def test_write_isolated_profile_source_may_be_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _write(home)
    change = _isolate(home, tmp_path / "out")
    assert change.source_path == home / "profiles.yml"


def test_plan_isolated_profile_writes_nothing(tmp_path: Path) -> None:
    source = _write(tmp_path / "home")
    dest_dir = tmp_path / "out"
    arguments: dict[str, Any] = {
        "source": source,
        "profile": "shop",
        "target": "prod",
        "dest_dir": dest_dir,
        "schema_template": "{schema}_{short_hash}",
        "short_hash": "abc12345",
        "env": "prod",
        "ref_slug": "main",
    }
    planned = isolatedprofiles.plan_isolated_profile(**arguments)
    assert not dest_dir.exists()
    assert isolatedprofiles.write_isolated_profile(planned) == planned


def test_write_isolated_profile_output_is_readable_by_dbt_loader(tmp_path: Path) -> None:
    from dbt.clients.yaml_helper import load_yaml_text

    source = _write(
        tmp_path / "home",
        textwrap.dedent(
            """\
            p:
              target: t
              outputs:
                t:
                  type: duckdb
                  path: "{{ env_var('DUCKDB_PATH', 'x.duckdb') }}"
                  schema: main
                  extensions: [httpfs, parquet]
                  settings: {s3_region: "eu-west-1", memory_limit: 2GB}
                  private_key: |
                    -----BEGIN KEY-----
                    abc
                    -----END KEY-----
            """
        ),
    )
    change = _isolate(source, tmp_path / "out", profile="p")
    loaded = load_yaml_text(change.dest_path.read_text())
    assert loaded is not None
    original = yaml.safe_load(source.read_text())["p"]["outputs"]["t"]
    assert loaded["p"]["outputs"]["t"] == {**original, "schema": "main_abc12345"}


def test_isolated_profile_writes_env_var_calls_as_written(tmp_path: Path) -> None:
    # Regression: PyYAML wrote `'{{ env_var(''DB_PASSWORD'') }}'`, the same value but not the
    # text the user wrote, so grepping the isolated file for the env_var call found nothing.
    source = _write(
        tmp_path / "home",
        textwrap.dedent(
            """\
            shop:
              target: dev
              outputs:
                dev:
                  type: postgres
                  port: "{{ env_var('DB_PORT') | int }}"
                  password: "{{ env_var('DB_PASSWORD') }}"
                  user: '{{ env_var("DB_USER") }}'
                  schema: plain
            """
        ),
    )
    text = _isolate(source, tmp_path / "out").dest_path.read_text()
    assert "port: \"{{ env_var('DB_PORT') | int }}\"\n" in text
    assert "password: \"{{ env_var('DB_PASSWORD') }}\"\n" in text
    assert "user: '{{ env_var(\"DB_USER\") }}'\n" in text
    dev = yaml.safe_load(text)["shop"]["outputs"]["dev"]
    assert dev == {
        "type": "postgres",
        "port": "{{ env_var('DB_PORT') | int }}",
        "password": "{{ env_var('DB_PASSWORD') }}",
        "user": '{{ env_var("DB_USER") }}',
        "schema": "plain_abc12345",
    }

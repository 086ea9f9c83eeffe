"""Unit tests for loading and resolving `dot_environments.yml` (+ the user override)."""

from __future__ import annotations

import copy
import datetime
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datum_dot.config.environments import (
    DEFAULT_ENV_DIR,
    ENVIRONMENTS_FILE,
    USER_ENVIRONMENTS_FILE,
    Environment,
    EnvironmentsConfig,
    deep_merge,
    load_environments,
    validate_document,
)
from datum_dot.config.models import EnvironmentsFile, IsolationConfig, VarsFile
from datum_dot.config.yamlfile import load_yaml
from datum_dot.errors import ConfigError, ExitCode

# The seed's examples, verbatim.
SEED_ENVIRONMENTS = """\
environment:
  default: dev
  all:
    indirect-selection: buildable
    vars:
      feature_flag: false
  dev:
    target: dev
    vars:
      sample_rate: 10
  prod:
    target: prod
    vars:
      feature_flag: true
      sample_rate: 100
"""

SEED_USER = """\
environment:
  dev:
    vars:
      feature_flag: true   # locally override baseline
    threads: 12
"""


def write(project: Path, name: str, text: str) -> Path:
    path = project / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(project: Path, project_text: str | None = None, user_text: str | None = None) -> Any:
    if project_text is not None:
        write(project, ENVIRONMENTS_FILE, project_text)
    if user_text is not None:
        write(project, USER_ENVIRONMENTS_FILE, user_text)
    return load_environments(project)


def config_error(project: Path, project_text: str | None, user_text: str | None = None) -> Any:
    with pytest.raises(ConfigError) as info:
        load(project, project_text, user_text)
    assert info.value.exit_code == ExitCode.BAD_INPUT
    assert info.value.hint
    return info.value


@pytest.fixture
def seed_project(tmp_path: Path) -> Path:
    write(tmp_path, ENVIRONMENTS_FILE, SEED_ENVIRONMENTS)
    write(tmp_path, USER_ENVIRONMENTS_FILE, SEED_USER)
    return tmp_path


# --- no files ------------------------------------------------------------------------------


def test_load_environments_without_files_resolves_to_nothing(tmp_path: Path) -> None:
    config = load_environments(tmp_path)
    env = config.resolve(None)
    assert env.name is None
    assert dict(env.flags) == {}
    assert dict(env.vars) == {}
    assert dict(env.var_sources) == {}
    assert env.isolation == IsolationConfig()
    assert env.runtime is None
    assert env.dir_name == DEFAULT_ENV_DIR
    assert config.default is None
    assert config.names == []
    assert config.files == []


def test_resolve_without_files_refuses_named_env(tmp_path: Path) -> None:
    config = load_environments(tmp_path)
    with pytest.raises(ConfigError) as info:
        config.resolve("dev")
    assert "unknown environment 'dev'" in info.value.message
    assert "no environments are defined" in info.value.hint


def test_load_environments_empty_file_is_no_environments(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert config.names == []
    assert config.resolve(None).name is None
    assert config.files == [tmp_path / ENVIRONMENTS_FILE]


def test_resolve_without_default_applies_all_block(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        environment:
          all:
            threads: 4
            vars:
              a: 1
          dev:
            target: dev
        """,
    )
    env = config.resolve(None)
    assert env.name is None
    assert dict(env.flags) == {"threads": 4}
    assert dict(env.vars) == {"a": 1}


# --- the seed's example files --------------------------------------------------------------


def test_resolve_seed_dev_merges_user_override(seed_project: Path) -> None:
    config = load_environments(seed_project)
    env = config.resolve("dev")
    assert env.name == "dev"
    assert dict(env.flags) == {"indirect-selection": "buildable", "target": "dev", "threads": 12}
    assert dict(env.vars) == {"feature_flag": True, "sample_rate": 10}
    assert env.dir_name == "dev"


def test_resolve_seed_default_is_dev(seed_project: Path) -> None:
    config = load_environments(seed_project)
    assert config.default == "dev"
    assert config.resolve(None) == config.resolve("dev")


def test_resolve_seed_prod_not_touched_by_user_dev(seed_project: Path) -> None:
    env = load_environments(seed_project).resolve("prod")
    assert dict(env.flags) == {"indirect-selection": "buildable", "target": "prod"}
    assert dict(env.vars) == {"feature_flag": True, "sample_rate": 100}


def test_resolve_seed_project_file_alone(tmp_path: Path) -> None:
    env = load(tmp_path, SEED_ENVIRONMENTS).resolve("dev")
    assert dict(env.flags) == {"indirect-selection": "buildable", "target": "dev"}
    assert dict(env.vars) == {"feature_flag": False, "sample_rate": 10}


def test_load_environments_seed_names_and_files(seed_project: Path) -> None:
    config = load_environments(seed_project)
    assert config.names == ["dev", "prod"]
    assert config.files == [seed_project / ENVIRONMENTS_FILE, seed_project / USER_ENVIRONMENTS_FILE]


def test_resolve_seed_var_sources_name_file_and_line(seed_project: Path) -> None:
    env = load_environments(seed_project).resolve("dev")
    assert env.var_sources == {
        "feature_flag": f"{USER_ENVIRONMENTS_FILE}:4 environment.dev.vars.feature_flag",
        "sample_rate": f"{ENVIRONMENTS_FILE}:10 environment.dev.vars.sample_rate",
    }
    prod = load_environments(seed_project).resolve("prod")
    assert prod.var_sources["feature_flag"] == (
        f"{ENVIRONMENTS_FILE}:14 environment.prod.vars.feature_flag"
    )


def test_resolve_var_sources_point_at_all_block(tmp_path: Path) -> None:
    env = load(tmp_path, SEED_ENVIRONMENTS).resolve("dev")
    assert env.var_sources["feature_flag"] == (
        f"{ENVIRONMENTS_FILE}:6 environment.all.vars.feature_flag"
    )


# --- merge order ---------------------------------------------------------------------------


def test_resolve_merge_order_all_env_user_all_user_env(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        environment:
          all:
            a: project-all
            b: project-all
            c: project-all
            d: project-all
          dev:
            b: project-dev
            c: project-dev
            d: project-dev
        """,
        """\
        environment:
          all:
            c: user-all
            d: user-all
          dev:
            d: user-dev
        """,
    )
    flags = dict(config.resolve("dev").flags)
    assert flags == {"a": "project-all", "b": "project-dev", "c": "user-all", "d": "user-dev"}


def test_resolve_user_all_overrides_project_env(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        environment:
          dev:
            vars:
              x: project-dev
        """,
        """\
        environment:
          all:
            vars:
              x: user-all
        """,
    )
    env = config.resolve("dev")
    assert env.vars == {"x": "user-all"}
    assert env.var_sources["x"] == f"{USER_ENVIRONMENTS_FILE}:4 environment.all.vars.x"


def test_resolve_nested_var_is_deep_merged(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        environment:
          all:
            vars:
              limits:
                rows: 10
                nested:
                  keep: 1
                  change: 1
          dev:
            vars:
              limits:
                nested:
                  change: 2
        """,
        """\
        environment:
          dev:
            vars:
              limits:
                cols: 3
        """,
    )
    env = config.resolve("dev")
    assert env.vars == {"limits": {"rows": 10, "cols": 3, "nested": {"keep": 1, "change": 2}}}


def test_resolve_scalar_var_replaces_mapping(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        environment:
          all:
            vars:
              limits: {rows: 10}
          dev:
            vars:
              limits: 5
        """,
    )
    assert config.resolve("dev").vars == {"limits": 5}
    assert config.resolve(None).vars == {"limits": {"rows": 10}}


def test_resolve_flags_merge_shallowly(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        environment:
          all:
            select: [a, b]
          dev:
            select: [c]
        """,
    )
    assert config.resolve("dev").flags == {"select": ["c"]}


def test_load_environments_user_file_defines_new_environment(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        SEED_ENVIRONMENTS,
        """\
        environment:
          scratch:
            target: scratch
            vars:
              sample_rate: 1
        """,
    )
    assert config.names == ["dev", "prod", "scratch"]
    env = config.resolve("scratch")
    assert dict(env.flags) == {"indirect-selection": "buildable", "target": "scratch"}
    assert dict(env.vars) == {"feature_flag": False, "sample_rate": 1}


def test_load_environments_user_default_wins(tmp_path: Path) -> None:
    config = load(tmp_path, SEED_ENVIRONMENTS, "environment:\n  default: prod\n")
    assert config.default == "prod"
    assert config.resolve(None).name == "prod"


def test_load_environments_user_default_may_name_user_env(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        SEED_ENVIRONMENTS,
        "environment:\n  default: mine\n  mine:\n    target: mine\n",
    )
    assert config.resolve(None).name == "mine"


def test_load_environments_null_env_block_is_empty_env(tmp_path: Path) -> None:
    config = load(tmp_path, "environment:\n  all:\n    threads: 2\n  dev:\n")
    assert config.names == ["dev"]
    assert dict(config.resolve("dev").flags) == {"threads": 2}


def test_resolve_runtime_later_layer_wins(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        environment:
          all:
            runtime: local
          prod:
            runtime: remote
          dev: {}
        """,
    )
    assert config.resolve("prod").runtime == "remote"
    assert config.resolve("dev").runtime == "local"
    assert "runtime" not in config.resolve("prod").flags


# --- default and unknown environments ------------------------------------------------------


def test_load_environments_undefined_default_names_file_line_and_envs(tmp_path: Path) -> None:
    error = config_error(
        tmp_path,
        """\
        environment:
          dev:
            target: dev
          default: staging
          prod:
            target: prod
        """,
    )
    assert f"{ENVIRONMENTS_FILE}:4" in error.message
    assert "staging" in error.message
    assert "dev" in error.hint
    assert "prod" in error.hint


def test_load_environments_undefined_default_without_envs(tmp_path: Path) -> None:
    error = config_error(tmp_path, "environment:\n  default: dev\n")
    assert f"{ENVIRONMENTS_FILE}:2" in error.message
    assert "no environments are defined" in error.hint


def test_load_environments_undefined_user_default_names_user_file(tmp_path: Path) -> None:
    error = config_error(tmp_path, SEED_ENVIRONMENTS, "environment:\n  default: nope\n")
    assert f"{USER_ENVIRONMENTS_FILE}:2" in error.message


def test_resolve_unknown_env_lists_envs_and_did_you_mean(seed_project: Path) -> None:
    config = load_environments(seed_project)
    with pytest.raises(ConfigError) as info:
        config.resolve("prd")
    error = info.value
    assert error.exit_code == ExitCode.BAD_INPUT
    assert "unknown environment 'prd'" in error.message
    assert "did you mean 'prod'?" in error.message
    assert "dev, prod" in error.hint


def test_resolve_unknown_env_without_close_match(seed_project: Path) -> None:
    config = load_environments(seed_project)
    with pytest.raises(ConfigError) as info:
        config.resolve("zzzzzz")
    assert "did you mean" not in info.value.message
    assert "dev, prod" in info.value.hint


def test_resolve_reserved_all_is_not_an_environment(seed_project: Path) -> None:
    with pytest.raises(ConfigError):
        load_environments(seed_project).resolve("all")


# --- malformed YAML and wrong types --------------------------------------------------------


def test_load_environments_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    error = config_error(
        tmp_path,
        """\
        environment:
          dev:
            target: dev
            vars: [1, 2
          prod: {}
        """,
    )
    assert ENVIRONMENTS_FILE in error.message
    assert "not valid YAML" in error.message
    assert f"{ENVIRONMENTS_FILE}:" in error.message
    line = int(error.message.split(f"{ENVIRONMENTS_FILE}:")[1].split(":")[0])
    assert 4 <= line <= 5


def test_load_environments_malformed_user_yaml_names_user_file(tmp_path: Path) -> None:
    error = config_error(tmp_path, SEED_ENVIRONMENTS, "environment:\n  dev: [unclosed\n")
    assert f"{USER_ENVIRONMENTS_FILE}:" in error.message


def test_load_environments_vars_list_names_file_line_and_key(tmp_path: Path) -> None:
    error = config_error(
        tmp_path,
        """\
        environment:
          dev:
            target: dev
            vars: [1, 2]
        """,
    )
    assert f"{ENVIRONMENTS_FILE}:4" in error.message
    assert "environment.dev.vars" in error.message
    assert ".named" not in error.message


def test_load_environments_null_flag_is_refused(tmp_path: Path) -> None:
    error = config_error(
        tmp_path,
        """\
        environment:
          all:
            threads: 4
          dev:
            full_refresh:
        """,
    )
    assert f"{ENVIRONMENTS_FILE}:" in error.message
    assert "environment.dev" in error.message
    assert "full_refresh" in error.message
    assert "has no value" in error.message


def test_load_environments_flag_list_of_mappings_is_refused(tmp_path: Path) -> None:
    error = config_error(tmp_path, "environment:\n  dev:\n    select: [{a: 1}]\n")
    assert "select" in error.message


def test_load_environments_short_hash_length_is_refused(tmp_path: Path) -> None:
    error = config_error(tmp_path, "isolation:\n  hash_length: 2\n")
    assert f"{ENVIRONMENTS_FILE}:2" in error.message
    assert "isolation.hash_length" in error.message


def test_load_environments_unknown_top_level_key_is_refused(tmp_path: Path) -> None:
    error = config_error(tmp_path, "environment: {}\nenvironments:\n  dev: {}\n")
    assert (
        f"{ENVIRONMENTS_FILE}:2: environments: unknown key (did you mean 'environment'?)"
        in error.message
    )


def test_load_environments_reports_all_problems_at_once(tmp_path: Path) -> None:
    error = config_error(
        tmp_path,
        """\
        environment:
          default: dev
          dev:
            vars: [1, 2]
          prod:
            threads:
        isolation:
          hash_length: 2
        """,
    )
    assert "3 problems" in error.message
    assert ENVIRONMENTS_FILE in error.message
    assert f"{ENVIRONMENTS_FILE}:4: environment.dev.vars" in error.message
    assert f"{ENVIRONMENTS_FILE}:6: environment.prod" in error.message
    assert f"{ENVIRONMENTS_FILE}:8: isolation.hash_length" in error.message


def test_load_environments_top_level_list_is_refused(tmp_path: Path) -> None:
    error = config_error(tmp_path, "- dev\n- prod\n")
    assert ENVIRONMENTS_FILE in error.message
    assert "(top level)" in error.message


def test_load_environments_env_called_named_keeps_its_key_path(tmp_path: Path) -> None:
    # Regression: every 'named' part was dropped from error paths, not only the model's bucket.
    error = config_error(tmp_path, "environment:\n  named:\n    vars: [1]\n")
    assert f"{ENVIRONMENTS_FILE}:3: environment.named.vars" in error.message


def test_validate_document_var_called_named_keeps_its_key_path(tmp_path: Path) -> None:
    # Regression: a var declared as 'named' lost that part of its path in error messages.
    doc = load_yaml(write(tmp_path, "dot_vars.yml", "vars:\n  named:\n    strict: maybe\n"))
    with pytest.raises(ConfigError) as info:
        validate_document(doc, VarsFile)
    assert "dot_vars.yml:3: vars.named.strict" in info.value.message


def test_load_environments_env_called_named_resolves(tmp_path: Path) -> None:
    config = load(tmp_path, "environment:\n  named:\n    target: x\n")
    assert config.names == ["named"]
    assert dict(config.resolve("named").flags) == {"target": "x"}


def test_validate_document_returns_model(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "dot_vars.yml", "vars:\n  a:\n    required: true\n"))
    model = validate_document(doc, VarsFile)
    assert model.vars["a"].required is True


def test_validate_document_empty_file_gives_defaults(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, ENVIRONMENTS_FILE, ""))
    assert validate_document(doc, EnvironmentsFile) == EnvironmentsFile()


def test_validate_document_error_names_file_line_and_key(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "dot_vars.yml", "vars:\n  a:\n    strict: maybe\n"))
    with pytest.raises(ConfigError) as info:
        validate_document(doc, VarsFile)
    assert "dot_vars.yml:3: vars.a.strict" in info.value.message
    assert str(doc.path) in info.value.hint


# --- flags ---------------------------------------------------------------------------------


def test_resolve_underscore_keys_become_kebab_case_flags(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        environment:
          dev:
            full_refresh: true
            indirect_selection: cautious
            fail-fast: false
        """,
    )
    flags = dict(config.resolve("dev").flags)
    assert flags == {"full-refresh": True, "indirect-selection": "cautious", "fail-fast": False}


def test_resolve_tool_keys_are_not_flags(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        environment:
          all:
            isolation:
              hash_length: 10
          dev:
            runtime: local
            runtimes: {local: {}}
            vars: {a: 1}
            target: dev
        """,
    )
    assert dict(config.resolve("dev").flags) == {"target": "dev"}


# --- unknown keys --------------------------------------------------------------------------

# Option strings as dbt's commands define them (a few; `dot validate` and a run ask dbt itself).
DBT_OPTIONS = frozenset(
    {"--target", "-t", "--threads", "--full-refresh", "--indirect-selection", "--fail-fast"}
)


def test_check_flag_names_misspelled_target_names_file_line_and_closest_key(
    tmp_path: Path,
) -> None:
    # Regression: `trget: prod` was dropped (a debug note only) and the build used dev's target.
    config = load(tmp_path, SEED_ENVIRONMENTS.replace("    target: prod", "    trget: prod"))
    with pytest.raises(ConfigError) as info:
        config.check_flag_names(DBT_OPTIONS)
    assert info.value.message == (
        f"{ENVIRONMENTS_FILE}:12: environment.prod.trget: unknown key, neither a dot setting"
        " nor a dbt flag (did you mean 'target'?)"
    )
    assert "dbt build --help" in info.value.hint
    assert info.value.exit_code == ExitCode.BAD_INPUT


def test_check_flag_names_lists_every_unknown_key_of_both_files(tmp_path: Path) -> None:
    user = """\
    environment:
      all:
        full_refesh: true
      dev:
        var: {a: 1}
        zzz: 1
    """
    config = load(tmp_path, SEED_ENVIRONMENTS, user)
    with pytest.raises(ConfigError) as info:
        config.check_flag_names(DBT_OPTIONS)
    lines = info.value.message.splitlines()
    assert lines[0] == "3 unknown keys in the environments files:"
    assert lines[1].strip().startswith(f"{USER_ENVIRONMENTS_FILE}:3: environment.all.full_refesh")
    assert lines[1].endswith("(did you mean 'full-refresh'?)")
    assert lines[2].strip().startswith(f"{USER_ENVIRONMENTS_FILE}:5: environment.dev.var")
    assert lines[2].endswith("(did you mean 'vars'?)")
    assert lines[3].endswith(
        "environment.dev.zzz: unknown key, neither a dot setting nor a dbt flag"
    )


def test_check_flag_names_dbt_flags_in_either_spelling_and_tool_keys_pass(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        environment:
          all:
            indirect_selection: cautious
            fail-fast: false
            isolation: {hash_length: 10}
          dev:
            target: dev
            full_refresh: true
            runtime: local
            runtimes: {local: {}}
            vars: {a: 1}
        """,
    )
    config.check_flag_names(DBT_OPTIONS)


def test_check_flag_names_a_short_option_is_not_a_key(tmp_path: Path) -> None:
    # `t: dev` would become `--t dev`, which dbt does not take.
    config = load(tmp_path, "environment:\n  dev:\n    t: dev\n")
    with pytest.raises(ConfigError, match=r"environment\.dev\.t: unknown key"):
        config.check_flag_names(DBT_OPTIONS)


def test_validate_document_unknown_key_names_its_line_and_closest_key(tmp_path: Path) -> None:
    error = config_error(tmp_path, "isolation:\n  hash_lenght:\n    12\n")
    assert error.message == (
        f"{ENVIRONMENTS_FILE}:2: isolation.hash_lenght: unknown key (did you mean 'hash_length'?)"
    )


def test_load_environments_misspelled_default_suggests_default(tmp_path: Path) -> None:
    error = config_error(tmp_path, "environment:\n  defualt: dev\n  dev: {}\n")
    assert f"{ENVIRONMENTS_FILE}:2: environment.defualt:" in error.message
    assert error.message.endswith("(did you mean 'default'?)")


# --- values YAML can hold but dbt cannot be given ------------------------------------------


def test_load_environments_date_var_stays_a_date(tmp_path: Path) -> None:
    config = load(tmp_path, "environment:\n  dev:\n    vars: {start_date: 2024-01-01}\n")
    assert dict(config.resolve("dev").vars) == {"start_date": datetime.date(2024, 1, 1)}


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("environment:\n  dev:\n    vars:\n      a: &x [*x]\n", 4, "refers back"),
        ("environment:\n  dev: &d\n    vars: {a: *d}\n", 2, "refers back"),
        ("environment:\n  dev:\n    vars: {b: !!binary aGVsbG8=}\n", 3, "!!binary"),
        (
            "environment:\n  dev:\n    vars: {c: " + "[" * 2000 + "]" * 2000 + "}\n",
            3,
            "nested more than",
        ),
    ],
    ids=["alias-cycle-list", "alias-cycle-block", "binary", "deep"],
)
def test_load_environments_unsupported_value_names_file_and_line(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    error = config_error(tmp_path, None, text)
    assert error.message.startswith(f"{tmp_path / USER_ENVIRONMENTS_FILE}:{line}: ")
    assert fragment in error.message
    assert "\n" not in error.message


@pytest.mark.parametrize("file_name", [ENVIRONMENTS_FILE, USER_ENVIRONMENTS_FILE])
def test_load_environments_not_utf8_names_path_line_and_what_to_do(
    tmp_path: Path, file_name: str
) -> None:
    path = tmp_path / file_name
    path.write_bytes("# café\nenvironment:\n  dev: {}\n".encode("latin-1"))
    error = config_error(tmp_path, None)
    assert error.message == f"{path}:1: not UTF-8 text (byte 0xe9 at offset 5)"
    assert f"iconv -f latin1 -t utf-8 {path}" in error.hint


def test_load_environments_utf8_with_byte_order_mark_is_read(tmp_path: Path) -> None:
    (tmp_path / ENVIRONMENTS_FILE).write_bytes(b"\xef\xbb\xbfenvironment:\n  dev: {}\n")
    assert load_environments(tmp_path).names == ["dev"]


# --- isolation -----------------------------------------------------------------------------


def test_resolve_top_level_isolation_is_honoured(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        isolation:
          hash_length: 12
          schema_template: "{schema}__{env}_{short_hash}"
        environment:
          dev: {}
        """,
    )
    iso = config.resolve("dev").isolation
    assert iso.hash_length == 12
    assert iso.schema_template == "{schema}__{env}_{short_hash}"
    assert config.resolve(None).isolation.hash_length == 12


def test_resolve_all_isolation_is_honoured(tmp_path: Path) -> None:
    config = load(tmp_path, "environment:\n  all:\n    isolation:\n      hash_length: 16\n")
    assert config.resolve(None).isolation.hash_length == 16


def test_resolve_user_isolation_overrides_project(tmp_path: Path) -> None:
    config = load(tmp_path, "isolation:\n  hash_length: 12\n", "isolation:\n  hash_length: 20\n")
    assert config.resolve(None).isolation.hash_length == 20


def test_resolve_isolation_default_when_absent(seed_project: Path) -> None:
    iso = load_environments(seed_project).resolve("dev").isolation
    assert iso.hash_length == 8
    assert iso.schema_template == "{schema}_{short_hash}"


def test_load_environments_isolation_in_named_env_is_refused(tmp_path: Path) -> None:
    error = config_error(
        tmp_path,
        """\
        environment:
          dev:
            target: dev
            isolation:
              hash_length: 10
        """,
    )
    assert f"{ENVIRONMENTS_FILE}:5" in error.message or f"{ENVIRONMENTS_FILE}:4" in error.message
    assert "project-wide" in error.message


def test_load_environments_isolation_in_user_named_env_is_refused(tmp_path: Path) -> None:
    error = config_error(
        tmp_path, SEED_ENVIRONMENTS, "environment:\n  dev:\n    isolation: {hash_length: 10}\n"
    )
    assert USER_ENVIRONMENTS_FILE in error.message
    assert "project-wide" in error.message


def test_load_environments_schema_template_without_short_hash_is_refused(tmp_path: Path) -> None:
    error = config_error(tmp_path, 'isolation:\n  schema_template: "{schema}_{env}"\n')
    assert f"{ENVIRONMENTS_FILE}:2: isolation" in error.message
    assert "{short_hash}" in error.message


def test_load_environments_schema_template_unknown_field_is_refused(tmp_path: Path) -> None:
    error = config_error(tmp_path, 'isolation:\n  schema_template: "{schema}_{short_hash}_{x}"\n')
    assert "schema_template may only use" in error.message


def test_isolation_config_rejects_unknown_key() -> None:
    with pytest.raises(ValueError, match="hash_lenght"):
        IsolationConfig.model_validate({"hash_lenght": 10})


# --- Environment ---------------------------------------------------------------------------


def test_environment_dir_name_uses_name_or_default() -> None:
    assert Environment(name="prod").dir_name == "prod"
    assert Environment(name=None).dir_name == DEFAULT_ENV_DIR


def test_environments_config_without_layers_is_empty() -> None:
    config = EnvironmentsConfig(())
    assert config.default is None
    assert config.resolve(None).name is None


# --- deep_merge ----------------------------------------------------------------------------


def test_deep_merge_example() -> None:
    a = {"x": 1, "n": {"a": 1, "b": {"c": 1, "d": 1}}, "m": {"k": 1}}
    b = {"y": 2, "n": {"b": {"d": 2}}, "m": 3}
    assert deep_merge(a, b) == {"x": 1, "y": 2, "n": {"a": 1, "b": {"c": 1, "d": 2}}, "m": 3}


def test_deep_merge_does_not_mutate_inputs() -> None:
    a = {"n": {"a": 1}}
    b = {"n": {"b": 2}}
    merged = deep_merge(a, b)
    assert a == {"n": {"a": 1}}
    assert b == {"n": {"b": 2}}
    merged["n"]["c"] = 3
    assert a == {"n": {"a": 1}}


KEYS = st.sampled_from(["a", "b", "c", "d"])
LEAVES = st.one_of(
    st.integers(),
    st.text(max_size=3),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
TREES = st.recursive(
    LEAVES, lambda children: st.dictionaries(KEYS, children, max_size=4), max_leaves=12
)
DICT_TREES = st.dictionaries(KEYS, TREES, max_size=4)


def leaf_paths(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every path to a non-mapping value."""
    out: dict[tuple[str, ...], Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(leaf_paths(value, (*prefix, key)))
        else:
            out[(*prefix, key)] = value
    return out


def get_path(tree: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = tree
    for key in path:
        node = node[key]
    return node


def shaped_trees(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    """Consistently shaped trees: keys `n*` always hold mappings, keys `v*` always hold values,
    so any path is a mapping in every tree or a value in every tree."""
    values = {"v1": st.integers(0, 3), "v2": st.integers(0, 3), "v3": st.text(max_size=2)}
    children = {} if depth == 0 else {"n1": shaped_trees(depth - 1), "n2": shaped_trees(depth - 1)}
    return st.fixed_dictionaries({}, optional={**values, **children})


SHAPED_TREES = shaped_trees(3)


@given(a=DICT_TREES, b=DICT_TREES)
def test_deep_merge_every_leaf_of_override_wins(a: dict[str, Any], b: dict[str, Any]) -> None:
    merged = deep_merge(a, b)
    for path, value in leaf_paths(b).items():
        assert get_path(merged, path) == value


@given(a=DICT_TREES, b=DICT_TREES)
def test_deep_merge_keys_only_in_base_survive(a: dict[str, Any], b: dict[str, Any]) -> None:
    merged = deep_merge(a, b)
    for key in a.keys() - b.keys():
        assert merged[key] == a[key]
    assert merged.keys() == a.keys() | b.keys()


@given(a=DICT_TREES, b=DICT_TREES)
def test_deep_merge_leaves_inputs_unchanged(a: dict[str, Any], b: dict[str, Any]) -> None:
    a_before, b_before = copy.deepcopy(a), copy.deepcopy(b)
    deep_merge(a, b)
    assert a == a_before
    assert b == b_before


@given(a=DICT_TREES)
def test_deep_merge_empty_is_identity(a: dict[str, Any]) -> None:
    assert deep_merge(a, {}) == a
    assert deep_merge({}, a) == a
    assert deep_merge(a, a) == a


@given(a=SHAPED_TREES, b=SHAPED_TREES, c=SHAPED_TREES)
def test_deep_merge_is_associative(a: dict[str, Any], b: dict[str, Any], c: dict[str, Any]) -> None:
    assert deep_merge(deep_merge(a, b), c) == deep_merge(a, deep_merge(b, c))


def test_hypothesis_profile_tolerates_a_loaded_machine() -> None:
    # Slow input generation or a slow example under load is not a failure of deep_merge.
    assert settings.default.deadline is None
    assert HealthCheck.too_slow in settings.default.suppress_health_check

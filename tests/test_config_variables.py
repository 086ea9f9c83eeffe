"""Unit tests for `dot_vars.yml` declarations, `--vars` parsing and var validation."""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datum_dot.config.models import VarSpec
from datum_dot.config.variables import (
    VARS_FILE,
    VarDeclarations,
    VarsCheck,
    check_vars,
    format_cli_vars,
    load_var_declarations,
    parse_cli_vars,
    raise_for_problems,
    split_vars_args,
)
from datum_dot.config.yamlfile import MAX_DEPTH, safe_load
from datum_dot.errors import ConfigError, ExitCode, VarsError

# The seed's example, verbatim.
SEED_VARS = """\
vars:
  feature_flag:
    description: Enables new metric logic
    values: [true, false]
    strict: true
    required: true
  sample_rate:
    description: Percentage of events to process
    values: [1, 5, 10, 25, 50, 100]
    strict: true
    required: false
"""

DEV_SOURCES = {
    "feature_flag": "dot_environments.user.yml:4 environment.dev.vars.feature_flag",
    "sample_rate": "dot_environments.yml:10 environment.dev.vars.sample_rate",
}


@pytest.fixture
def seed_decls(tmp_path: Path) -> VarDeclarations:
    (tmp_path / VARS_FILE).write_text(SEED_VARS, encoding="utf-8")
    return load_var_declarations(tmp_path)


def check(
    values: dict[str, Any], decls: VarDeclarations, sources: dict[str, str] | None = None
) -> VarsCheck:
    return check_vars(values, decls, sources=sources or {}, env_name="dev")


# --- load_var_declarations -----------------------------------------------------------------


def test_load_var_declarations_reads_seed_file(seed_decls: VarDeclarations) -> None:
    assert list(seed_decls.specs) == ["feature_flag", "sample_rate"]
    flag = seed_decls.specs["feature_flag"]
    assert flag == VarSpec(
        description="Enables new metric logic", values=[True, False], strict=True, required=True
    )
    rate = seed_decls.specs["sample_rate"]
    assert rate.values == [1, 5, 10, 25, 50, 100]
    assert rate.strict is True
    assert rate.required is False


def test_load_var_declarations_where_names_file_line_and_key(seed_decls: VarDeclarations) -> None:
    assert seed_decls.where("feature_flag", "required") == (
        f"{VARS_FILE}:6 vars.feature_flag.required"
    )
    assert seed_decls.where("sample_rate", "values") == f"{VARS_FILE}:9 vars.sample_rate.values"


def test_load_var_declarations_without_file_is_empty(tmp_path: Path) -> None:
    decls = load_var_declarations(tmp_path)
    assert dict(decls.specs) == {}
    assert decls.doc is None
    assert decls.where("x", "values") == f"{VARS_FILE} vars.x.values"


def test_load_var_declarations_strict_without_values_is_refused(tmp_path: Path) -> None:
    (tmp_path / VARS_FILE).write_text("vars:\n  a:\n    strict: true\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_var_declarations(tmp_path)
    assert f"{VARS_FILE}:3: vars.a" in info.value.message
    assert "values" in info.value.message


def test_load_var_declarations_unknown_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / VARS_FILE).write_text("vars:\n  a:\n    requird: true\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_var_declarations(tmp_path)
    assert "vars.a.requird" in info.value.message
    assert info.value.exit_code == ExitCode.BAD_INPUT


def test_load_var_declarations_misspelled_key_names_line_and_closest_key(tmp_path: Path) -> None:
    (tmp_path / VARS_FILE).write_text(
        "vars:\n  a:\n    descripton: x\nvar:\n  b: {}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as info:
        load_var_declarations(tmp_path)
    assert (
        f"{VARS_FILE}:3: vars.a.descripton: unknown key (did you mean 'description'?)"
        in info.value.message
    )
    assert f"{VARS_FILE}:4: var: unknown key (did you mean 'vars'?)" in info.value.message


def test_load_var_declarations_not_utf8_names_path_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / VARS_FILE
    path.write_bytes("vars:\n  a:\n    description: café\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_var_declarations(tmp_path)
    assert info.value.message.startswith(f"{path}:3: not UTF-8 text (byte 0xe9")
    assert "UTF-8" in info.value.hint
    assert info.value.exit_code == ExitCode.BAD_INPUT


def test_load_var_declarations_binary_value_names_line(tmp_path: Path) -> None:
    (tmp_path / VARS_FILE).write_text(
        "vars:\n  a:\n    values: [!!binary aGVsbG8=]\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as info:
        load_var_declarations(tmp_path)
    assert f"{VARS_FILE}:3: a !!binary value" in info.value.message


def test_load_var_declarations_malformed_yaml_names_file_line(tmp_path: Path) -> None:
    (tmp_path / VARS_FILE).write_text("vars:\n  a: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_var_declarations(tmp_path)
    assert f"{VARS_FILE}:" in info.value.message
    assert "not valid YAML" in info.value.message


# --- check_vars ----------------------------------------------------------------------------


def test_check_vars_seed_dev_values_pass(seed_decls: VarDeclarations) -> None:
    result = check({"feature_flag": True, "sample_rate": 10}, seed_decls, DEV_SOURCES)
    assert result == VarsCheck()


def test_check_vars_missing_required_var(seed_decls: VarDeclarations) -> None:
    result = check({"sample_rate": 10}, seed_decls)
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert "'feature_flag' is required" in problem
    assert f"{VARS_FILE}:6" in problem
    assert "environment 'dev'" in problem


def test_check_vars_missing_optional_var_is_fine(seed_decls: VarDeclarations) -> None:
    assert check({"feature_flag": False}, seed_decls).problems == ()


def test_check_vars_missing_required_without_env_names_default(seed_decls: VarDeclarations) -> None:
    result = check_vars({}, seed_decls, sources={}, env_name=None)
    assert "the default settings" in result.problems[0]


def test_check_vars_strict_value_outside_values(seed_decls: VarDeclarations) -> None:
    result = check({"feature_flag": True, "sample_rate": 7}, seed_decls, DEV_SOURCES)
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert "'sample_rate' = 7" in problem
    assert DEV_SOURCES["sample_rate"] in problem
    assert "[1, 5, 10, 25, 50, 100]" in problem
    assert f"{VARS_FILE}:9" in problem


def test_check_vars_strict_value_without_source_is_command_line(
    seed_decls: VarDeclarations,
) -> None:
    result = check({"feature_flag": "yes"}, seed_decls)
    assert "from the command line" in result.problems[0]
    assert "'yes'" in result.problems[0]


def test_check_vars_reports_every_problem(tmp_path: Path) -> None:
    (tmp_path / VARS_FILE).write_text(
        SEED_VARS + "  region:\n    required: true\n", encoding="utf-8"
    )
    decls = load_var_declarations(tmp_path)
    result = check({"feature_flag": "maybe", "sample_rate": 3}, decls, DEV_SOURCES)
    assert len(result.problems) == 3
    joined = "\n".join(result.problems)
    assert "'feature_flag' = 'maybe'" in joined
    assert "'sample_rate' = 3" in joined
    assert "'region' is required" in joined


def test_check_vars_true_is_not_one(tmp_path: Path) -> None:
    (tmp_path / VARS_FILE).write_text(
        "vars:\n  level:\n    values: [1, 5]\n    strict: true\n", encoding="utf-8"
    )
    decls = load_var_declarations(tmp_path)
    assert len(check({"level": True}, decls).problems) == 1
    assert check({"level": 1}, decls).problems == ()
    assert check({"level": 5.0}, decls).problems == ()


def test_check_vars_one_is_not_true(seed_decls: VarDeclarations) -> None:
    result = check({"feature_flag": 1}, seed_decls)
    assert len(result.problems) == 1
    assert "'feature_flag' = 1" in result.problems[0]


def test_check_vars_string_is_not_number(seed_decls: VarDeclarations) -> None:
    result = check({"feature_flag": True, "sample_rate": "10"}, seed_decls)
    assert len(result.problems) == 1


def test_check_vars_non_strict_values_are_not_enforced(tmp_path: Path) -> None:
    (tmp_path / VARS_FILE).write_text("vars:\n  a:\n    values: [x, y]\n", encoding="utf-8")
    decls = load_var_declarations(tmp_path)
    assert check({"a": "z"}, decls) == VarsCheck()


def test_check_vars_undeclared_var_passes(seed_decls: VarDeclarations) -> None:
    result = check({"feature_flag": True, "my_own_var": 3}, seed_decls)
    assert result == VarsCheck()


def test_check_vars_without_declarations_passes_anything() -> None:
    result = check({"anything": [1, 2], "feature_flag": "x"}, VarDeclarations())
    assert result == VarsCheck()


def test_check_vars_undeclared_close_name_warns(seed_decls: VarDeclarations) -> None:
    sources = {"sample_rte": "dot_environments.yml:11 environment.dev.vars.sample_rte"}
    result = check({"feature_flag": True, "sample_rte": 10}, seed_decls, sources)
    assert result.problems == ()
    assert len(result.warnings) == 1
    warning = result.warnings[0]
    assert "'sample_rte'" in warning
    assert "did you mean 'sample_rate'?" in warning
    assert sources["sample_rte"] in warning


# --- raise_for_problems --------------------------------------------------------------------


def test_raise_for_problems_without_problems_returns() -> None:
    raise_for_problems(VarsCheck(warnings=("only a warning",)))


def test_raise_for_problems_single_problem_is_message() -> None:
    with pytest.raises(VarsError) as info:
        raise_for_problems(VarsCheck(problems=("var 'a' is bad",)))
    assert info.value.message == "var 'a' is bad"
    assert info.value.exit_code == ExitCode.BAD_INPUT
    assert int(info.value.exit_code) == 20
    assert VARS_FILE in info.value.hint


def test_raise_for_problems_lists_all(seed_decls: VarDeclarations) -> None:
    result = check({"sample_rate": 7}, seed_decls)
    assert len(result.problems) == 2
    with pytest.raises(VarsError) as info:
        raise_for_problems(result)
    assert info.value.exit_code == 20
    assert "2 problems with vars" in info.value.message
    for problem in result.problems:
        assert problem in info.value.message


# --- parse_cli_vars ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"sample_rate": 10, "feature_flag": true}', {"sample_rate": 10, "feature_flag": True}),
        ("sample_rate: 10", {"sample_rate": 10}),
        ("{sample_rate: 10, nested: {a: [1, 2]}}", {"sample_rate": 10, "nested": {"a": [1, 2]}}),
        ("", {}),
        ("{}", {}),
    ],
)
def test_parse_cli_vars_accepts_mappings(text: str, expected: dict[str, Any]) -> None:
    assert parse_cli_vars(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[1, 2]", "list"),
        ("5", "int"),
        ("just a string", "str"),
        ("{a: 1", "not valid YAML"),
        ("a: b: c", "not valid YAML"),
    ],
)
def test_parse_cli_vars_refuses_non_mappings(text: str, fragment: str) -> None:
    with pytest.raises(VarsError) as info:
        parse_cli_vars(text)
    assert fragment in info.value.message
    assert info.value.exit_code == ExitCode.BAD_INPUT
    assert "--vars" in info.value.hint


def test_parse_cli_vars_date_stays_a_date_as_dbt_reads_it() -> None:
    assert parse_cli_vars("{start_date: 2024-01-01, at: 2024-01-01 10:00:00}") == {
        "start_date": datetime.date(2024, 1, 1),
        "at": datetime.datetime(2024, 1, 1, 10, 0),  # noqa: DTZ001 - YAML's naive timestamp
    }


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{a: &x [*x]}", "refers back to the value itself"),
        ("a: &x {b: *x}", "refers back to the value itself"),
        ("{a: !!binary aGVsbG8=}", "!!binary"),
        ("{a: " + "[" * 2000 + "]" * 2000 + "}", f"nested more than {MAX_DEPTH} levels"),
        ("{a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "}", "nested more than"),
        (
            "a: &a [" + ",".join(["1"] * 100) + "]\n"
            "b: &b [" + ",".join(["*a"] * 100) + "]\n"
            "c: [" + ",".join(["*b"] * 100) + "]\n",
            "more than 100,000 items",
        ),
    ],
    ids=["alias-cycle-list", "alias-cycle-map", "binary", "deep-2000", "deep-105", "alias-bomb"],
)
def test_parse_cli_vars_unsupported_value_is_bad_input(text: str, fragment: str) -> None:
    with pytest.raises(VarsError) as info:
        parse_cli_vars(text)
    assert info.value.message.startswith("--vars '")
    assert fragment in info.value.message
    assert "(line " in info.value.message
    assert len(info.value.message) < 200  # the text itself is shortened
    assert info.value.hint
    assert info.value.exit_code == ExitCode.BAD_INPUT


def test_parse_cli_vars_shared_alias_without_cycle_is_fine() -> None:
    assert parse_cli_vars("{a: &x [1], b: *x, c: {<<: {d: 2}}}") == {
        "a": [1],
        "b": [1],
        "c": {"d": 2},
    }


# --- format_cli_vars -----------------------------------------------------------------------


def test_format_cli_vars_json_when_json_says_it() -> None:
    assert format_cli_vars({"sample_rate": 10, "feature_flag": True, "name": "naïve 😀"}) == (
        '{"feature_flag":true,"name":"naïve 😀","sample_rate":10}'
    )


def test_format_cli_vars_date_reads_back_as_a_date() -> None:
    # Regression: dates were sent as JSON strings, and a dry run crashed printing them.
    text = format_cli_vars({"start_date": datetime.date(2024, 1, 1), "n": 1})
    assert text == "{n: 1, start_date: 2024-01-01}"
    assert safe_load(text) == {"start_date": datetime.date(2024, 1, 1), "n": 1}


def test_format_cli_vars_yaml_only_values_read_back_unchanged() -> None:
    meant = parse_cli_vars(
        "{1: a, b: 1.0e+100, c: .nan, d: !!set {z, a}, e: 2024-01-01 10:00:00+01:00, f: [2024-02-29]}"
    )
    read = safe_load(format_cli_vars(meant))
    assert math.isnan(read.pop("c"))
    assert read == {k: v for k, v in meant.items() if k != "c"}
    assert format_cli_vars(meant) == format_cli_vars(dict(reversed(list(meant.items()))))


_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=6)
    | st.dates()
    | st.datetimes()
)


@given(
    st.dictionaries(
        st.text(max_size=5),
        st.recursive(
            _LEAVES,
            lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids),
            max_leaves=8,
        ),
        max_size=5,
    )
)
def test_format_cli_vars_reads_back_as_the_same_vars(variables: dict[str, Any]) -> None:
    # dbt reads --vars with PyYAML's safe loader (libyaml's when present), as safe_load does.
    read = safe_load(format_cli_vars(variables))
    assert read == variables
    assert [type(v) for v in read.values()] == [type(variables[k]) for k in read]


# --- split_vars_args -----------------------------------------------------------------------


def test_split_vars_args_extracts_both_forms_in_order() -> None:
    rest, values = split_vars_args(
        ["-s", "my_model+", "--vars", "{a: 1}", "--full-refresh", "--vars={b: 2}", "--debug"]
    )
    assert rest == ["-s", "my_model+", "--full-refresh", "--debug"]
    assert values == ["{a: 1}", "{b: 2}"]


def test_split_vars_args_without_vars_keeps_args() -> None:
    args = ["--select", "x", "--vars-file", "y"]
    assert split_vars_args(args) == (args, [])


def test_split_vars_args_value_looking_like_option_is_taken() -> None:
    assert split_vars_args(["--vars", "--x"]) == ([], ["--x"])


def test_split_vars_args_empty_equals_value() -> None:
    assert split_vars_args(["--vars="]) == ([], [""])


def test_split_vars_args_trailing_vars_raises() -> None:
    with pytest.raises(VarsError) as info:
        split_vars_args(["-s", "x", "--vars"])
    assert "without a value" in info.value.message
    assert info.value.exit_code == ExitCode.BAD_INPUT
    assert info.value.hint

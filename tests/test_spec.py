"""Unit tests for the `[env][@ref]` spec grammar (`datum_dot.runs.spec`)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datum_dot.errors import ExitCode, SpecError
from datum_dot.runs.spec import (
    Spec,
    check_ref,
    parse_defer_spec,
    parse_spec,
    parse_state_from_spec,
)

ENV_NAMES = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", fullmatch=True)
# Any text without control characters (C0, DEL, C1) or lone surrogates that git would not read
# as an option.
REFS = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30
).filter(lambda ref: not ref.startswith("-"))


def _spec_error(text: str, parse: object = parse_spec) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse(text)  # type: ignore[operator]
    return info.value


# --- parse_spec: valid specs ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "env", "ref"),
    [
        ("", None, None),
        ("dev", "dev", None),
        ("prod@main", "prod", "main"),
        ("@v1.2", None, "v1.2"),
        ("dev@HEAD@{1}", "dev", "HEAD@{1}"),
        ("@@{-1}", None, "@{-1}"),
        ("dev@feature/my-branch", "dev", "feature/my-branch"),
        ("dev@HEAD~1", "dev", "HEAD~1"),
        ("my_env.v2-x@abc1234", "my_env.v2-x", "abc1234"),
        ("_private", "_private", None),
    ],
)
def test_parse_spec_splits_env_and_ref(text: str, env: str | None, ref: str | None) -> None:
    assert parse_spec(text) == Spec(env=env, ref=ref)


def test_parse_spec_empty_is_default_working_tree() -> None:
    spec = parse_spec("")
    assert spec.env is None
    assert spec.ref is None
    assert not spec.is_isolated


def test_parse_spec_with_ref_is_isolated() -> None:
    assert parse_spec("@main").is_isolated
    assert parse_spec("dev@main").is_isolated
    assert not parse_spec("dev").is_isolated


# --- parse_spec: refused specs -------------------------------------------------------------


def test_parse_spec_empty_ref_is_refused() -> None:
    error = _spec_error("prod@")
    assert "empty git ref" in error.message
    assert "prod@" in error.message


@pytest.mark.parametrize("text", ["@-rf", "dev@--upload-pack=x", "@-", "prod@-main"])
def test_parse_spec_ref_starting_with_dash_is_refused(text: str) -> None:
    error = _spec_error(text)
    assert "starts with '-'" in error.message


@pytest.mark.parametrize(
    "text",
    ["@main\n", "@ma\x00in", "dev@main\x1b[31m", "@\x7f", "dev@a\tb", "@\r"],
)
def test_parse_spec_control_character_in_ref_is_refused(text: str) -> None:
    error = _spec_error(text)
    assert "control character" in error.message


@pytest.mark.parametrize(
    "text",
    [
        "dev\n",
        "dev\n@main",
        "de\tv",
        "-dev",
        "-dev@main",
        ".hidden",
        "dev env",
        "dev/x@main",
        "dév",
        "dev;rm",
        "dev$x@main",
    ],
)
def test_parse_spec_bad_env_name_is_refused(text: str) -> None:
    error = _spec_error(text)
    assert "environment name" in error.message


def test_parse_spec_env_name_trailing_newline_is_refused() -> None:
    # Regression: `re.match` with `$` accepted 'dev\n' as a valid environment name.
    with pytest.raises(SpecError):
        parse_spec("dev\n")


# --- check_ref -----------------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["main", "HEAD@{1}", "@{-1}", "v1.2", "a-b", "feature/x-1"])
def test_check_ref_returns_valid_ref_unchanged(ref: str) -> None:
    assert check_ref(ref) == ref


@pytest.mark.parametrize("ref", ["-rf", "--upload-pack=x", "main\n", "a\x00b", "\x1f", "x\x7f"])
def test_check_ref_refuses_option_like_or_control_refs(ref: str) -> None:
    with pytest.raises(SpecError):
        check_ref(ref)


# --- str(Spec) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["", "dev", "prod@main", "@v1.2", "dev@HEAD@{1}", "@@{-1}", "a.b-c@x/y"]
)
def test_spec_str_round_trips(text: str) -> None:
    assert str(parse_spec(text)) == text


def test_spec_str_of_constructed_specs() -> None:
    assert str(Spec()) == ""
    assert str(Spec(env="dev")) == "dev"
    assert str(Spec(ref="main")) == "@main"
    assert str(Spec(env="prod", ref="main")) == "prod@main"


# --- parse_defer_spec ----------------------------------------------------------------------


def test_parse_defer_spec_without_ref_is_the_live_environment() -> None:
    spec = parse_defer_spec("prod")
    assert spec == Spec(env="prod")
    assert not spec.is_isolated


def test_parse_state_from_spec_without_ref_is_refused() -> None:
    error = _spec_error("prod", parse_state_from_spec)
    assert "must name a git ref" in error.message
    assert "--state-from prod@main" in error.hint
    assert "--defer prod" in error.hint


def test_parse_defer_spec_empty_ref_is_refused() -> None:
    error = _spec_error("prod@", parse_defer_spec)
    assert "empty git ref" in error.message


def test_parse_defer_spec_bare_at_is_missing_env_and_ref() -> None:
    error = _spec_error("@", parse_defer_spec)
    assert "neither an environment nor a git ref" in error.message


def test_parse_defer_spec_empty_text_names_nothing() -> None:
    error = _spec_error("", parse_defer_spec)
    assert "neither an environment nor a git ref" in error.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prod@main", Spec(env="prod", ref="main")),
        ("@main", Spec(env=None, ref="main")),
        ("prod@HEAD@{2}", Spec(env="prod", ref="HEAD@{2}")),
    ],
)
def test_parse_defer_spec_accepts_env_at_ref(text: str, expected: Spec) -> None:
    spec = parse_defer_spec(text)
    assert spec == expected
    assert spec.is_isolated


@pytest.mark.parametrize("text", ["prod@-x", "bad name@main", "@ma\nin"])
def test_parse_defer_spec_applies_spec_checks(text: str) -> None:
    _spec_error(text, parse_defer_spec)


# --- every SpecError carries exit code 20 and a hint ---------------------------------------


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_spec, "prod@"),
        (parse_spec, "@-rf"),
        (parse_spec, "dev@--upload-pack=x"),
        (parse_spec, "@a\x00"),
        (parse_spec, "bad name"),
        (parse_spec, "dev\n"),
        (parse_state_from_spec, "prod"),
        (parse_state_from_spec, "prod@"),
        (parse_defer_spec, "prod@"),
        (parse_defer_spec, "@"),
        (parse_defer_spec, "@-x"),
        (check_ref, "-x"),
        (check_ref, "a\x1b"),
    ],
)
def test_spec_error_has_exit_code_20_and_hint(parse: object, text: str) -> None:
    error = _spec_error(text, parse)
    assert error.exit_code == ExitCode.BAD_INPUT
    assert int(error.exit_code) == 20
    assert error.hint.strip()
    assert str(error) == error.message


# --- properties ----------------------------------------------------------------------------


@given(env=ENV_NAMES, ref=REFS)
def test_parse_spec_splits_at_first_at(env: str, ref: str) -> None:
    spec = parse_spec(f"{env}@{ref}")
    assert (spec.env, spec.ref) == (env, ref)


@given(ref=REFS)
def test_parse_spec_default_env_keeps_whole_ref(ref: str) -> None:
    assert parse_spec(f"@{ref}") == Spec(env=None, ref=ref)


@given(env=st.one_of(st.just(""), ENV_NAMES), ref=st.one_of(st.none(), REFS))
def test_spec_str_round_trips_for_any_valid_spec(env: str, ref: str | None) -> None:
    text = env if ref is None else f"{env}@{ref}"
    assert str(parse_spec(text)) == text


@given(env=ENV_NAMES, ref=REFS)
def test_parse_defer_spec_agrees_with_parse_spec(env: str, ref: str) -> None:
    text = f"{env}@{ref}"
    assert parse_defer_spec(text) == parse_spec(text)

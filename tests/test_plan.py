"""Unit tests for the pure argv helpers of `datum_dot.runs.plan`."""

from __future__ import annotations

import datetime
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datum_dot.config.environments import Environment
from datum_dot.errors import ExitCode, UsageError
from datum_dot.runs.plan import (
    OWNED_FLAGS,
    Baseline,
    defer_args,
    environment_flags,
    render_flag,
    render_vars,
)
from datum_dot.runs.planner import make_plan
from datum_dot.runs.run import RunRequest
from datum_dot.runs.spec import Spec
from tests.helpers.example import ExampleProject

BUILD_ACCEPTS = frozenset(
    {
        "--target",
        "--threads",
        "--full-refresh",
        "--indirect-selection",
        "--select",
        "--exclude",
        "--defer",
        "--favor-state",
        "--state",
        "--project-dir",
        "--profiles-dir",
        "--target-path",
        "--log-path",
    }
)
DEPS_ACCEPTS = frozenset({"--project-dir", "--profiles-dir", "--target", "--add-package"})

STATE_DIR = Path("/project/.dot/build/abcdef12/env/prod/target")
BASELINE = Baseline(spec=Spec(env="prod", ref="main"), commit="a" * 40, state_dir=STATE_DIR)


# --- render_flag ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, ["--key"]),
        (False, []),
        (["a", "b"], ["--key", "a", "b"]),
        ([], []),
        ([1, True, 2.5], ["--key", "1", "true", "2.5"]),
        (4, ["--key", "4"]),
        (0, ["--key", "0"]),
        (2.5, ["--key", "2.5"]),
        ("buildable", ["--key", "buildable"]),
        ("", ["--key", ""]),
    ],
)
def test_render_flag_value_kinds(value: Any, expected: list[str]) -> None:
    assert render_flag("key", value) == expected


def test_render_flag_dict_is_sorted_json() -> None:
    args = render_flag("vars", {"b": 1, "a": {"y": [1, 2], "x": None}})
    assert args[0] == "--vars"
    assert len(args) == 2
    assert json.loads(args[1]) == {"b": 1, "a": {"y": [1, 2], "x": None}}
    assert args[1] == json.dumps({"a": {"x": None, "y": [1, 2]}, "b": 1})


def test_render_flag_dict_with_yaml_date_does_not_crash() -> None:
    # Regression: a dict-valued flag holding a YAML date raised TypeError from json.dumps.
    args = render_flag("meta", {"since": datetime.date(2024, 1, 1)})
    assert args == ["--meta", '{"since": "2024-01-01"}']


def test_render_flag_zero_is_not_false() -> None:
    # 0 == False in Python; the flag must still be passed with its value.
    assert render_flag("threads", 0) == ["--threads", "0"]
    assert render_flag("threads", 1) == ["--threads", "1"]


# --- render_vars ---------------------------------------------------------------------------


def test_render_vars_empty_is_nothing() -> None:
    assert render_vars({}) == []


def test_render_vars_is_compact_json() -> None:
    args = render_vars({"sample_rate": 10, "feature_flag": True})
    assert args == ["--vars", '{"feature_flag":true,"sample_rate":10}']


def test_render_vars_insertion_order_does_not_matter() -> None:
    first = render_vars({"b": 1, "a": {"z": 1, "y": 2}, "c": [3, 1]})
    second = render_vars({"c": [3, 1], "a": {"y": 2, "z": 1}, "b": 1})
    assert first == second


def test_render_vars_non_json_values_become_strings() -> None:
    args = render_vars({"day": Path("/x")})
    assert json.loads(args[1]) == {"day": "/x"}


@given(
    st.dictionaries(
        st.text(max_size=5),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=5),
            lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids),
            max_leaves=8,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_render_vars_round_trips_and_ignores_order(variables: dict[str, Any]) -> None:
    args = render_vars(variables)
    assert args[0] == "--vars"
    assert json.loads(args[1]) == variables
    assert render_vars(dict(reversed(list(variables.items())))) == args


# --- environment_flags ---------------------------------------------------------------------


def test_environment_flags_renders_accepted_flags_in_order() -> None:
    env = Environment(
        name="dev",
        flags={"target": "dev", "threads": 12, "full-refresh": True, "select": ["a", "b"]},
    )
    args, notes = environment_flags(env, BUILD_ACCEPTS, ("build",))
    assert args == ["--target", "dev", "--threads", "12", "--full-refresh", "--select", "a", "b"]
    assert notes == []


def test_environment_flags_leaves_out_unaccepted_with_note() -> None:
    env = Environment(
        name="dev", flags={"target": "dev", "threads": 12, "indirect-selection": "buildable"}
    )
    args, notes = environment_flags(env, DEPS_ACCEPTS, ("deps",))
    assert args == ["--target", "dev"]
    assert len(notes) == 2
    assert any("--threads" in note and "dbt deps" in note for note in notes)
    assert any("--indirect-selection" in note for note in notes)


def test_environment_flags_note_names_multiword_command() -> None:
    env = Environment(name="dev", flags={"threads": 4})
    args, notes = environment_flags(env, frozenset(), ("source", "freshness"))
    assert args == []
    assert notes == ["dbt source freshness does not accept --threads; left out"]


def test_environment_flags_false_flag_is_silent() -> None:
    env = Environment(name="dev", flags={"full-refresh": False})
    assert environment_flags(env, DEPS_ACCEPTS, ("deps",)) == ([], [])
    assert environment_flags(env, BUILD_ACCEPTS, ("build",)) == ([], [])


@pytest.mark.parametrize("flag", sorted(OWNED_FLAGS))
def test_environment_flags_leaves_out_owned_flags(flag: str) -> None:
    env = Environment(name="dev", flags={flag: "/elsewhere", "target": "dev"})
    args, notes = environment_flags(env, BUILD_ACCEPTS, ("build",))
    assert args == ["--target", "dev"]
    assert "/elsewhere" not in args
    assert len(notes) == 1
    assert flag in notes[0]
    assert "set by dot" in notes[0]


def test_environment_flags_no_flags() -> None:
    assert environment_flags(Environment(name=None), BUILD_ACCEPTS, ("build",)) == ([], [])


def test_owned_flags_are_the_flags_an_isolated_plan_places(example: ExampleProject) -> None:
    # An environment may set any flag but these: the plan sets them to the build's own folders.
    request = RunRequest(
        command=("build",), spec=Spec(env="prod", ref="HEAD"), project_dir=example.path
    )
    plan = make_plan(request, options_for=lambda key: BUILD_ACCEPTS | {"--vars"})
    folders = {
        str(path) for path in (plan.project_dir, plan.profiles_dir, plan.target_path, plan.log_path)
    }
    argv = plan.dbt_args
    placed = {flag for flag, value in itertools.pairwise(argv) if value in folders}
    assert {flag.removeprefix("--") for flag in placed} == OWNED_FLAGS


# --- defer_args ----------------------------------------------------------------------------


def test_defer_args_without_baseline_is_nothing() -> None:
    assert defer_args(None, frozenset(), ("deps",)) == []


def test_defer_args_with_baseline() -> None:
    args = defer_args(BASELINE, BUILD_ACCEPTS, ("build",))
    assert args == ["--defer", "--favor-state", "--state", str(STATE_DIR)]


def test_defer_args_only_what_the_command_accepts() -> None:
    args = defer_args(BASELINE, frozenset({"--state", "--defer"}), ("ls",))
    assert args == ["--defer", "--state", str(STATE_DIR)]
    assert defer_args(BASELINE, frozenset({"--state"}), ("x",)) == ["--state", str(STATE_DIR)]


def test_defer_args_without_state_option_raises() -> None:
    with pytest.raises(UsageError) as info:
        defer_args(BASELINE, frozenset({"--defer", "--favor-state", "--target"}), ("deps",))
    assert "dbt deps does not take --defer" in info.value.message
    assert info.value.exit_code == ExitCode.BAD_INPUT
    assert "build" in info.value.hint


def test_baseline_spec_is_a_spec() -> None:
    assert str(BASELINE.spec) == "prod@main"
    assert BASELINE.spec.is_isolated

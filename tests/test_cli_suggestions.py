"""Unknown options: the error names the sub-command, and never suggests the word typed."""

from __future__ import annotations

import argparse

import pytest

from datum_dot.cli.main import main
from datum_dot.cli.parser import build_parser
from datum_dot.errors import UsageError


def _paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((*prefix, name))
                found += _paths(sub, (*prefix, name))
    return found


def _options(parser: argparse.ArgumentParser) -> set[str]:
    names = {o for o in parser._option_string_actions if o.startswith("--")}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                names |= _options(sub)
    return names


def _parser_of(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> argparse.ArgumentParser:
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


def test_cli_unknown_option_of_every_sub_command_names_it_and_never_echoes_the_word() -> None:
    parser = build_parser("dot")
    top = set(parser._option_string_actions)
    everywhere = _options(parser)
    checked = 0
    for path in _paths(parser):
        here = set(_parser_of(parser, path)._option_string_actions) | top
        for option in sorted(everywhere - here):
            with pytest.raises(UsageError) as info:
                parser.parse_args([*path, option])
            message = info.value.message
            assert f"did you mean '{option}'" not in message, (path, option, message)
            if "unrecognized arguments" in message:
                assert f"`{' '.join(path)}` has no {option} option" in message, message
                checked += 1
    assert checked > 500  # most combinations reach the unknown-option check


def test_cli_init_disable_prompts_says_init_has_no_such_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["init", "--disable-prompts"]) == 20
    err = capsys.readouterr().err
    assert "`init` has no --disable-prompts option" in err
    assert "did you mean '--disable-prompts'" not in err


def test_cli_options_are_never_abbreviated(capsys: pytest.CaptureFixture[str]) -> None:
    # `--all` once meant `--allow-unisolated` for dbt commands: a build outside its schema.
    assert main(["build", "prod@HEAD", "--all", "--dry-run"]) == 20
    assert "`build` has no --all option" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "option", "command"),
    [(["--no-deps", "build", "prod"], "--no-deps", "build"),
     (["--dry-run", "run", "dev"], "--dry-run", "run"),
     (["--all", "clean"], "--all", "clean")],
)  # fmt: skip
def test_cli_an_option_before_its_command_word_says_where_it_goes(
    capsys: pytest.CaptureFixture[str], argv: list[str], option: str, command: str
) -> None:
    assert main(argv) == 20
    err = capsys.readouterr().err
    assert f"{option} is an option of `{command}`: put it after the command word" in err
    assert f"`{command}` has no {option} option" not in err

"""dbt's own flags before `--`: `dot build prod -s orders+ --full-refresh`.

A dbt command's words are split in two before argparse sees them: the tool's options (and
their values) stay, and every option the dbt command accepts (as dbt itself defines it, with
the number of words it takes) moves to dbt's arguments, in order, ahead of anything after `--`.
Where the tool and dbt spell an option the same (`--defer`, `--vars`, `--project-dir`,
`--debug`, `--log-format`, `--version`, `-h`), the tool's wins: dbt's is given after `--`.

dbt's definitions are read only when a word is not one of the tool's own options, so
`dot --help`, `dot build prod --dry-run` and every other command never import dbt for this.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence

from datum_dot.errors import UsageError

Arities = Callable[[tuple[str, ...]], Mapping[str, str]]
"""Option string -> `flag`, `value`, `values` or `rest`, for a dbt command (see dbtcore)."""


def split_dbt_flags(
    words: Sequence[str],
    command: argparse.ArgumentParser,
    key: tuple[str, ...],
    *,
    arities: Arities | None = None,
) -> tuple[list[str], list[str]]:
    """Split a dbt command's words (those after the command word) into ours and dbt's.

    Args:
        words: The words after the command word, before any `--`.
        command: The command's sub-parser: its options are the tool's.
        key: The dbt command (`("build",)`, `("docs", "generate")`) whose flags may be given.
        arities: How many words each dbt option takes; read from dbt itself when None.

    Returns:
        The words for the tool's parser, and those for dbt (in the order given).

    Raises:
        UsageError: A dbt option that takes a value was given none.
    """
    ours_arity = _our_arities(command)
    kept: list[str] = []
    moved: list[str] = []
    dbt_arity: Mapping[str, str] | None = None
    i = 0
    while i < len(words):
        word = words[i]
        name, has_value = word.split("=", 1)[0], "=" in word
        if not word.startswith("-") or word == "-":
            kept.append(word)
            i += 1
            continue
        if name in ours_arity:
            take = 1 if ours_arity[name] and not has_value else 0
            kept.extend(words[i : i + 1 + take])
            i += 1 + take
            continue
        if dbt_arity is None:
            dbt_arity = (arities or _dbt_arities)(key)
        arity = dbt_arity.get(name)
        if arity is None:
            kept.append(word)  # neither ours nor dbt's: argparse says so, with a suggestion
            i += 1
            continue
        if arity in ("value", "values") and not has_value and not _has_value_after(words, i):
            raise UsageError(
                f"dbt's {word} needs a value", f"give it one, as dbt would: {word} <value>"
            )
        end = _value_end(words, i, arity, has_value=has_value)
        moved.extend(words[i:end])
        i = end
    return kept, moved


def dbt_option_names(key: tuple[str, ...]) -> list[str]:
    """Every option string of a dbt command (imports dbt): for "did you mean" suggestions."""
    return sorted(_dbt_arities(key))


def _has_value_after(words: Sequence[str], at: int) -> bool:
    return at + 1 < len(words) and not words[at + 1].startswith("-")


def _value_end(words: Sequence[str], at: int, arity: str, *, has_value: bool) -> int:
    """Where the option at `at` and its values end, as dbt's click parser reads them."""
    if arity == "rest":
        return len(words)
    if arity == "flag":
        return at + 1
    if arity == "value":
        return at + 1 if has_value else min(at + 2, len(words))
    end = at + 1 if has_value else at + 2  # `values`: one word, then more up to an option
    end = min(end, len(words))
    while end < len(words) and not words[end].startswith("-"):
        end += 1
    return end


def _our_arities(command: argparse.ArgumentParser) -> dict[str, int]:
    """The sub-command's option strings and whether each takes a value (1) or not (0)."""
    return {
        option: 0 if action.nargs == 0 else 1
        for action in command._actions
        for option in action.option_strings
    }


def _dbt_arities(key: tuple[str, ...]) -> Mapping[str, str]:
    """dbt's option table for a command, read from the cache kept per dbt-core version."""
    # lazy: dbt (or its cached table) is consulted only when a word is not one of the tool's
    from datum_dot.runs.commands import option_arities

    return option_arities(key)

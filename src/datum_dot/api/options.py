"""The keyword arguments of the API's dbt methods, checked and turned into a `RunRequest`.

A wrong type is a `TypeError`, as Python callers expect; a wrong value is bad input
(`BadInputError`, exit code 20), as on the command line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from datum_dot.errors import BadInputError
from datum_dot.runs.run import RunRequest, Trigger
from datum_dot.runs.spec import parse_defer_spec, parse_spec


@dataclass(frozen=True)
class Options:
    """What a caller may say about one dbt command; see `Project.build` for each."""

    select: str | Sequence[str] | None = None
    exclude: str | Sequence[str] | None = None
    selector: str | None = None
    defer: str | None = None
    full_refresh: bool = False
    vars: Mapping[str, object] | None = None
    target: str | None = None
    threads: int | None = None
    timeout: float | None = None
    retries: int = 0
    runtime: str | None = None
    args: Sequence[str] = ()


def make_request(
    project_dir: Path,
    command: Sequence[str],
    spec: str,
    options: Options,
    *,
    environ: Mapping[str, str] | None,
    dry_run: bool = False,
    extra_args: Sequence[str] = (),
) -> RunRequest:
    """The request `execute()` runs for one API call (trigger `sdk`).

    Args:
        project_dir: The dbt project folder.
        command: The dbt command words.
        spec: `[env][@ref]`.
        options: The call's keyword arguments.
        environ: Variables to resolve profiles and `$DATUM_HOME` with; None: this process's.
        dry_run: Plan only.
        extra_args: dbt arguments the method itself adds (`--args` of run-operation).

    Returns:
        The request.

    Raises:
        TypeError: An argument has the wrong type.
        BadInputError: An argument has a wrong value (a malformed spec, `threads=0`, ...).
    """
    _check_str("spec", spec)
    o = options
    dbt_args = [*extra_args]
    dbt_args += _multi("--select", "select", o.select) + _multi("--exclude", "exclude", o.exclude)
    for flag, name, value in (("--selector", "selector", o.selector),
                              ("--target", "target", o.target)):  # fmt: skip
        if value is not None:
            _check_str(name, value)
            dbt_args += [flag, value]
    if o.threads is not None:
        dbt_args += ["--threads", str(_at_least("threads", o.threads, 1))]
    if o.full_refresh:
        dbt_args.append("--full-refresh")
    dbt_args += _strings("args", o.args)
    if o.timeout is not None:
        if isinstance(o.timeout, bool) or not isinstance(o.timeout, int | float):
            raise TypeError(f"timeout takes a number of seconds, got {type(o.timeout).__name__}")
        if not o.timeout > 0:
            raise BadInputError(
                f"timeout must be more than 0 seconds, got {o.timeout!r}",
                "pass timeout=600 (seconds), for example, or leave it out for no limit",
            )
    if o.vars is not None and not isinstance(o.vars, Mapping):
        raise TypeError(f"vars takes a dict, got {type(o.vars).__name__}")
    if o.defer is not None:
        _check_str("defer", o.defer)
    if o.runtime is not None:
        _check_str("runtime", o.runtime)
    return RunRequest(
        command=tuple(command),
        spec=parse_spec(spec),
        project_dir=project_dir,
        dbt_args=tuple(dbt_args),
        cli_vars=dict(o.vars or {}),
        defer=parse_defer_spec(o.defer) if o.defer is not None else None,
        dry_run=dry_run,
        timeout=float(o.timeout) if o.timeout is not None else None,
        trigger=Trigger.SDK,
        environ=environ,
        runtime=o.runtime,
        retries=_at_least("retries", o.retries, 0),
    )


def operation_args(macro: str, args: Mapping[str, object] | None) -> list[str]:
    """`run-operation`'s `--args`, as JSON (which dbt reads as YAML), or nothing."""
    _check_str("macro", macro)
    if args is None:
        return []
    if not isinstance(args, Mapping):
        raise TypeError(f"args takes a dict of the macro's arguments, got {type(args).__name__}")
    try:
        return ["--args", json.dumps(dict(args), default=_refuse)]
    except (TypeError, ValueError) as e:
        raise BadInputError(
            f"the arguments of macro {macro!r} cannot be passed to dbt: {e}",
            "pass strings, numbers, booleans, None, lists and dicts of them",
        ) from e


def command_words(command: str | Sequence[str]) -> tuple[str, ...]:
    """`"docs generate"` or `("docs", "generate")` as command words."""
    words = tuple(command.split()) if isinstance(command, str) else tuple(command)
    if not words or not all(isinstance(word, str) and word for word in words):
        raise BadInputError(
            f"command must name a dbt command, got {command!r}",
            'pass command="build", for example, or "docs generate"',
        )
    return words


def _multi(flag: str, name: str, value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else _strings(name, value)
    return [flag, *items] if items else []


def _strings(name: str, value: Sequence[str]) -> list[str]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TypeError(f"{name} takes a list of strings, got {type(value).__name__}")
    for item in value:
        _check_str(name, item)
    return list(value)


def _at_least(name: str, value: int, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} takes an int, got {type(value).__name__}")
    if value < least:
        raise BadInputError(
            f"{name} must be {least} or more, got {value}", f"pass {_EXAMPLES[name]}, for example"
        )
    return value


def _check_str(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} takes a string, got {type(value).__name__}")


_EXAMPLES = {"threads": "threads=4", "retries": "retries=3"}


def _refuse(value: object) -> object:
    raise TypeError(f"{type(value).__name__} is not JSON")

"""`dot_vars.yml` declarations, `--vars` parsing, and validation of the merged vars."""

from __future__ import annotations

import datetime
import difflib
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from datum_dot.config.environments import validate_document
from datum_dot.config.models import VarsFile, VarSpec
from datum_dot.config.sources import SettingsFile, read_checkout_file
from datum_dot.config.yamlfile import (
    UnsupportedValueError,
    YamlDocument,
    load_value,
    load_yaml_text,
    safe_load,
)
from datum_dot.errors import VarsError

VARS_FILE = "dot_vars.yml"


@dataclass(frozen=True)
class VarDeclarations:
    """The variables declared in `dot_vars.yml` (empty when the file is absent)."""

    specs: Mapping[str, VarSpec] = field(default_factory=dict)
    doc: YamlDocument | None = None

    def where(self, name: str, key: str) -> str:
        """Return `dot_vars.yml:<line> vars.<name>.<key>` for messages."""
        loc = ("vars", name, key)
        place = self.doc.where(loc) if self.doc else VARS_FILE
        return f"{place} vars.{name}.{key}"


@dataclass(frozen=True)
class VarsCheck:
    """What validating vars found: problems stop the run, warnings are shown."""

    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def load_var_declarations(
    project_dir: Path, *, project_file: SettingsFile | None = None
) -> VarDeclarations:
    """Read `dot_vars.yml` from the project folder (or as given), if present.

    Args:
        project_dir: The folder holding `dbt_project.yml`.
        project_file: The file as read elsewhere (from the commit an isolated build builds);
            by default the one in `project_dir`.

    Raises:
        ConfigError: The file is not valid YAML or has wrong types.
    """
    found = project_file or read_checkout_file(project_dir, VARS_FILE)
    if found.text is None:
        return VarDeclarations()
    label = found.label if found.commit is not None else None
    doc = load_yaml_text(found.text, path=found.path, label=label)
    return VarDeclarations(specs=validate_document(doc, VarsFile).vars, doc=doc)


def parse_cli_vars(text: str) -> dict[str, Any]:
    """Parse a `--vars` value: a YAML or JSON mapping, read as dbt reads it.

    Raises:
        VarsError: The value is not valid YAML, not a mapping, or holds a value dbt cannot be
            given (see `load_value`).
    """
    shown = _shorten(text)
    try:
        value = load_value(text)
    except UnsupportedValueError as e:
        raise VarsError(f"--vars {shown}: {e.problem}{_position(e)}", e.hint) from e
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        detail = f": {problem}{_position(e)}"
        raise VarsError(f"--vars {shown} is not valid YAML or JSON{detail}", _VARS_HINT) from e
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise VarsError(f"--vars {shown} is a {type(value).__name__}, not a mapping", _VARS_HINT)
    return value


def format_cli_vars(variables: Mapping[str, Any]) -> str:
    """The `--vars` text that dbt's own parsing (YAML) reads back as exactly `variables`.

    Compact JSON with sorted keys when JSON can say it, so the same vars give the same text.
    Otherwise YAML in flow style: a date stays a date (`{start_date: 2024-01-01}`), as it would
    with `dbt --vars` given the user's own text, where JSON would turn it into a string. Values
    of other types (set by a program, not parsed from YAML) are passed as their `str()`.
    """
    plain = _plain(variables)
    text = _as_json(plain)
    if text is not None:
        return text
    dumped = yaml.dump(
        _sorted(plain),
        Dumper=_VarsDumper,
        default_flow_style=True,
        sort_keys=False,
        width=sys.maxsize,
        allow_unicode=False,
    )
    return str(dumped).strip()


# Characters YAML reads differently when they stand unescaped in a quoted string: line breaks it
# folds (NEL, LS, PS) and characters outside its printable set. JSON's `\u` + 4 hex escape reads the
# same in both. (JSON's escapes for characters beyond U+FFFF are surrogate pairs, which libyaml
# refuses: those characters are written as they are.)
_YAML_ESCAPED = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
_VARS_HINT = (
    """pass a mapping, for example --vars '{"sample_rate": 10}' or --vars 'sample_rate: 10'"""
)
# The types YAML reads into and writes back; anything else is passed as its str().
_YAML_SCALARS = (str, int, float, bool, type(None), datetime.date)


class _VarsDumper(yaml.SafeDumper):
    """Writes sets in a fixed order, so the same vars give the same `--vars` text."""

    def represent_set(self, data: Any) -> yaml.MappingNode:
        """A `!!set` with its items sorted."""
        items = dict.fromkeys(sorted(data, key=_key_order))
        return self.represent_mapping("tag:yaml.org,2002:set", items)


_VarsDumper.add_representer(set, _VarsDumper.represent_set)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, set | frozenset):
        return set(value)
    return value if isinstance(value, _YAML_SCALARS) else str(value)


def _as_json(plain: dict[str, Any]) -> str | None:
    """Compact JSON of `plain`, when YAML reads it back unchanged; else None."""
    try:
        text = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        text = _YAML_ESCAPED.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
        read = safe_load(text)
    except (TypeError, yaml.YAMLError):
        # Dates and keys of mixed types are not JSON.
        return None
    return text if _same(read, plain) else None


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value, key=_key_order)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def _key_order(key: Any) -> tuple[str, str]:
    # Keys of one mapping may mix types (`{1: a, b: c}`): order by type, then by text.
    return type(key).__name__, str(key)


def _same(read: Any, meant: Any) -> bool:
    """Equal, and of the same types all the way down (`1 == True` and `1 == 1.0` in Python)."""
    if type(read) is not type(meant):
        return False
    if isinstance(meant, dict):
        return sorted(map(_key_order, read)) == sorted(map(_key_order, meant)) and all(
            _same(read[key], item) for key, item in meant.items()
        )
    if isinstance(meant, list):
        return len(read) == len(meant) and all(map(_same, read, meant))
    if isinstance(meant, float) and math.isnan(meant):
        return math.isnan(read)
    return bool(read == meant)


def _position(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    return "" if mark is None else f" (line {mark.line + 1}, column {mark.column + 1})"


def _shorten(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else f"{text[: limit - 3]}...")


def split_vars_args(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """Take every `--vars X` / `--vars=X` out of dbt arguments given after `--`.

    Returns:
        The remaining arguments, and the `--vars` values in order.

    Raises:
        VarsError: `--vars` is the last argument, with no value.
    """
    rest: list[str] = []
    values: list[str] = []
    items = iter(args)
    for arg in items:
        if arg == "--vars":
            value = next(items, None)
            if value is None:
                raise VarsError("--vars was given without a value", "pass --vars '{key: value}'")
            values.append(value)
        elif arg.startswith("--vars="):
            values.append(arg.removeprefix("--vars="))
        else:
            rest.append(arg)
    return rest, values


def check_vars(
    values: Mapping[str, Any],
    declarations: VarDeclarations,
    *,
    sources: Mapping[str, str],
    env_name: str | None,
) -> VarsCheck:
    """Validate merged vars against their declarations, collecting every problem.

    Args:
        values: The merged vars (all < env < user file < command line).
        declarations: What `dot_vars.yml` declares.
        sources: For each var, where its value was set.
        env_name: The environment being resolved, for messages.

    Returns:
        Every problem and warning found.
    """
    problems: list[str] = []
    warnings: list[str] = []
    env_label = f"environment '{env_name}'" if env_name else "the default settings"
    for name, spec in declarations.specs.items():
        if spec.required and name not in values:
            problems.append(
                f"var '{name}' is required ({declarations.where(name, 'required')}) but {env_label}"
                f" sets no value: set it under environment.<env>.vars or pass --vars '{{{name}: ...}}'"
            )
        if spec.strict and spec.values is not None and name in values:
            value = values[name]
            if not _is_allowed(value, spec.values):
                src = sources.get(name, "the command line")
                problems.append(
                    f"var '{name}' = {value!r} (from {src}) is not one of {spec.values!r}"
                    f" ({declarations.where(name, 'values')})"
                )
    for name in values:
        if name in declarations.specs:
            continue
        close = difflib.get_close_matches(name, list(declarations.specs), n=1, cutoff=0.75)
        if close:
            src = sources.get(name, "the command line")
            warnings.append(
                f"var '{name}' (from {src}) is not declared in {VARS_FILE};"
                f" did you mean '{close[0]}'?"
            )
    return VarsCheck(problems=tuple(problems), warnings=tuple(warnings))


def _is_allowed(value: Any, allowed: Sequence[Any]) -> bool:
    # YAML's `true` and 1 compare equal in Python; a strict var should not accept 1 for true.
    return any(value == item and type(value) is type(item) for item in allowed) or (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and any(
            isinstance(item, int | float) and not isinstance(item, bool) and value == item
            for item in allowed
        )
    )


def raise_for_problems(check: VarsCheck) -> None:
    """Raise one VarsError listing every problem, if there are any.

    Raises:
        VarsError: At least one problem was found.
    """
    if not check.problems:
        return
    if len(check.problems) == 1:
        message = check.problems[0]
    else:
        message = f"{len(check.problems)} problems with vars:\n  " + "\n  ".join(check.problems)
    raise VarsError(message, f"fix the values, or the declarations in {VARS_FILE}")

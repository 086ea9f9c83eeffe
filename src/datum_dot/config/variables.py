"""`dot_vars.yml` declarations, `--vars` parsing, and validation of the merged vars."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from datum_dot.config.models import VarsFile, VarSpec
from datum_dot.config.yamlfile import YamlDocument, load_yaml, safe_load
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


def load_var_declarations(project_dir: Path) -> VarDeclarations:
    """Read `dot_vars.yml` from the project folder, if present.

    Raises:
        ConfigError: The file is not valid YAML or has wrong types.
    """
    from datum_dot.config.environments import validate_document

    path = project_dir / VARS_FILE
    if not path.is_file():
        return VarDeclarations()
    doc = load_yaml(path)
    return VarDeclarations(specs=validate_document(doc, VarsFile).vars, doc=doc)


def parse_cli_vars(text: str) -> dict[str, Any]:
    """Parse a `--vars` value: a YAML or JSON mapping.

    Raises:
        VarsError: The value is not valid YAML or not a mapping.
    """
    try:
        value = safe_load(text)
    except yaml.YAMLError as e:
        raise VarsError(
            f"--vars {text!r} is not valid YAML or JSON",
            """pass a mapping, for example --vars '{"sample_rate": 10}' or --vars 'sample_rate: 10'""",
        ) from e
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise VarsError(
            f"--vars {text!r} is a {type(value).__name__}, not a mapping",
            """pass a mapping, for example --vars '{"sample_rate": 10}' or --vars 'sample_rate: 10'""",
        )
    return value


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

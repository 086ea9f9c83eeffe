"""Load `dot_environments.yml` (+ the user override) and resolve one environment.

Merge order for an environment's settings, lowest first: project `all`, project `<env>`, user
`all`, user `<env>`. Blocks merge shallowly (a later key replaces an earlier one) except `vars`,
which merge deeply. Command-line `--vars` are applied on top by the plan.

The project's file is read from the checkout, or, for an isolated build, given as read from the
commit being built (`SettingsFile`); the user's file always comes from the checkout. Each
resolved flag and var remembers where it was set (`Origin`), for the plan to show.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from datum_dot.config.models import (
    TOOL_KEYS,
    EnvironmentBlock,
    EnvironmentSection,
    EnvironmentsFile,
    FlagValue,
    IsolationConfig,
)
from datum_dot.config.sources import Origin, SettingsFile, SourceKind, read_checkout_file
from datum_dot.config.spelling import allowed_keys, did_you_mean
from datum_dot.config.yamlfile import YamlDocument, load_yaml_text
from datum_dot.errors import ConfigError

ENVIRONMENTS_FILE = "dot_environments.yml"
USER_ENVIRONMENTS_FILE = "dot_environments.user.yml"
DEFAULT_ENV_DIR = "default"

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Environment:
    """The resolved settings of one environment.

    Attributes:
        name: The environment's name, or None when no environment applies (no file, no default).
        flags: dbt CLI flags, kebab-case keys, in merge order.
        vars: Variable values after merging all layers.
        var_sources: For each top-level var, where its value was set (`file:line key`).
        flag_origins: For each flag, where its value was set.
        var_origins: For each top-level var, where its value was set.
        isolation: Project-wide isolated-build settings.
        runtime: The runtime named by the environment, if any.
        runtimes: Settings per runtime name (`runtimes:` blocks, merged deeply, later wins).
    """

    name: str | None
    flags: Mapping[str, FlagValue] = field(default_factory=dict)
    vars: Mapping[str, Any] = field(default_factory=dict)
    var_sources: Mapping[str, str] = field(default_factory=dict)
    flag_origins: Mapping[str, Origin] = field(default_factory=dict)
    var_origins: Mapping[str, Origin] = field(default_factory=dict)
    isolation: IsolationConfig = field(default_factory=IsolationConfig)
    runtime: str | None = None
    runtimes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def dir_name(self) -> str:
        """The folder name used for this environment under `.dot/build/<hash>/env/`."""
        return self.name or DEFAULT_ENV_DIR


@dataclass(frozen=True)
class _Layer:
    label: str
    doc: YamlDocument | None
    config: EnvironmentsFile
    kind: SourceKind = "working-tree"
    commit: str | None = None

    def origin(self, loc: tuple[str, ...]) -> Origin:
        """Where the key at `loc` was set in this layer's file."""
        line = self.doc.line_of(loc, key=True) if self.doc is not None else None
        return Origin(
            kind=self.kind, file=self.label, line=line, key=".".join(loc), commit=self.commit
        )


@dataclass(frozen=True)
class EnvironmentsConfig:
    """Both environments files, validated, ready to resolve environments from."""

    layers: tuple[_Layer, ...]

    @property
    def default(self) -> str | None:
        """The default environment's name (the user file's choice wins)."""
        for layer in reversed(self.layers):
            if layer.config.environment.default is not None:
                return layer.config.environment.default
        return None

    @property
    def names(self) -> list[str]:
        """Every defined environment, in the order the files define them."""
        seen: dict[str, None] = {}
        for layer in self.layers:
            seen.update(dict.fromkeys(layer.config.environment.named))
        return list(seen)

    @property
    def files(self) -> list[Path]:
        """The files that were found and read."""
        return [layer.doc.path for layer in self.layers if layer.doc is not None]

    def resolve(self, name: str | None) -> Environment:
        """Resolve an environment by name, or the default one when `name` is None.

        Raises:
            ConfigError: The environment is not defined.
        """
        name = name if name is not None else self.default
        if name is not None and name not in self.names:
            raise ConfigError(_unknown_env_message(name, self.names), _env_hint(self.names))
        flags: dict[str, FlagValue] = {}
        variables: dict[str, Any] = {}
        sources: dict[str, str] = {}
        flag_origins: dict[str, Origin] = {}
        var_origins: dict[str, Origin] = {}
        isolation = IsolationConfig()
        runtime: str | None = None
        runtimes: dict[str, Any] = {}
        for layer in self.layers:
            section = layer.config.environment
            if layer.config.isolation is not None:
                isolation = layer.config.isolation
            blocks: list[tuple[str, EnvironmentBlock]] = [("all", section.all)]
            if name is not None and name in section.named:
                blocks.append((name, section.named[name]))
            for block_name, block in blocks:
                if block.isolation is not None:
                    isolation = block.isolation
                runtime = block.runtime or runtime
                runtimes = deep_merge(runtimes, block.runtimes)
                flags.update(block.flags())
                for key in block.model_extra or {}:
                    flag_origins[key.replace("_", "-")] = layer.origin(
                        ("environment", block_name, key)
                    )
                variables = deep_merge(variables, block.vars)
                for var in block.vars:
                    loc = ("environment", block_name, "vars", var)
                    where = layer.doc.where(loc) if layer.doc else layer.label
                    sources[var] = f"{where} environment.{block_name}.vars.{var}"
                    var_origins[var] = layer.origin(loc)
        return Environment(
            name=name,
            flags=flags,
            vars=variables,
            var_sources=sources,
            flag_origins=flag_origins,
            var_origins=var_origins,
            isolation=isolation,
            runtime=runtime,
            runtimes={
                name: dict(block) if isinstance(block, Mapping) else {}
                for name, block in runtimes.items()
            },
        )

    def check_flag_names(self, options: frozenset[str]) -> None:
        """Refuse environment keys that are neither dot settings nor options of any dbt command.

        Such a key could never reach dbt: it is a misspelling (`trget: prod`), and running
        without it would build with the wrong settings.

        Args:
            options: Every option string at least one dbt command accepts (`--threads`, `-t`).

        Raises:
            ConfigError: Naming each such key's file, line and the closest known key.
        """
        known = sorted({*TOOL_KEYS, *(o[2:] for o in options if o.startswith("--"))})
        problems: list[str] = []
        for layer in self.layers:
            section = layer.config.environment
            for block_name, block in [("all", section.all), *section.named.items()]:
                for key in block.model_extra or {}:
                    flag = key.replace("_", "-")
                    if f"--{flag}" in options:
                        continue
                    loc = ("environment", block_name, key)
                    where = layer.doc.where(loc, key=True) if layer.doc else layer.label
                    problems.append(
                        f"{where}: environment.{block_name}.{key}: unknown key, neither a dot"
                        f" setting nor a dbt flag{did_you_mean(flag, known)}"
                    )
        if not problems:
            return
        message = (
            problems[0]
            if len(problems) == 1
            else (
                f"{len(problems)} unknown keys in the environments files:\n  "
                + "\n  ".join(problems)
            )
        )
        raise ConfigError(
            message,
            "correct or remove the key: an environment takes vars, isolation, runtime, runtimes"
            " and the flags of dbt's commands (dbt build --help lists them)",
        )


def load_environments(
    project_dir: Path, *, project_file: SettingsFile | None = None
) -> EnvironmentsConfig:
    """Read and validate the environments files of a dbt project; both are optional.

    Args:
        project_dir: The folder holding `dbt_project.yml`.
        project_file: The project's `dot_environments.yml` as read elsewhere (from the commit
            an isolated build builds); by default the one in `project_dir`. The user's
            `dot_environments.user.yml` is always read from `project_dir`.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: A file is not valid YAML, has wrong types, or names an undefined default.
    """
    files = (
        project_file or read_checkout_file(project_dir, ENVIRONMENTS_FILE),
        read_checkout_file(project_dir, USER_ENVIRONMENTS_FILE, kind="user"),
    )
    layers: list[_Layer] = []
    for found in files:
        if found.text is None:
            continue
        label = found.label if found.commit is not None else None
        doc = load_yaml_text(found.text, path=found.path, label=label)
        layers.append(
            _Layer(
                found.repo_path or found.name,
                doc,
                validate_document(doc, EnvironmentsFile),
                kind=found.kind,
                commit=found.commit,
            )
        )
    config = EnvironmentsConfig(tuple(layers))
    _check_default(config)
    for layer in layers:
        for env_name, block in layer.config.environment.named.items():
            if block.isolation is not None and layer.doc is not None:
                where = layer.doc.where(("environment", env_name, "isolation"))
                raise ConfigError(
                    f"{where}: isolation settings are project-wide, not per environment",
                    "move the isolation block under environment.all or to a top-level isolation:",
                )
    return config


def validate_document(doc: YamlDocument, model: type[M]) -> M:
    """Validate a YAML document against a model; errors name the file, line and key.

    Raises:
        ConfigError: Every validation problem, one per line.
    """
    data = {} if doc.data is None else doc.data
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = list(err["loc"])
            message = _error_message(model, loc, err["type"], err["msg"])
            if loc[:2] == ["environment", "named"]:
                del loc[1]  # the model's bucket for named environments, not a key the user wrote
            key = ".".join(str(part) for part in loc) or "(top level)"
            where = doc.where(loc, key=err["type"] == "extra_forbidden")
            problems.append(f"{where}: {key}: {message}")
        first = problems[0] if len(problems) == 1 else f"{len(problems)} problems in {doc.name}"
        detail = "" if len(problems) == 1 else "\n  " + "\n  ".join(problems)
        fix = (
            f"fix the file, commit the fix and build that commit (git show {doc.label})"
            if doc.label
            else f"fix {doc.path}"
        )
        raise ConfigError(
            first + detail, f"{fix}; the README's configuration reference lists every key"
        ) from e


def _error_message(model: type[BaseModel], loc: list[str | int], kind: str, text: str) -> str:
    """pydantic's message, or for a key the model does not know, the key probably meant."""
    if kind == "extra_forbidden":
        return "unknown key" + did_you_mean(str(loc[-1]), allowed_keys(model, loc[:-1]))
    if len(loc) == 3 and loc[:2] == ["environment", "named"] and kind == "model_type":
        # `defualt: dev` reads as an environment named `defualt` whose block is a string.
        return text + did_you_mean(str(loc[2]), EnvironmentSection.RESERVED)
    return text


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge two mappings recursively; values of `override` win, nested mappings merge."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def _check_default(config: EnvironmentsConfig) -> None:
    default = config.default
    if default is None or default in config.names:
        return
    layer = next(
        layer for layer in reversed(config.layers) if layer.config.environment.default == default
    )
    where = layer.doc.where(("environment", "default")) if layer.doc else layer.label
    raise ConfigError(
        f"{where}: environment.default names '{default}', which is not defined",
        _env_hint(config.names, prefix="set environment.default to one of"),
    )


def _unknown_env_message(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    guess = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown environment '{name}'{guess}"


def _env_hint(names: list[str], prefix: str = "use one of the defined environments:") -> str:
    if not names:
        return f"no environments are defined: add them under environment: in {ENVIRONMENTS_FILE}"
    return f"{prefix} {', '.join(names)}"

"""Where a plan's settings came from: each settings file read, and each setting's origin.

A dry run shows, for the target, the threads, every flag the environment sets and every var,
its value and where it was set: a file of the commit being built, a file of the working tree,
the user's override file, the command line, a variable, the user config, or nobody (dbt's
default). Pure: the planner gathers the inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from datum_dot.config.environments import Environment
from datum_dot.config.sources import Origin, SettingsFile

FileKind = Literal["commit", "working-tree", "user", "file"]
"""Where a file the plan read came from (`file`: a path on disk, where dbt would read it)."""


@dataclass(frozen=True)
class FileSource:
    """One file the plan read its settings from (or looked for and did not find).

    Attributes:
        name: The file's name (`dot_vars.yml`, `profiles.yml`).
        kind: Where it was read.
        found: Whether it exists there.
        path: Its path from the repository's top for a committed file, else on disk.
        commit: The short hash of the commit, for a committed file.
        note: What its absence (or presence) means for the run, if anything.
    """

    name: str
    kind: FileKind
    found: bool
    path: str
    commit: str | None = None
    note: str = ""

    @classmethod
    def of(cls, file: SettingsFile, note: str = "") -> FileSource:
        """The plan's record of a settings file that was read (its text is not kept)."""
        kind: FileKind = (
            "user" if file.kind == "user" else "commit" if file.commit else "working-tree"
        )
        path = file.repo_path if file.commit is not None and file.repo_path else str(file.path)
        return cls(file.name, kind, file.exists, path, file.commit, note)

    def describe(self) -> str:
        """Where the file was read, for the plan's text."""
        if self.kind == "commit":
            where = f"commit {self.commit}" if self.found else f"not in commit {self.commit}"
        elif self.kind == "user":
            where = "your checkout, applied on top" if self.found else "none"
        elif self.kind == "file":
            where = self.path
        else:
            where = "working tree" if self.found else "none in the working tree"
        return f"{where}: {self.note}" if self.note else where

    def to_json(self) -> dict[str, object]:
        """The file as plain JSON-ready data."""
        return {
            "file": self.name,
            "source": self.kind,
            "found": self.found,
            "commit": self.commit,
            "path": self.path,
            "note": self.note or None,
        }


@dataclass(frozen=True)
class Setting:
    """One resolved setting, its value, and where it came from.

    Attributes:
        name: `target`, `threads`, a flag's name, or a var's name.
        value: The value dbt gets, or None when dbt decides (its default).
        origin: Where it was set.
    """

    name: str
    value: Any
    origin: Origin

    def to_json(self) -> dict[str, object]:
        """The setting as plain JSON-ready data."""
        return {"value": self.value, **self.origin.to_json()}


@dataclass(frozen=True)
class PlanSettings:
    """Where the plan's settings came from.

    Attributes:
        files: The settings files read (or missing), in the order they apply.
        flags: The target, the threads and every other flag the environment sets.
        vars: Every var passed to dbt.
    """

    files: tuple[FileSource, ...] = ()
    flags: tuple[Setting, ...] = ()
    vars: tuple[Setting, ...] = ()

    def to_json(self) -> dict[str, object]:
        """The settings as plain JSON-ready data (the `settings` of `--dry-run --json`)."""
        return {
            "files": [file.to_json() for file in self.files],
            "flags": {setting.name: setting.to_json() for setting in self.flags},
            "vars": {setting.name: setting.to_json() for setting in self.vars},
        }


def given_option(args: Sequence[str], option: str) -> tuple[bool, Any]:
    """Whether pass-through args give `option` (`--threads 8`, `--threads=8`, `--full-refresh`),
    and its value there (True for a switch); the last one counts, as in dbt."""
    found: tuple[bool, Any] = (False, None)
    for i, arg in enumerate(args):
        if arg.startswith(option + "="):
            found = (True, arg.partition("=")[2])
        elif arg == option:
            nxt = args[i + 1] if i + 1 < len(args) else None
            found = (True, True if nxt is None or nxt.startswith("-") else nxt)
    return found


_COMMAND_LINE = "after --"


def flag_settings(env: Environment, extra: Sequence[str], target: Setting) -> tuple[Setting, ...]:
    """The target, the threads and each flag the environment sets, with their origins.

    Args:
        env: The resolved environment.
        extra: The pass-through args dbt gets after the environment's flags (later wins).
        target: The target's setting, as the planner resolved it.
    """
    rows = [target]
    names = ["threads", *(key for key in env.flags if key not in ("target", "threads"))]
    for name in names:
        given, value = given_option(extra, f"--{name}")
        if given:
            origin = Origin("command-line", key=f"{_COMMAND_LINE} --{name}")
        elif name in env.flags:
            value, origin = env.flags[name], env.flag_origins.get(name, Origin("default"))
        else:  # threads, set by nobody: the profile's target decides
            value, origin = None, Origin("default", key="the target's threads in profiles.yml")
        rows.append(Setting(name, value, origin))
    return tuple(rows)


def var_settings(
    env: Environment, merged: Mapping[str, Any], given: Mapping[str, Any]
) -> tuple[Setting, ...]:
    """Each var dbt gets, with where its (top-level) value was last set."""
    rows = []
    for name in sorted(merged):
        if name in given:
            origin = Origin("command-line", key="--vars")
        else:
            origin = env.var_origins.get(name, Origin("default"))
        rows.append(Setting(name, merged[name], origin))
    return tuple(rows)

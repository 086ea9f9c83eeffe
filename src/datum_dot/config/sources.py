"""Where a setting came from: a settings file (committed, in the checkout, or the user's), a flag.

An isolated build reads the project's settings files as they are in the commit being built; a
plain run reads them from the checkout. `SettingsFile` is one such file, already read (the git
questions are asked by the planner); `Origin` says where one resolved setting was set, for the
plan to show.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from datum_dot.config.yamlfile import read_text

SourceKind = Literal[
    "commit",
    "working-tree",
    "user",
    "command-line",
    "environment-variable",
    "user-config",
    "default",
]
"""Where a setting came from (the JSON plan's `source`)."""

_KIND_WORDS: dict[SourceKind, str] = {
    "commit": "commit",
    "working-tree": "working tree",
    "user": "user file",
    "command-line": "command line",
    "environment-variable": "environment variable",
    "user-config": "user config",
    "default": "default",
}


@dataclass(frozen=True)
class SettingsFile:
    """One of the project's settings files, as read from a commit or from the checkout.

    Attributes:
        name: The file's name (`dot_environments.yml`).
        path: Where it is (or would be) in the checkout.
        kind: `commit` or `working-tree` (the project's files), `user` (the user override file).
        text: Its content, or None when there is no such file.
        commit: The short hash of the commit it was read from (`commit` files only).
        repo_path: Its path from the repository's top (`commit` files only).
    """

    name: str
    path: Path
    kind: SourceKind
    text: str | None
    commit: str | None = None
    repo_path: str | None = None

    @property
    def label(self) -> str:
        """What messages call the file: `<short hash>:<path in the repository>` for a committed
        one (what `git show` takes), else its name."""
        if self.commit is not None:
            return f"{self.commit}:{self.repo_path or self.name}"
        return self.name

    @property
    def exists(self) -> bool:
        """Whether the file exists (in the commit, or in the checkout)."""
        return self.text is not None


def read_checkout_file(
    folder: Path, name: str, *, kind: SourceKind = "working-tree"
) -> SettingsFile:
    """Read a settings file from a folder of the checkout (None as text when it is absent).

    Raises:
        ConfigError: The file exists but cannot be read, or is not UTF-8 text.
    """
    path = folder / name
    text = read_text(path) if path.is_file() else None
    return SettingsFile(name=name, path=path, kind=kind, text=text)


@dataclass(frozen=True)
class Origin:
    """Where one resolved setting was set.

    Attributes:
        kind: The kind of place.
        file: The file's name, or for a committed file its path from the repository's top;
            None for a flag, a variable or a default.
        line: The line in the file, when known.
        key: The key in the file (`environment.prod.threads`), or what set it otherwise
            (`--vars`, `DBT_TARGET`, `profiles.yml`).
        commit: The short hash, for a committed file.
    """

    kind: SourceKind
    file: str | None = None
    line: int | None = None
    key: str | None = None
    commit: str | None = None

    def describe(self) -> str:
        """`commit 1a2b3c4d, dot_environments.yml:22` and the like, for the plan's text."""
        word = _KIND_WORDS[self.kind]
        if self.file is not None:
            place = f"{self.file}:{self.line}" if self.line else self.file
            return f"{word} {self.commit}, {place}" if self.commit else f"{word}, {place}"
        return f"{word} ({self.key})" if self.key else word

    def to_json(self) -> dict[str, object]:
        """The origin as plain JSON-ready data."""
        return {
            "source": self.kind,
            "commit": self.commit,
            "file": self.file,
            "line": self.line,
            "key": self.key,
        }

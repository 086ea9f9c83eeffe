"""Read YAML files the user owns, keeping line numbers for error messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from datum_dot.errors import ConfigError

# libyaml's parser when PyYAML was built with it (the wheels are): the same documents, parsed
# about ten times faster than by the pure-Python one.
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """`yaml.safe_load`, with libyaml's parser when it is there.

    Raises:
        yaml.YAMLError: The text is not valid YAML, as the pure-Python parser reports it (its
            line numbers point at the mistake more often than libyaml's).
    """
    try:
        return yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        return yaml.safe_load(text)


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the value built from it: the text is parsed once."""
    try:
        return _parse_with(SAFE_LOADER, text)
    except yaml.YAMLError:
        return _parse_with(yaml.SafeLoader, text)  # for the pure-Python parser's error


def _parse_with(loader_class: type[yaml.SafeLoader], text: str) -> tuple[yaml.Node | None, Any]:
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        return root, None if root is None else loader.construct_document(root)
    finally:
        loader.dispose()


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML file and its node tree (for line numbers).

    Attributes:
        path: Where the file lives.
        data: The loaded value (None for an empty file).
        root: The composed node tree, or None for an empty file.
    """

    path: Path
    data: Any
    root: yaml.Node | None

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """Return the 1-based line of the node at `loc`, or of its nearest existing parent."""
        node = self.root
        line = node.start_mark.line + 1 if node is not None else None
        for key in loc:
            node = _child(node, key)
            if node is None:
                break
            line = node.start_mark.line + 1
        return line

    def where(self, loc: Sequence[str | int]) -> str:
        """Return `file:line` for `loc`, or just the file name when no line is known."""
        line = self.line_of(loc)
        return f"{self.path.name}:{line}" if line else self.path.name


def load_yaml(path: Path) -> YamlDocument:
    """Load a YAML file, turning syntax errors into a ConfigError with file and line.

    Args:
        path: The file to read.

    Returns:
        The document with its data and node tree.

    Raises:
        ConfigError: The file cannot be read or is not valid YAML.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(
            f"cannot read {path}: {e.strerror}", f"check the file: ls -l {path}"
        ) from e
    try:
        root, data = _parse(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(
            f"{where}: not valid YAML: {problem}", f"fix the YAML syntax at {where}"
        ) from e
    return YamlDocument(path=path, data=data, root=root)


def _child(node: yaml.Node | None, key: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == str(key):
                found: yaml.Node = value_node
                return found
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        child: yaml.Node = node.value[key]
        return child
    return None

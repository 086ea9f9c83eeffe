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

# Limits on what a dot file or `--vars` may hold. Real settings nest a few levels; deeper values,
# or aliases repeating a value thousands of times, only make Python (and dbt after it) run out
# of stack or memory.
MAX_DEPTH = 100
MAX_VALUES = 100_000
_BINARY_TAG = "tag:yaml.org,2002:binary"
# libyaml's own nesting limit (1,000 levels) is reported as a syntax error with this problem.
_LIBYAML_DEPTH_PROBLEM = "exceeded maximum nesting depth"


class UnsupportedValueError(yaml.MarkedYAMLError):
    """Valid YAML holding a value dot will not pass on: self-referring, binary, or too deep.

    Attributes:
        problem: What is wrong with the value.
        problem_mark: Where the value starts in the text.
        hint: What to write instead.
    """

    def __init__(self, problem: str, mark: yaml.Mark | None, hint: str) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.hint = hint


def safe_load(text: str) -> Any:
    """`yaml.safe_load`, with libyaml's parser when it is there.

    Raises:
        yaml.YAMLError: The text is not valid YAML, as the pure-Python parser reports it (its
            line numbers point at the mistake more often than libyaml's).
    """
    try:
        return yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as fast_error:
        try:
            return yaml.safe_load(text)
        except RecursionError:
            # The pure-Python parser recurses once per nesting level.
            raise fast_error from None


def load_value(text: str) -> Any:
    """Parse YAML text the user wrote into a value dot can pass on to dbt.

    Like `safe_load`, but a value that refers to itself through an alias, a `!!binary` value,
    a value nested more than `MAX_DEPTH` levels or expanding to more than `MAX_VALUES` items is
    refused: dbt could not be given it, and Python would fail on it later.

    Raises:
        UnsupportedValueError: The YAML is valid but holds such a value.
        yaml.YAMLError: The text is not valid YAML.
    """
    return _parse(text)[1]


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the value built from it: the text is parsed once.

    Raises:
        UnsupportedValueError: The YAML is valid but holds a value dot will not pass on.
        yaml.YAMLError: The text is not valid YAML.
    """
    try:
        return _parse_with(SAFE_LOADER, text)
    except UnsupportedValueError:
        raise
    except yaml.YAMLError as fast_error:
        if getattr(fast_error, "problem", None) == _LIBYAML_DEPTH_PROBLEM:
            raise _too_deep(getattr(fast_error, "problem_mark", None)) from fast_error
        try:
            return _parse_with(yaml.SafeLoader, text)  # for the pure-Python parser's error
        except RecursionError:
            raise fast_error from None


def _parse_with(loader_class: type[yaml.SafeLoader], text: str) -> tuple[yaml.Node | None, Any]:
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        check_nodes(root)
        return root, loader.construct_document(root)
    finally:
        loader.dispose()


def check_nodes(root: yaml.Node) -> None:
    """Refuse a node tree whose value dot cannot pass on (see `load_value`).

    Shared nodes (an alias used several times) are visited once, so the check takes time in
    proportion to the text, not to the value the aliases expand to.

    Raises:
        UnsupportedValueError: An alias inside a value refers to that value, a scalar is tagged
            `!!binary`, or the value is too deep or too large.
    """
    sizes: dict[int, int] = {}  # id of a node checked in full -> items its value expands to
    open_nodes: set[int] = set()  # ids of the nodes on the path from the root

    def visit(node: yaml.Node, depth: int) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in open_nodes:
            raise UnsupportedValueError(
                "an alias inside this value refers back to the value itself, so it never ends",
                node.start_mark,
                "write the inner value out instead of the alias (*name) to its own anchor (&name)",
            )
        if depth > MAX_DEPTH:
            raise _too_deep(node.start_mark)
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _BINARY_TAG:
                raise UnsupportedValueError(
                    "a !!binary value: dot passes on text, numbers, booleans, dates, lists and"
                    " mappings",
                    node.start_mark,
                    "write the value as a plain string, without the !!binary tag",
                )
            sizes[id(node)] = 1
            return 1
        children: list[yaml.Node] = (
            [part for pair in node.value for part in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
        )
        open_nodes.add(id(node))
        size = 1 + sum(visit(child, depth + 1) for child in children)
        open_nodes.discard(id(node))
        if size > MAX_VALUES:
            raise UnsupportedValueError(
                f"this value expands to more than {MAX_VALUES:,} items through aliases",
                node.start_mark,
                "write the values out, or repeat fewer aliases",
            )
        sizes[id(node)] = size
        return size

    visit(root, 0)


def _too_deep(mark: yaml.Mark | None) -> UnsupportedValueError:
    return UnsupportedValueError(
        f"the value is nested more than {MAX_DEPTH} levels deep",
        mark,
        "flatten the value: dbt vars and dot settings need only a few levels",
    )


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML file and its node tree (for line numbers).

    Attributes:
        path: Where the file lives.
        data: The loaded value (None for an empty file).
        root: The composed node tree, or None for an empty file.
        label: What messages call the file instead of its name (`1a2b3c4d:dot_vars.yml` for
            one read from a commit), or None.
    """

    path: Path
    data: Any
    root: yaml.Node | None
    label: str | None = None

    @property
    def name(self) -> str:
        """What messages call the file: its label, else its name."""
        return self.label or self.path.name

    def line_of(self, loc: Sequence[str | int], *, key: bool = False) -> int | None:
        """Return the 1-based line of the node at `loc`, or of its nearest existing parent.

        With `key`, the line of the last key of `loc` itself rather than of its value (which
        may start on a later line).
        """
        node = self.root
        line = node.start_mark.line + 1 if node is not None else None
        for depth, part in enumerate(loc):
            last = depth == len(loc) - 1
            node = _child(node, part, key_node=key and last)
            if node is None:
                break
            line = node.start_mark.line + 1
        return line

    def where(self, loc: Sequence[str | int], *, key: bool = False) -> str:
        """Return `file:line` for `loc` (see `line_of`), or just the file name without a line."""
        line = self.line_of(loc, key=key)
        return f"{self.name}:{line}" if line else self.name


def read_text(path: Path) -> str:
    """Read a settings file the user owns as UTF-8 text.

    Raises:
        ConfigError: The file cannot be read or is not UTF-8 (the message gives the line).
    """
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(
            f"cannot read {path}: {e.strerror}", f"check the file: ls -l {path}"
        ) from e
    except UnicodeDecodeError as e:
        line = e.object[: e.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})",
            f"save it as UTF-8; from Latin-1: iconv -f latin1 -t utf-8 {path} > {path}.utf8"
            f" && mv {path}.utf8 {path}",
        ) from e


def load_yaml(path: Path) -> YamlDocument:
    """Load a YAML file, turning syntax errors into a ConfigError with file and line.

    Args:
        path: The file to read.

    Returns:
        The document with its data and node tree.

    Raises:
        ConfigError: The file cannot be read, is not UTF-8, is not valid YAML, or holds a value
            `load_value` refuses.
    """
    return load_yaml_text(read_text(path), path=path)


def load_yaml_text(text: str, *, path: Path, label: str | None = None) -> YamlDocument:
    """Parse a YAML file's text read elsewhere (from a commit, say), as `load_yaml` does.

    Args:
        text: The file's content.
        path: Where the file is, or would be, in the checkout.
        label: What messages call it instead of `path` (`1a2b3c4d:dot_vars.yml`), if anything.

    Returns:
        The document with its data and node tree.

    Raises:
        ConfigError: The text is not valid YAML, or holds a value `load_value` refuses.
    """
    shown = label or str(path)
    try:
        root, data = _parse(text)
    except UnsupportedValueError as e:
        where = f"{shown}:{e.problem_mark.line + 1}" if e.problem_mark is not None else shown
        raise ConfigError(f"{where}: {e.problem}", e.hint) from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}" if mark is not None else shown
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(
            f"{where}: not valid YAML: {problem}", f"fix the YAML syntax at {where}"
        ) from e
    return YamlDocument(path=path, data=data, root=root, label=label)


def _child(node: yaml.Node | None, key: str | int, *, key_node: bool = False) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for name_node, value_node in node.value:
            if name_node.value == str(key):
                found: yaml.Node = name_node if key_node else value_node
                return found
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        child: yaml.Node = node.value[key]
        return child
    return None

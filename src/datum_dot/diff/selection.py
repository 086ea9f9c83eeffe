"""`dot diff -s`: the part of dbt's node selection syntax a diff needs, over two manifests.

Supported: names (with `*` wildcards), `tag:`, `path:`, `resource_type:`,
`config.materialized:`; the graph operators `+name`, `name+`, `N+name`, `name+N` and `@name`;
space-separated values are a union, comma-separated ones an intersection. The graph is the
union of both manifests', so a model one side removed can still be selected by name.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence

from datum_dot.diff.manifest import NodeInfo
from datum_dot.errors import UsageError

_ATOM = re.compile(r"^(?P<at>@)?(?:(?P<up>\d*)\+)?(?P<body>[^+]+?)(?:\+(?P<down>\d*))?$")
_METHODS = ("tag", "path", "resource_type", "config.materialized", "fqn")


def select_nodes(
    selectors: Sequence[str], nodes: Mapping[str, NodeInfo], exclude: Sequence[str] = ()
) -> frozenset[str]:
    """The unique ids a diff's `-s` values select among `nodes` (all of them when none given),
    less those its `--exclude` values select (as dbt applies `--exclude` after `--select`).

    Raises:
        UsageError: A value is not in the supported syntax, or the selection matches nothing.
    """
    words = [word for text in selectors for word in text.split()]
    dropped = [word for text in exclude for word in text.split()]
    children = _children(nodes.values())
    chosen = _union(words, nodes, children, "-s") if words else set(nodes)
    chosen -= _union(dropped, nodes, children, "--exclude")
    chosen &= set(nodes)  # a walk up the graph also reaches sources
    if not chosen:
        given = " ".join([*(["-s", *words] if words else []),
                          *(["--exclude", *dropped] if dropped else [])])  # fmt: skip
        raise UsageError(
            f"{given} selects no model, seed or snapshot of either side",
            "check the names (dot ls -s ... lists what a selector matches), or drop the option",
        )
    return frozenset(chosen)


def _union(words: Sequence[str], nodes: Mapping[str, NodeInfo],
           children: Mapping[str, set[str]], option: str) -> set[str]:  # fmt: skip
    chosen: set[str] = set()
    for word in words:
        parts = [_select_atom(atom, word, nodes, children, option) for atom in word.split(",")]
        chosen |= set.intersection(*parts)
    return chosen


def _select_atom(
    atom: str,
    word: str,
    nodes: Mapping[str, NodeInfo],
    children: Mapping[str, set[str]],
    option: str,
) -> set[str]:
    found = _ATOM.match(atom)
    if found is None:
        raise UsageError(
            f"{option} {word}: '{atom}' is not a selector dot diff understands",
            "use names, tag:, path:, resource_type:, config.materialized: and + or @",
        )
    base = _match(found["body"], nodes, option)
    result = set(base)
    if found["at"]:
        down = _walk(base, children, None)
        result |= down | _walk(down, _parents(nodes), None)
        return result
    if found["up"] is not None:
        result |= _walk(base, _parents(nodes), int(found["up"]) if found["up"] else None)
    if found["down"] is not None:
        result |= _walk(base, children, int(found["down"]) if found["down"] else None)
    return result


def _match(body: str, nodes: Mapping[str, NodeInfo], option: str) -> set[str]:
    method, colon, value = body.partition(":")
    if not colon:
        method, value = "fqn", body
    if method not in _METHODS:
        raise UsageError(
            f"{option} {body}: the method '{method}:' is not one dot diff supports",
            f"use one of {', '.join(m + ':' for m in _METHODS)}, or a name",
        )
    return {uid for uid, node in nodes.items() if _is_match(method, value, node)}


def _is_match(method: str, value: str, node: NodeInfo) -> bool:
    if method == "tag":
        return any(fnmatch.fnmatchcase(tag, value) for tag in node.tags)
    if method == "path":
        return (
            node.path == value
            or node.path.startswith(value.rstrip("/") + "/")
            or (fnmatch.fnmatchcase(node.path, value))
        )
    if method == "resource_type":
        return node.resource_type == value
    if method == "config.materialized":
        return node.materialized == value
    return fnmatch.fnmatchcase(node.name, value)


def _children(nodes: Iterable[NodeInfo]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for node in nodes:
        for parent in node.parents:
            found.setdefault(parent, set()).add(node.unique_id)
    return found


def _parents(nodes: Mapping[str, NodeInfo]) -> dict[str, set[str]]:
    return {uid: set(node.parents) for uid, node in nodes.items()}


def _walk(start: Iterable[str], edges: Mapping[str, set[str]], depth: int | None) -> set[str]:
    seen: set[str] = set()
    frontier = set(start)
    step = 0
    while frontier and (depth is None or step < depth):
        frontier = {n for f in frontier for n in edges.get(f, ())} - seen
        seen |= frontier
        step += 1
    return seen

"""How `dot diff` looks: a summary for people (models grouped by verdict, then the details of
the changed ones), and a Markdown pull-request comment (long lists collapsed)."""

from __future__ import annotations

import sys
from typing import Any

from datum_dot.diff.report import VERDICTS, DiffResult, ModelDiff

_TITLES = {
    "added": "added",
    "removed": "removed",
    "modified": "modified (code or config)",
    "data-changed": "data changed (same code)",
    "unchanged": "unchanged",
}
_COLLAPSE_OVER = 10  # a Markdown list longer than this is folded into <details>


def print_summary(result: DiffResult) -> None:
    """Print the diff for people on stdout."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)
    left, right = result.left, result.right
    console.print(
        f"[bold]dot diff[/] {escape(left.label)} ({_commit(left.commit)}) -> "
        f"{escape(right.label)} ({_commit(right.commit)}), {_count(len(result.models), 'node')}"
    )
    for verdict in VERDICTS:
        group = [m for m in result.models if m.verdict == verdict]
        if group:
            names = ", ".join(m.name for m in group)
            console.print(f"  [bold]{_TITLES[verdict]}[/] ({len(group)}): {escape(names)}")
    for model in result.models:
        lines = detail_lines(model)
        # unchanged nodes, and added and removed ones, say all in their group's line
        if model.verdict != "unchanged" and len(lines) > 1:
            console.print()
            for line in lines:
                console.print(escape(line))
    if result.failed_on:
        console.print(f"\n[bold red]--fail-on:[/] found {', '.join(result.failed_on)}")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")


def detail_lines(model: ModelDiff) -> list[str]:
    """A changed model's details, one line each (plain text)."""
    lines = [f"{model.name} ({model.resource_type}): {model.verdict}"]
    changes = model.changes
    if changes.checksum:
        lines.append("  code: changed (dbt checksum)")
    lines += [f"  {c.field}: {c.left} -> {c.right}" for c in changes.config]
    lines += [f"  test added: {t}" for t in changes.tests_added]
    lines += [f"  test removed: {t}" for t in changes.tests_removed]
    rel = model.relation
    if rel is not None:
        lines += [f"  column added: {n} {t}" for n, t in rel.columns_added]
        lines += [f"  column removed: {n} {t}" for n, t in rel.columns_removed]
        lines += [f"  column re-typed: {n} {a} -> {b}" for n, a, b in rel.columns_retyped]
        lines.append(f"  rows: {rel.rows_left:,} -> {rel.rows_right:,}")
    rows = model.rows
    if rows is not None:
        how = f"on key {', '.join(rows.key)} ({rows.key_source})" if rows.key else "whole rows"
        changed = f", {rows.changed:,} changed" if rows.mode == "key" else ""
        lines.append(
            f"  row diff {how}: {rows.only_left:,} only left, {rows.only_right:,} only right"
            f"{changed}"
        )
        lines += [
            f"    {col}: {_count(n, 'value')} changed" for col, n in rows.changed_by_column.items()
        ]
        for kind, samples in rows.samples.items():
            lines += [f"    e.g. {kind.replace('_', ' ')}: {_sample(s)}" for s in samples]
    lines += [f"  note: {note}" for note in model.notes]
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _sample(sample: dict[str, Any]) -> str:
    if "columns" in sample and "key" in sample:
        key = ", ".join(f"{k}={v!r}" for k, v in sample["key"].items())
        cols = ", ".join(
            f"{c}: {d['left']!r} -> {d['right']!r}" for c, d in sample["columns"].items()
        )
        return f"{key}: {cols}"
    return ", ".join(f"{k}={v!r}" for k, v in sample.items())


def _commit(commit: str | None) -> str:
    return commit[:8] if commit else "no commit"


def print_markdown(result: DiffResult) -> None:
    """Print the diff as a Markdown pull-request comment on stdout."""
    sys.stdout.write(markdown(result))


def markdown(result: DiffResult) -> str:
    """The diff as Markdown: a verdict table, then each changed model's details."""
    left, right = result.left, result.right
    out = [
        f"### dot diff `{left.label}` ({_commit(left.commit)}) → `{right.label}` "
        f"({_commit(right.commit)})",
        "",
        "| verdict | nodes |",
        "| --- | --- |",
    ]
    for verdict in VERDICTS:
        group = [m.name for m in result.models if m.verdict == verdict]
        if group:
            names = ", ".join(f"`{n}`" for n in group)
            if len(group) > _COLLAPSE_OVER:
                names = f"<details><summary>{len(group)} nodes</summary>{names}</details>"
            out.append(f"| {_TITLES[verdict]} | {names} |")
    detailed = [(m, detail_lines(m)) for m in result.models]
    detailed = [(m, lines) for m, lines in detailed if m.verdict != "unchanged" and len(lines) > 1]
    if detailed:
        out.append("")
        for model, lines in detailed:
            out += [f"<details><summary><code>{model.name}</code>: {model.verdict}</summary>", ""]
            out += ["```", *lines[1:], "```", "", "</details>"]
    if result.failed_on:
        out += ["", f"**--fail-on**: found {', '.join(result.failed_on)}"]
    return "\n".join(out) + "\n"

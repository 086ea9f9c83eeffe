"""What an export writes: named files of text, and what the user does with them next."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from datum_dot.scheduling.export.source import ExportSource

TIMEOUT_GRACE = 300
"""Seconds a scheduler's own deadline adds to the schedule's timeout: dot stops dbt itself (and
records the TIMEOUT) before the scheduler kills the process, with time left for start-up."""


@dataclass(frozen=True)
class ExportedFile:
    """One file of an export.

    Attributes:
        name: Its file name (no folder).
        text: Its content; the same schedule and options always give the same text.
    """

    name: str
    text: str


@dataclass(frozen=True)
class Rendering:
    """One schedule rendered for one scheduler.

    Attributes:
        files: The files to write.
        notes: Lines for the user: how to install them, what the scheduler cannot do.
    """

    files: tuple[ExportedFile, ...]
    notes: tuple[str, ...] = ()


class _Dumper(yaml.SafeDumper):
    """Writes a repeated mapping out again: anchors and aliases are hard to read and to diff."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # A script of several lines reads as written, in a `|` block, not as one escaped line.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def yaml_text(header: list[str], document: object) -> str:
    """A YAML document with `# ` comment lines on top, keys in the order given."""
    body = yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        width=10_000,
        allow_unicode=False,
    )
    return "".join(f"# {line}".rstrip() + "\n" for line in header) + body


def describe(source: ExportSource) -> str:
    """`schedule <name> of project <id> (dbt <command> <spec> [pinned <sha>])`, for headers."""
    s = source.located.schedule
    pin = f", pinned {s.pinned_commit}" if s.pinned_commit else ""
    words = " ".join(["dbt", *s.command, s.spec or "(default environment)", *s.dbt_args])
    return f"schedule {s.name} of project {source.located.project_id} ({words}{pin})"

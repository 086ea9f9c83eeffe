"""Which isolated builds `dot clean` selects: by hash, by age, by count, or all."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from datum_dot.builds.survey import Build
from datum_dot.errors import UsageError


@dataclass(frozen=True)
class Selection:
    """Which builds to remove.

    Attributes:
        hashes: Builds named by short hash, a longer prefix of the commit, or the full hash.
        older_than: Builds last used longer ago than this.
        keep: Keep this many most recently used builds whatever their age.
        everything: Every build (`--all`).
    """

    hashes: tuple[str, ...] = ()
    older_than: timedelta | None = None
    keep: int | None = None
    everything: bool = False


def select_builds(builds: list[Build], selection: Selection, *, now: datetime) -> list[Build]:
    """The builds a selection names, most recently used first (`builds` is in that order).

    Raises:
        UsageError: Nothing is selected, the options contradict each other, `keep` is negative,
            or a hash is malformed, unknown or ambiguous.
    """
    _check_selection(selection)
    if selection.hashes:
        # one entry per build, in the order named (a build is told apart by its folder's name:
        # its record of the last run holds dicts, so the build itself cannot be hashed)
        found = [_find(builds, text) for text in selection.hashes]
        named = {build.short_hash: build for build in found}
        return list(named.values())
    if selection.everything:
        return list(builds)
    keep = selection.keep or 0
    chosen = builds[keep:]
    if selection.older_than is not None:
        cutoff = now - selection.older_than
        chosen = [b for b in chosen if b.last_used < cutoff]
    return chosen


def _check_selection(selection: Selection) -> None:
    example = "for example: dot clean --older-than 14d --keep 5 (a dry run; add --yes to remove)"
    limits = selection.keep is not None or selection.older_than is not None
    if not (selection.hashes or selection.everything or limits):
        raise UsageError(
            "clean needs to know what to remove: a build's hash, --older-than AGE, --keep N "
            "or --all",
            example,
        )
    if selection.hashes and (selection.everything or limits):
        raise UsageError(
            "a build's hash cannot be combined with --all, --keep or --older-than",
            "name builds (dot clean 1a2b3c4d --yes) or give limits, not both",
        )
    if selection.everything and limits:
        raise UsageError("--all cannot be combined with --keep or --older-than", example)
    if selection.keep is not None and selection.keep < 0:
        raise UsageError(f"--keep must be 0 or more, got {selection.keep}", example)


_HASH_TEXT = re.compile(r"[0-9a-f]{4,40}")


def _find(builds: list[Build], text: str) -> Build:
    wanted = text.strip().lower()
    if not _HASH_TEXT.fullmatch(wanted):
        raise UsageError(
            f"'{text}' is not a commit hash (4 to 40 hex digits)",
            "`dot builds` lists the builds with their hashes; for example: dot clean 1a2b3c4d",
        )
    exact = [b for b in builds if b.short_hash == wanted]
    hits = exact or [b for b in builds if _matches(b, wanted)]
    if not hits:
        raise UsageError(
            f"unknown build '{text}': no isolated build of that commit in .dot/build",
            "`dot builds` lists the builds with their hashes",
        )
    if len(hits) > 1:
        names = ", ".join(b.short_hash for b in hits)
        raise UsageError(
            f"build hash '{text}' is ambiguous: it matches {names}",
            "give more of the hash; `dot builds` lists them",
        )
    return hits[0]


def _matches(build: Build, wanted: str) -> bool:
    if build.commit is not None:
        return build.commit.startswith(wanted)
    return build.short_hash.startswith(wanted) or wanted.startswith(build.short_hash)

"""`Sha`, a full commit hash, and the checks that make one."""

from __future__ import annotations

import re
from typing import NewType

from datum_dot.errors import GitError

Sha = NewType("Sha", str)
"""A full commit hash: 40 lowercase hex digits. Only this module makes one."""


_SHA_RE = re.compile(r"[0-9a-f]{40}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


def short_hash(sha: Sha, length: int = 8) -> str:
    """Return a fixed-length prefix of a commit hash.

    Unlike `git rev-parse --short`, the length never grows with the repository, so schema names
    and build folders stay stable.

    Args:
        sha: A full commit hash.
        length: How many hex digits to keep, 4 to 40.

    Returns:
        The first `length` characters of `sha`.

    Raises:
        ValueError: `length` is out of range or `sha` is not a full hash.
    """
    if not 4 <= length <= 40:
        raise ValueError(f"short hash length must be between 4 and 40, got {length}")
    if not _SHA_RE.fullmatch(sha):
        raise ValueError(f"not a full commit hash: {sha!r}")
    return sha[:length]


def as_sha(text: str) -> Sha:
    """Type what git printed as a `Sha`.

    Raises:
        GitError: It is a SHA-256 name, or no commit hash at all.
    """
    if _SHA_RE.fullmatch(text):
        return Sha(text)
    if _SHA256_RE.fullmatch(text):
        raise GitError(
            f"commit {text} uses SHA-256 object names, which dot does not support yet",
            hint="use a repository with SHA-1 object names",
        )
    raise GitError(f"git returned {text!r} where a commit hash was expected")


def validate_sha(sha: str) -> Sha:
    """Check that `sha` is a full commit hash before it reaches git as a bare argument.

    Returns:
        `sha`, typed as a `Sha`.

    Raises:
        ValueError: `sha` is not 40 lowercase hex digits (so it could pose as a flag or a ref).
    """
    if not _SHA_RE.fullmatch(sha):
        raise ValueError(f"not a full commit hash: {sha!r}")
    return Sha(sha)

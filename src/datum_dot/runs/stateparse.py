"""The `--state-from` parse: cached by commit and environment, and run without credentials.

A parse renders the profile (dbt checks its target), so a profile whose credentials come from
`env_var()` calls fails to parse where those variables are unset, though a parse never
connects. The parse alone gets a placeholder for each such variable the isolated profile
names without a default (and for any variable dbt then says is missing); the run never does.

The cache is the parse's own target folder, `.dot/build/<hash>/env/<env>/state/`, with a marker
holding the digest of the parse's argv: the same commit, environment and settings parse once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

MARKER = "dot-state.json"
MANIFEST = "manifest.json"
PLACEHOLDER = "dot-parse-placeholder"
MAX_PLACEHOLDER_ROUNDS = 8
"""Parses retried, each with one more variable dbt said was missing, before giving up."""
_ENV_VAR_CALL = re.compile(
    r"""env_var\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*\)\s*(?:\|\s*([a-z_]+))?"""
)
# A value each filter can convert, so `{{ env_var('PORT') | as_number }}` renders too.
_TYPED = {"as_number": "0", "int": "0", "float": "0", "as_bool": "false"}
_MISSING = re.compile(r"""Env var required but not provided:\s*'([A-Za-z_][A-Za-z0-9_]*)'""")


def parse_key(argv: Sequence[str]) -> str:
    """The digest a cached parse must carry: of the parse's argv (commit folder, target, vars)."""
    return hashlib.sha256(json.dumps(list(argv)).encode()).hexdigest()


def is_cached(state_dir: Path, key: str) -> bool:
    """Whether `state_dir` holds a manifest parsed with this key."""
    try:
        marker = json.loads((state_dir / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict) and marker.get("key") == key and (state_dir / MANIFEST).is_file()
    )


def mark_cached(state_dir: Path, key: str, commit: str, env: str | None) -> None:
    """Record that `state_dir` holds the parse made with `key` (after it succeeded)."""
    marker = {
        "key": key,
        "commit": commit,
        "environment": env,
        "parsed_at": datetime.now(UTC).isoformat(),
    }
    tmp = state_dir / f".{MARKER}.tmp"
    tmp.write_text(json.dumps(marker, indent=2) + "\n")
    tmp.replace(state_dir / MARKER)


def placeholder_env(profile_text: str, environ: Mapping[str, str]) -> dict[str, str]:
    """A placeholder for each `env_var('NAME')` (no default) in a profile that is not set."""
    found: dict[str, str] = {}
    for name, filter_name in _ENV_VAR_CALL.findall(profile_text):
        if name not in environ:
            found.setdefault(name, _TYPED.get(filter_name, PLACEHOLDER))
    return found


def missing_env_var(error: str | None) -> str | None:
    """The variable dbt says is required but not provided, in a failed parse's error."""
    found = _MISSING.search(error or "")
    return found[1] if found else None

"""The webhook's bearer token: `$DATUM_HOME/webhook.token`, mode 0600.

The token is created once (`dot init`) and read by the webhook server; it is never logged or
printed by the tool. Rotating it replaces the file atomically.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from datum_dot.home.locks import file_lock
from datum_dot.home.privatefiles import ensure_datum_home, unwritable_home, write_private

TOKEN_FILE = "webhook.token"  # noqa: S105 - a file name, not a secret
TOKEN_BYTES = 32
LOCK_FILE = ".webhook.token.lock"
LOCK_TIMEOUT = 30.0


def token_path(home: Path) -> Path:
    """`$DATUM_HOME/webhook.token`."""
    return home / TOKEN_FILE


def read_webhook_token(home: Path) -> str | None:
    """The token, or None when there is no (non-empty, readable) token file."""
    try:
        token = token_path(home).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None


def ensure_webhook_token(home: Path) -> str:
    """The token, created first if there is none.

    Raises:
        DatumHomeError: `$DATUM_HOME` cannot be written.
        LockTimeoutError: Another process held the token lock too long.
    """
    existing = read_webhook_token(home)
    if existing is not None:
        return existing
    ensure_datum_home(home)
    # Two `dot init` at once must end with one token, not each with its own.
    with file_lock(home / LOCK_FILE, timeout=LOCK_TIMEOUT):
        existing = read_webhook_token(home)
        return existing if existing is not None else rotate_webhook_token(home)


def rotate_webhook_token(home: Path) -> str:
    """Replace the token with a new random one and return it.

    Raises:
        DatumHomeError: `$DATUM_HOME` cannot be written.
    """
    ensure_datum_home(home)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    try:
        write_private(token_path(home), f"{token}\n".encode())
    except OSError as e:
        raise unwritable_home(home, e) from e
    return token

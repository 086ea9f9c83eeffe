"""Who may call the webhook: a bearer token, or an HMAC signature made with it.

- `Authorization: Bearer <token>`: the token in `$DATUM_HOME/webhook.token`.
- `X-Datum-Signature: t=<unix seconds>,v1=<hex>`, where `v1` is HMAC-SHA256, keyed with the
  token, of `"<t>.<raw body>"`: for callers that cannot keep the token secret in transit. A
  signature more than five minutes from now, or one seen before, is refused.
- `X-Hub-Signature-256: sha256=<hex>`: GitHub's HMAC-SHA256 of the raw body, keyed with the
  secret GitHub was given (only on the GitHub route).

Every comparison of a secret is `hmac.compare_digest`; nothing here logs or returns a token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from datum_dot.tokens import read_webhook_token, token_path

SIGNATURE_HEADER = "x-datum-signature"
GITHUB_SIGNATURE_HEADER = "x-hub-signature-256"
TOLERANCE_SECONDS = 300
_HEX = re.compile(r"[0-9a-f]{64}")


class TokenSource:
    """The current webhook token, re-read when its file changes (a rotation needs no restart).

    Args:
        home: `$DATUM_HOME`.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._token: str | None = None

    def current(self) -> str | None:
        """The token, or None when there is no token file."""
        try:
            st = token_path(self.home).stat()
            stamp: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = None
        with self._lock:
            if stamp != self._stamp or stamp is None:
                self._token = read_webhook_token(self.home) if stamp is not None else None
                self._stamp = stamp
            return self._token


def bearer_matches(header: str | None, token: str) -> bool:
    """Whether an `Authorization` header carries `token` as a bearer token."""
    if not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode(), token.encode())


@dataclass(frozen=True)
class Signature:
    """A parsed `X-Datum-Signature` header.

    Attributes:
        timestamp: `t`, Unix seconds.
        digests: Every `v1` value (several are allowed while a token is being rotated).
    """

    timestamp: int
    digests: tuple[str, ...]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `v1` digest of a request: HMAC-SHA256 of `"<timestamp>.<body>"`, hex."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """A whole `X-Datum-Signature` value, as a client sends it."""
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def parse_signature(header: str | None) -> Signature | None:
    """Read `t=<unix>,v1=<hex>[,v1=<hex>]`; None if the header is missing or malformed."""
    if not header:
        return None
    timestamp: int | None = None
    digests: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1" and _HEX.fullmatch(value.lower()):
            digests.append(value.lower())
    if timestamp is None or not digests:
        return None
    return Signature(timestamp, tuple(digests))


def verify_signature(signature: Signature, body: bytes, secret: str, *, now: float) -> str | None:
    """The digest of `signature` that signs `body` with `secret`, if it is fresh.

    Returns:
        The matching digest (to remember against replays); None if none matches, or if the
        timestamp is more than `TOLERANCE_SECONDS` from `now`.
    """
    if abs(now - signature.timestamp) > TOLERANCE_SECONDS:
        return None
    expected = sign(secret, signature.timestamp, body)
    for digest in signature.digests:
        if hmac.compare_digest(digest.encode(), expected.encode()):
            return digest
    return None


def github_signature_matches(header: str | None, body: bytes, secret: str) -> bool:
    """Whether `X-Hub-Signature-256` is GitHub's HMAC-SHA256 of `body` with `secret`."""
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header.strip().lower().encode(), expected.encode())

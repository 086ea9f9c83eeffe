"""Who may call the webhook: a bearer token, or an HMAC signature made with it.

- `Authorization: Bearer <token>`: the token in `$DATUM_HOME/webhook.token`.
- `X-Datum-Signature: t=<unix seconds>,v1=<hex>`, where `v1` is HMAC-SHA256, keyed with the
  token, of `"<t>.<METHOD>.<path?query>.<raw body>"` (the path and query exactly as in the
  request line): for callers that cannot keep the token secret in transit. A signature more than
  five minutes from now, or one seen before, is refused; so is the older form that signed
  `"<t>.<raw body>"` only, which a request to another route could reuse.
- `X-Hub-Signature-256: sha256=<hex>`: GitHub's HMAC-SHA256 of the raw body, keyed with the
  secret GitHub was given (only on the GitHub route).

Whether a server may run without a token is decided once, when it starts (`TokenSource`): a
server that started with a token, or saw one since, answers 503 while the token file is missing,
empty or unreadable, never unauthenticated.

Every comparison of a secret is `hmac.compare_digest`; nothing here logs or returns a token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from datum_dot.errors import DotError, ExitCode
from datum_dot.home.tokens import token_path

SIGNATURE_HEADER = "x-datum-signature"
GITHUB_SIGNATURE_HEADER = "x-hub-signature-256"
TOLERANCE_SECONDS = 300
SIGNED_FORM = '"<t>.<METHOD>.<path?query>.<body>"'
MISSING = "missing"
_HEX = re.compile(r"[0-9a-f]{64}")
log = logging.getLogger("datum_dot.webhook")


class TokenUnavailableError(DotError):
    """The server requires a token and its file is missing, empty or unreadable (HTTP 503)."""

    exit_code = ExitCode.BAD_INPUT


class TokenSource:
    """The current webhook token, re-read when its file changes (a rotation needs no restart).

    Whether the server runs without a token is decided here, once: only when `allow_open` (the
    server listens on loopback) and there is no token file when the source is made. As soon as a
    token file appears, a valid token is required for good: from then on a missing, empty or
    unreadable file makes `current` raise, it never opens the server again.

    Args:
        home: `$DATUM_HOME`.
        allow_open: Whether the server may run without a token (it listens on loopback only).
    """

    def __init__(self, home: Path, *, allow_open: bool = False) -> None:
        self.home = home
        self._lock = threading.Lock()
        self._stamp = _stamp(token_path(home))
        self._token, self._problem = _read(token_path(home))
        self._open = allow_open and self._problem == MISSING

    @property
    def is_open(self) -> bool:
        """Whether requests need no token (a loopback server that has never seen one)."""
        return self._open

    def current(self) -> str | None:
        """The token; None only while an open server still has no token file.

        Raises:
            TokenUnavailableError: A token is required and its file is missing, empty or
                unreadable.
        """
        path = token_path(self.home)
        stamp = _stamp(path)
        with self._lock:
            if stamp is None or stamp != self._stamp:
                self._stamp = stamp
                token, problem = _read(path)
                self._token = token
                self._open = self._open and problem == MISSING
                self._note(problem)
            if self._token is not None or self._open:
                return self._token
            raise TokenUnavailableError(
                f"the webhook token file {path} is {self._problem}: the server requires a "
                "token and answers no request until the file holds one",
                "create a new token with `dot webhook token --rotate`",
            )

    def _note(self, problem: str | None) -> None:
        """Log when a required token becomes unavailable, or available again."""
        if problem == self._problem:
            return
        self._problem = problem
        if self._open:
            return
        path = token_path(self.home)
        if problem is None:
            log.info("the webhook token file %s holds a token: requests must authenticate", path)
        else:
            log.error(
                "the webhook token file %s is %s: answering 503 to every request until "
                "`dot webhook token --rotate` writes a new one",
                path,
                problem,
            )


def _stamp(path: Path) -> tuple[int, int, int, int] | None:
    """What changes when the file is replaced, written or its mode changed; None if missing."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _read(path: Path) -> tuple[str | None, str | None]:
    """`(token, None)`, or `(None, what is wrong with the file)`."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, MISSING
    except OSError as e:
        return None, f"unreadable ({e.strerror})"
    try:
        token = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None, "unreadable (not UTF-8 text)"
    return (token, None) if token else (None, "empty")


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


def sign(secret: str, timestamp: int, method: str, target: str | bytes, body: bytes) -> str:
    """The `v1` digest of a request, hex.

    Args:
        secret: The webhook token.
        timestamp: `t`, Unix seconds.
        method: The HTTP method (`POST`).
        target: The path and query as in the request line (`/v1/runs?status=failed`).
        body: The raw body.

    Returns:
        HMAC-SHA256, keyed with `secret`, of `"<timestamp>.<METHOD>.<target>.<body>"`.
    """
    path = target.encode() if isinstance(target, str) else target
    message = b".".join((str(timestamp).encode(), method.upper().encode(), path, body))
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(
    secret: str, timestamp: int, method: str, target: str | bytes, body: bytes
) -> str:
    """A whole `X-Datum-Signature` value, as a client sends it (arguments as for `sign`)."""
    return f"t={timestamp},v1={sign(secret, timestamp, method, target, body)}"


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


def verify_signature(
    signature: Signature, secret: str, *, method: str, target: bytes, body: bytes, now: float
) -> str | None:
    """The digest of `signature` that signs this request with `secret`, if it is fresh.

    Returns:
        The matching digest (to remember against replays); None if none matches, or if the
        timestamp is more than `TOLERANCE_SECONDS` from `now`.
    """
    if abs(now - signature.timestamp) > TOLERANCE_SECONDS:
        return None
    expected = sign(secret, signature.timestamp, method, target, body).encode()
    for digest in signature.digests:
        if hmac.compare_digest(digest.encode(), expected):
            return digest
    return None


def is_body_only_signature(signature: Signature, secret: str, body: bytes) -> bool:
    """Whether `signature` is the refused older form, HMAC-SHA256 of `"<t>.<body>"` only.

    Only used to say why a request is refused: such a signature never authenticates one.
    """
    message = f"{signature.timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest().encode()
    return any(hmac.compare_digest(digest.encode(), expected) for digest in signature.digests)


def github_signature_matches(header: str | None, body: bytes, secret: str) -> bool:
    """Whether `X-Hub-Signature-256` is GitHub's HMAC-SHA256 of `body` with `secret`."""
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header.strip().lower().encode(), expected.encode())

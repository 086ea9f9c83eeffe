"""The ASGI middleware in front of every route: body size limit, then authentication.

It reads the body itself (refusing one over the limit with 413 before reading further), checks the
credentials against the raw bytes (a signature signs exactly those), and hands the same bytes on
to the application, so routes parse bodies as usual. Only `/healthz` is public; the GitHub route
passes through unauthenticated, because it checks GitHub's own signature itself (GitHub cannot
send a bearer token), and a bearer token is accepted there as well.

A server without a token file (allowed on loopback only) accepts requests unauthenticated, but
only those addressed to a loopback name, so that a web page cannot reach it by DNS rebinding.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import anyio
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from datum_dot.webhook.auth import (
    SIGNATURE_HEADER,
    TOLERANCE_SECONDS,
    TokenSource,
    bearer_matches,
    parse_signature,
    verify_signature,
)

PUBLIC_PATHS = frozenset({"/healthz"})
SELF_VERIFIED = re.compile(r"/v1/projects/[^/]+/github")
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
Remember = Callable[[str, float, float], bool]
"""`(digest, expires_at, now) -> False if seen before`: the replay check of signatures."""


class Guard:
    """Size limit and authentication for every HTTP request, before any route runs.

    Args:
        app: The application behind it.
        tokens: Where the current token comes from.
        max_body: Bytes a request body may have.
        remember: Records a signature; False if it was seen before.
        clock: Unix seconds now (tests inject one).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        tokens: TokenSource,
        max_body: int,
        remember: Remember,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.max_body = max_body
        self.remember = remember
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request; answer 413 or 401 here, or pass it on with its body."""
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await self._too_large(scope, receive, send)
            return
        body = await self._read(receive)
        if body is None:
            await self._too_large(scope, receive, send)
            return
        how = await self._authenticate(headers, body)
        if how is None and not SELF_VERIFIED.fullmatch(scope["path"]):
            response = JSONResponse(
                {"detail": self._refusal()},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["auth"] = how
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the route will see an empty body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _authenticate(self, headers: Headers, body: bytes) -> str | None:
        token = self.tokens.current()
        if token is None:
            return "open" if _host_name(headers.get("host", "")) in LOOPBACK_NAMES else None
        if bearer_matches(headers.get("authorization"), token):
            return "bearer"
        signature = parse_signature(headers.get(SIGNATURE_HEADER))
        if signature is None:
            return None
        now = self.clock()
        digest = verify_signature(signature, body, token, now=now)
        if digest is None:
            return None
        expires = signature.timestamp + TOLERANCE_SECONDS + 1.0
        fresh = await anyio.to_thread.run_sync(self.remember, digest, expires, now)
        return "signature" if fresh else None

    def _refusal(self) -> str:
        if self.tokens.current() is None:
            return "this server has no token and answers only requests sent to localhost"
        return (
            "authentication required: send `Authorization: Bearer <token>` (`dot webhook token` "
            "shows it) or a fresh X-Datum-Signature"
        )

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body over {self.max_body} bytes"}, status_code=413
        )
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _host_name(value: str) -> str:
    """The name in a Host header, without the port: `[::1]:8080` -> `[::1]`."""
    if value.startswith("["):
        return value.split("]", 1)[0] + "]"
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value

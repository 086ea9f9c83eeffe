"""The ASGI middleware in front of every route: body size limit, then authentication.

It reads the body itself (refusing one over the limit with 413 before reading further), checks the
credentials against the raw bytes (a signature signs exactly those), and hands the same bytes on
to the application, so routes parse bodies as usual. Only `/healthz` is public; the GitHub route
passes through unauthenticated, because it checks GitHub's own signature itself (GitHub cannot
send a bearer token), and a bearer token is accepted there as well.

A server that started without a token file (allowed on loopback only, `TokenSource`) accepts
requests unauthenticated, but only from a loopback peer (the connection's address, as uvicorn
reports it) and addressed to a loopback name, so that a web page cannot reach it by DNS
rebinding. A server that requires a token answers 503 while its file is missing, empty or
unreadable.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable

import anyio
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from datum_dot.webhook.auth import (
    SIGNATURE_HEADER,
    SIGNED_FORM,
    TOLERANCE_SECONDS,
    TokenSource,
    TokenUnavailableError,
    bearer_matches,
    is_body_only_signature,
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
        """Check the request; answer 413, 503 or 401 here, or pass it on with its body."""
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
        # The GitHub route checks GitHub's own signature when nothing else authenticated it.
        self_verified = SELF_VERIFIED.fullmatch(scope["path"]) is not None
        try:
            token = self.tokens.current()
        except TokenUnavailableError as e:
            if not self_verified:
                await _answer(scope, receive, send, 503, {"detail": e.message, "hint": e.hint})
                return
            token, how = None, None
        else:
            how = await self._authenticate(scope, headers, body, token)
        if how is None and not self_verified:
            detail = self._refusal(headers, body, token)
            await _answer(
                scope, receive, send, 401, {"detail": detail}, {"WWW-Authenticate": "Bearer"}
            )
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

    async def _authenticate(
        self, scope: Scope, headers: Headers, body: bytes, token: str | None
    ) -> str | None:
        if token is None:
            return "open" if _is_local(scope, headers) else None
        if bearer_matches(headers.get("authorization"), token):
            return "bearer"
        signature = parse_signature(headers.get(SIGNATURE_HEADER))
        if signature is None:
            return None
        now = self.clock()
        digest = verify_signature(
            signature, token, method=scope["method"], target=_target(scope), body=body, now=now
        )
        if digest is None:
            return None
        expires = signature.timestamp + TOLERANCE_SECONDS + 1.0
        fresh = await anyio.to_thread.run_sync(self.remember, digest, expires, now)
        return "signature" if fresh else None

    def _refusal(self, headers: Headers, body: bytes, token: str | None) -> str:
        if token is None:
            return (
                "this server has no token and answers only requests from this machine sent to "
                "localhost"
            )
        signature = parse_signature(headers.get(SIGNATURE_HEADER))
        if signature is not None and is_body_only_signature(signature, token, body):
            return (
                f"X-Datum-Signature must cover the method and path: sign {SIGNED_FORM}; the "
                'form that signs "<t>.<body>" only is refused'
            )
        return (
            "authentication required: send `Authorization: Bearer <token>` (`dot webhook token` "
            f"shows it) or a fresh X-Datum-Signature that signs {SIGNED_FORM}"
        )

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _answer(
            scope, receive, send, 413, {"detail": f"request body over {self.max_body} bytes"}
        )


async def _answer(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    content: dict[str, str | None],
    headers: dict[str, str] | None = None,
) -> None:
    await JSONResponse(content, status_code=status, headers=headers)(scope, receive, send)


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


def _target(scope: Scope) -> bytes:
    """The path and query as the request line has them: what a signature signs."""
    path: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    return path + b"?" + query if query else path


def _is_local(scope: Scope, headers: Headers) -> bool:
    """Whether the peer is a loopback address and the Host header a loopback name."""
    if _host_name(headers.get("host", "")) not in LOOPBACK_NAMES:
        return False
    client = scope.get("client")
    if not client:
        return False
    try:
        peer = ipaddress.ip_address(str(client[0]))
    except ValueError:
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        return peer.ipv4_mapped.is_loopback
    return peer.is_loopback

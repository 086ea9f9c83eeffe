"""The FastAPI application: the guard in front of every route, and errors as HTTP statuses.

The routes are `routes.py`. Errors are `{"detail": ..., "hint": ...}`: 401 bad credentials (no
detail of the token), 404 unknown project or run, 409 an idempotency key reused for another
request, 413 body too large, 422 bad input (FastAPI's own detail for bodies that do not
validate), 503 queue full (with Retry-After).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from datum_dot import __version__
from datum_dot.errors import BadInputError, DotError
from datum_dot.webhook.context import DEFAULT_MAX_BODY, AppContext
from datum_dot.webhook.errors import IdempotencyConflictError, NotFoundError, QueueFullError
from datum_dot.webhook.guard import Guard
from datum_dot.webhook.routes import router

__all__ = ["DEFAULT_MAX_BODY", "AppContext", "create_app"]


def create_app(ctx: AppContext) -> FastAPI:
    """The application, with the guard (size limit, authentication) in front of every route."""
    app = FastAPI(
        title="datum-dot webhook",
        version=__version__,
        description="Trigger dbt runs of registered projects, and follow them.",
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(
        Guard,
        tokens=ctx.tokens,
        max_body=ctx.max_body,
        remember=lambda digest, expires, now: ctx.queue.remember_signature(
            digest, expires_at=expires, now=now
        ),
        clock=ctx.clock,
    )
    app.add_exception_handler(DotError, _dot_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.state.ctx = ctx
    app.include_router(router)

    @app.get("/healthz", tags=["server"])
    def healthz() -> dict[str, str | bool]:
        """Whether the server is up, and warm (no authentication)."""
        return {"status": "ok", "warm": ctx.warm()}

    return app


def _status_of(error: DotError) -> int:
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, IdempotencyConflictError):
        return 409
    if isinstance(error, BadInputError):
        return 422
    return 503


async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
    # FastAPI answers 400 for a body it cannot even decode (not UTF-8): bad JSON all the same.
    del request
    if error.status_code == 400:
        return JSONResponse({"detail": "the body is not valid JSON", "hint": None}, status_code=422)
    return JSONResponse(
        {"detail": error.detail}, status_code=error.status_code, headers=error.headers
    )


async def _dot_error(request: Request, error: DotError) -> JSONResponse:
    del request
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, QueueFullError) else None
    return JSONResponse(
        {"detail": error.message, "hint": error.hint or None},
        status_code=_status_of(error),
        headers=headers,
    )

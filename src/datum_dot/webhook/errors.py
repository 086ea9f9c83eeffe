"""The webhook's errors; `app.py` maps each to an HTTP status."""

from __future__ import annotations

from datum_dot.errors import BadInputError, DotError, ExitCode


class NotFoundError(BadInputError):
    """The URL names something that does not exist (HTTP 404)."""


class UnknownProjectError(NotFoundError):
    """The URL names a project id that `dot init` never registered."""


class UnknownRunError(NotFoundError):
    """The URL names a run that neither the history nor the queue has."""


class IdempotencyConflictError(BadInputError):
    """An idempotency key was used before for a different request (HTTP 409)."""


class QueueFullError(DotError):
    """The queue holds as many unfinished requests as it may (HTTP 503 with Retry-After).

    Attributes:
        retry_after: Seconds the client should wait before trying again.
    """

    exit_code = ExitCode.RUNTIME_FAILURE

    def __init__(self, message: str, hint: str = "", *, retry_after: int = 30) -> None:
        super().__init__(message, hint)
        self.retry_after = retry_after


class QueueError(DotError):
    """The queue file cannot be used (corrupted, another program's, locked too long)."""

    exit_code = ExitCode.RUNTIME_FAILURE

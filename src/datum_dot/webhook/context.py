"""What every route works with (`AppContext`), handed to the routes as a FastAPI dependency."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from datum_dot.history import RunStore
from datum_dot.webhook.auth import TokenSource
from datum_dot.webhook.committer import GroupCommitter
from datum_dot.webhook.intake import Intake
from datum_dot.webhook.queues import Queue

DEFAULT_MAX_BODY = 64 * 1024


@dataclass
class AppContext:
    """What the routes work with.

    Attributes:
        home: `$DATUM_HOME`.
        queue: The durable queue (SQLite under `home`, or PostgreSQL: `queues`).
        intake: Accept-time checks.
        store: The run history.
        tokens: The current webhook token.
        max_body: Bytes a request body may have.
        stopping: Set when the server shuts down (ends streamed logs).
        warm: Whether the workers have imported dbt and take jobs.
        committer: Commits accepted requests in groups (the server's); None commits each alone.
        environ: Where the GitHub secret's variable is read.
        clock: Unix seconds now.
    """

    home: Path
    queue: Queue
    intake: Intake
    store: RunStore
    tokens: TokenSource
    max_body: int = DEFAULT_MAX_BODY
    stopping: threading.Event = field(default_factory=threading.Event)
    warm: Callable[[], bool] = lambda: False
    committer: GroupCommitter | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    clock: Callable[[], float] = time.time


async def app_context(request: Request) -> AppContext:
    """The context `create_app` was given: a dependency of every route (in the event loop)."""
    ctx: AppContext = request.app.state.ctx
    return ctx


Context = Annotated[AppContext, Depends(app_context)]

"""The request and response bodies of the webhook API, as its OpenAPI description shows them.

Bodies are strict (a number is not a string, unknown fields are refused): a client's typo is a
422 that names the field, not a run with a default. Patterns in the schema document the grammar
of `spec` and `command`; the checks in `intake.py` say more precisely what is wrong.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path as UrlPath
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from datum_dot.webhook.intake import COMMAND_PATTERN, MAX_TIMEOUT_SECONDS, SPEC_PATTERN

KEY_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
ProjectId = Annotated[str, UrlPath(max_length=100, description="a project id from `dot init`")]
Seconds = Annotated[float, Field(gt=0, le=MAX_TIMEOUT_SECONDS, allow_inf_nan=False)]
Arg = Annotated[str, Field(max_length=4096)]


class RunBody(BaseModel):
    """What to run (`POST /v1/projects/{project}/runs`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    spec: str = Field(
        max_length=256,
        description="[env][@ref]",
        examples=["prod@v1.2"],
        json_schema_extra={"pattern": SPEC_PATTERN},
    )
    command: str = Field(
        default="build",
        max_length=256,
        examples=["build", "docs generate"],
        json_schema_extra={"pattern": COMMAND_PATTERN},
    )
    args: list[Arg] = Field(default_factory=list, max_length=256, examples=[["-s", "@orders"]])
    vars: dict[str, JsonValue] = Field(default_factory=dict)
    timeout: Seconds | None = None
    idempotency_key: str | None = Field(default=None, pattern=KEY_PATTERN)
    defer: str | None = Field(
        default=None,
        max_length=256,
        description="`--defer`: env (the live environment) or env@ref (an isolated build)",
        examples=["prod"],
        json_schema_extra={"pattern": SPEC_PATTERN},
    )
    state_source: Literal["history", "cloud"] = Field(
        default="history", description="where a live `defer` reads its state"
    )
    state_from: str | None = Field(
        default=None,
        max_length=256,
        description="`--state-from`: env@ref, parsed (not built) and compared against",
        examples=["prod@main"],
        json_schema_extra={"pattern": SPEC_PATTERN},
    )
    max_state_age: Seconds | None = None


class TriggerBody(BaseModel):
    """The datum CLI's payload (`POST /trigger/{project_id}/{run_id}`); every field optional."""

    model_config = ConfigDict(extra="forbid", strict=True)

    spec: str = Field(
        default="",
        max_length=256,
        description="[env][@ref]; default: default env",
        json_schema_extra={"pattern": SPEC_PATTERN},
    )
    target: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
    command: str = Field(
        default="build", max_length=256, json_schema_extra={"pattern": COMMAND_PATTERN}
    )
    args: list[Arg] = Field(default_factory=list, max_length=256)
    vars: dict[str, JsonValue] = Field(default_factory=dict)
    timeout: Seconds | None = None


class Accepted(BaseModel):
    """A queued request (or, for a repeated idempotency key, the run it made)."""

    run_id: str
    status: str
    status_url: str
    log_url: str
    output_url: str
    output_dir: str
    project: str
    spec: str
    env: str | None
    commit: str | None
    idempotency_key: str | None
    replayed: bool


class Problem(BaseModel):
    """An error: what is wrong, and what to do (FastAPI's own 422s list each problem)."""

    detail: str | list[dict[str, Any]]
    hint: str | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "missing or wrong credentials"},
    413: {"model": Problem, "description": "request body too large"},
    422: {"model": Problem, "description": "bad input"},
}
ACCEPT_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "unknown project"},
    409: {"model": Problem, "description": "idempotency key used for another request"},
    422: {"model": Problem, "description": "bad input: body, command, spec, env, vars or ref"},
    503: {"model": Problem, "description": "queue full; see Retry-After"},
}

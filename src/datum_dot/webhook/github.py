"""GitHub push events: which environment a pushed branch builds, and at which commit.

A push to a branch named in `webhook.branch_envs` of `config.yaml` (`main: prod`) builds
`<env>@<branch>` pinned to the pushed commit (`after`), once per delivery (GitHub's
`X-GitHub-Delivery` is the idempotency key, so a redelivery does not build twice). Pushes of other
branches, of tags, and branch deletions are acknowledged and ignored, with the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from datum_dot.errors import BadInputError

EVENT_HEADER = "x-github-event"
DELIVERY_HEADER = "x-github-delivery"
_SHA = re.compile(r"[0-9a-f]{40}")
_ZERO = "0" * 40
_DELIVERY = re.compile(r"[A-Za-z0-9-]{1,100}")


@dataclass(frozen=True)
class Push:
    """A push to build.

    Attributes:
        branch: The pushed branch (`main`).
        commit: The commit it now points to (the event's `after`).
        env: The environment `webhook.branch_envs` maps the branch to.
    """

    branch: str
    commit: str
    env: str

    @property
    def spec(self) -> str:
        """`<env>@<branch>`."""
        return f"{self.env}@{self.branch}"


@dataclass(frozen=True)
class Ignored:
    """A push that builds nothing, and why."""

    reason: str


def read_push(body: bytes, branch_envs: Mapping[str, str]) -> Push | Ignored:
    """Read a push event's payload.

    Raises:
        BadInputError: The body is not JSON, or lacks `ref` or a commit hash in `after`.
    """
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInputError(f"the push event is not JSON: {e}", "send the payload as JSON") from e
    if not isinstance(payload, dict):
        raise BadInputError("the push event is not a JSON object", "send GitHub's payload")
    ref, after = payload.get("ref"), payload.get("after")
    if not isinstance(ref, str) or not isinstance(after, str) or not _SHA.fullmatch(after):
        raise BadInputError(
            "the push event needs `ref` and a 40-hex commit in `after`",
            "set the GitHub webhook's content type to application/json",
        )
    if not ref.startswith("refs/heads/"):
        return Ignored(f"{ref} is not a branch")
    branch = ref.removeprefix("refs/heads/")
    if payload.get("deleted") is True or after == _ZERO:
        return Ignored(f"branch '{branch}' was deleted")
    env = branch_envs.get(branch)
    if env is None:
        mapped = ", ".join(f"{b} -> {e}" for b, e in branch_envs.items()) or "none"
        return Ignored(
            f"branch '{branch}' is not mapped to an environment "
            f"(webhook.branch_envs in config.yaml: {mapped})"
        )
    return Push(branch=branch, commit=after, env=env)


def delivery_key(header: str | None) -> str | None:
    """The idempotency key of a delivery (`github-<X-GitHub-Delivery>`), if it has a usable id."""
    if header is None or not _DELIVERY.fullmatch(header):
        return None
    return f"github-{header}"

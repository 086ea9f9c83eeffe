"""The `[env][@ref]` grammar shared by builds, `--defer`, schedules and webhooks.

A spec is split at its first `@`: what comes before is the environment name (empty means the
default environment), what comes after is a git ref, which may itself contain `@`
(`dev@HEAD@{1}`, `@@{-1}`). A spec without `@` runs the working tree; a spec with `@` is an
isolated build of the commit the ref resolves to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from datum_dot.errors import SpecError
from datum_dot.vcs.refs import check_ref

_ENV_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Spec:
    """A parsed spec: an optional environment and an optional git ref.

    Attributes:
        env: The environment name, or None for the default environment.
        ref: The git ref as the user wrote it, or None for the working tree.
    """

    env: str | None = None
    ref: str | None = None

    @property
    def is_isolated(self) -> bool:
        """True when the spec names a git ref, so the build is isolated."""
        return self.ref is not None

    def __str__(self) -> str:
        env = self.env or ""
        return f"{env}@{self.ref}" if self.ref is not None else env


def parse_spec(text: str) -> Spec:
    """Parse a build spec such as `prod@main`, `@v1.2`, `dev` or the empty string.

    Args:
        text: The spec as typed by the user.

    Returns:
        The parsed spec.

    Raises:
        SpecError: The environment name or the ref is malformed.
    """
    env_part, at, ref_part = text.partition("@")
    env = _check_env(env_part, text) if env_part else None
    if not at:
        return Spec(env=env)
    if not ref_part:
        raise SpecError(
            f"spec '{text}' has an empty git ref after '@'",
            "name a ref after '@' (for example prod@main), or drop the '@' to build the working tree",
        )
    return Spec(env=env, ref=check_ref(ref_part))


def parse_defer_spec(text: str) -> Spec:
    """Parse a `--defer` spec: `env` (the live environment), `env@ref` or `@ref` (a build).

    Args:
        text: The value given to `--defer`.

    Returns:
        The parsed spec: with a ref for an isolated build, without one for the schema(s) a
        plain `dot build env` writes (its state is read from the run history).

    Raises:
        SpecError: The spec is empty, has an empty ref, or is a bare `@`.
    """
    if text in ("", "@"):
        raise SpecError(
            f"--defer '{text}' names neither an environment nor a git ref",
            "defer to the live environment (--defer prod) or to an isolated build "
            "(--defer prod@main, --defer @main)",
        )
    env_part, at, ref_part = text.partition("@")
    if at and not ref_part:
        raise SpecError(
            f"--defer '{text}' has an empty git ref after '@'",
            f"defer to the live environment (--defer {env_part}) or name the ref of a build "
            f"(--defer {env_part}@main)",
        )
    return parse_spec(text)


def parse_state_from_spec(text: str) -> Spec:
    """Parse a `--state-from` spec, which must name a git ref (`env@ref` or `@ref`).

    Args:
        text: The value given to `--state-from`.

    Returns:
        The parsed spec, always with a ref.

    Raises:
        SpecError: The spec has no ref or an empty one.
    """
    env_part, at, ref_part = text.partition("@")
    if not at or not ref_part:
        env = env_part or "prod"
        raise SpecError(
            f"--state-from '{text}' must name a git ref: it compares against a commit's parse",
            f"use --state-from {env}@main; to defer to the live environment, --defer {env}",
        )
    return parse_spec(text)


def _check_env(name: str, text: str) -> str:
    if not _ENV_NAME.fullmatch(name):
        raise SpecError(
            f"environment name '{name}' in spec '{text}' is not valid",
            "environment names use letters, digits, '_', '-' and '.'",
        )
    return name

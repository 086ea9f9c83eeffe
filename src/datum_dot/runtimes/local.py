"""The `local` runtime: dbt-core's `dbtRunner`, in this process or in a warm child process."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from datum_dot import dbtcore
from datum_dot.errors import ConfigError, DbtError
from datum_dot.runtimes import child
from datum_dot.runtimes.base import (
    DbtExecutionTimeoutError,
    EventHandler,
    InvocationResult,
    NodeTarget,
    OutputSink,
    Runtime,
    RuntimeContext,
    RuntimeProbe,
)
from datum_dot.runtimes.commands import DbtCommandRuntime, python_version
from datum_dot.runtimes.output import Tail, tee_stdio

Isolation = Literal["auto", "process", "thread"]
LOCK_TIMEOUT_SECONDS = 3600.0


class LocalSettings(BaseModel):
    """`runtimes.local` in dot_environments.yml.

    Attributes:
        isolation: `auto` runs in a child process when a timeout is set, `process` always,
            `thread` never (in this process: fastest, but a timeout cannot stop dbt).
        warm: Fork each child from a server that has imported dbt once (long-lived callers).
        lock_timeout_seconds: How long to wait for another in-process invocation to finish.
        grace_seconds: Between asking a timed-out child to stop and killing it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    isolation: Isolation = "auto"
    warm: bool = False
    lock_timeout_seconds: float = Field(default=LOCK_TIMEOUT_SECONDS, gt=0)
    grace_seconds: float = Field(default=child.GRACE_SECONDS, ge=0)


class LocalRuntime(DbtCommandRuntime):
    """Run dbt-core's `dbtRunner`: one invocation at a time per process.

    dbt keeps global adapter state, so invocations in one process are serialized by a
    class-level lock (shared by every instance). A manifest parsed by `parse_targets` is handed
    to the next `invoke`, so the isolation check before a build costs no second parse.

    When a timeout is set (or `isolation="process"`), the invocation runs in a child process
    that can really be stopped; `warm=True` forks those children from a fork server that has
    imported dbt once, for long-lived callers such as the webhook server.
    """

    name = "local"
    supports_dbt_retry = True
    parallel = False
    _execution_lock = threading.Lock()

    def __init__(
        self,
        *,
        isolation: Isolation = "auto",
        warm: bool = False,
        lock_timeout: float = LOCK_TIMEOUT_SECONDS,
        grace: float = child.GRACE_SECONDS,
    ) -> None:
        self._isolation: Isolation = isolation
        self._warm = warm
        self._lock_timeout = lock_timeout
        self._grace = grace
        # The manifest parsed by `parse_targets`, for the next `invoke` of the same thread only:
        # callers sharing one instance (a server) must not run each other's projects.
        self._parsed = threading.local()

    @classmethod
    def from_settings(cls, settings: Mapping[str, object], context: RuntimeContext) -> Runtime:
        """Create from `runtimes.local`; see `Runtime.from_settings`."""
        try:
            parsed = LocalSettings.model_validate(dict(settings))
        except ValidationError as e:
            raise ConfigError(
                f"runtimes.local is invalid: {_first_error(e)}",
                "allowed keys: isolation (auto|process|thread), warm, lock_timeout_seconds, grace_seconds",
            ) from e
        del context
        return cls(
            isolation=parsed.isolation,
            warm=parsed.warm,
            lock_timeout=parsed.lock_timeout_seconds,
            grace=parsed.grace_seconds,
        )

    @classmethod
    def probe(cls) -> RuntimeProbe:
        """dbt-core's version, read without importing dbt."""
        found = dbtcore.versions()
        if "dbt-core" not in found:
            return RuntimeProbe(False, "", "dbt-core is not installed: pip install dbt-core")
        return RuntimeProbe(True, f"dbt-core {found['dbt-core']}", "dbtRunner in this process")

    def warm_up(self) -> None:
        """Start the fork server now, if this runtime uses one."""
        if self._warm:
            child.warm_up()

    def invoke(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        on_event: EventHandler | None = None,
        output: OutputSink | None = None,
        timeout: float | None = None,
    ) -> InvocationResult:
        """Run one dbt command with `dbtRunner`; see `Runtime.invoke`.

        Raises:
            DbtExecutionTimeoutError: Another invocation held the lock past the timeout.
        """
        started = time.monotonic()
        wait = timeout if timeout is not None else self._lock_timeout
        if not self._execution_lock.acquire(timeout=wait):
            raise DbtExecutionTimeoutError(
                f"another dbt invocation in this process held the lock for over {wait:g}s",
                "in-process dbt runs one command at a time: use --runtime subprocess to run in parallel",
            )
        try:
            manifest = getattr(self._parsed, "manifest", None)
            self._parsed.manifest = None
            remaining = (
                None if timeout is None else max(timeout - (time.monotonic() - started), 0.01)
            )
            if self._in_child(timeout):
                return self._invoke_child(args, env, manifest, on_event, output, remaining)
            tail = Tail()
            with tee_stdio(output, tail) as tagger:
                outcome = dbtcore.invoke(
                    args,
                    env=env,
                    manifest=manifest,
                    on_event=on_event,
                    on_level=tagger.level if tagger is not None else None,
                )
            return _result(outcome, tail=tail.lines())
        finally:
            self._execution_lock.release()

    def _in_child(self, timeout: float | None) -> bool:
        if self._isolation == "auto":
            return timeout is not None or self._warm
        return self._isolation == "process"

    def _invoke_child(
        self,
        args: Sequence[str],
        env: Mapping[str, str],
        manifest: object | None,
        on_event: EventHandler | None,
        output: OutputSink | None,
        timeout: float | None,
    ) -> InvocationResult:
        got = child.invoke(
            args,
            env=env,
            manifest=manifest,
            on_event=on_event,
            output=output,
            timeout=timeout,
            warm=self._warm,
            grace=self._grace,
        )
        if got.payload is not None and not got.timed_out and not got.interrupted:
            return _result(dbtcore.Invocation(**got.payload), tail=got.tail)
        if got.timed_out:
            error: str | None = "dbt did not finish within the timeout and was stopped"
        elif got.interrupted:
            error = None
        else:
            error = f"the dbt child process died (exit status {got.returncode})"
        return InvocationResult(
            success=False,
            dbt_exit_code=got.returncode,
            error=error,
            interrupted=got.interrupted,
            timed_out=got.timed_out,
            output_tail=got.tail,
            metadata={"child_exit_status": got.returncode},
        )

    def parse_targets(self, args: Sequence[str], *, env: Mapping[str, str]) -> list[NodeTarget]:
        """Parse in process and keep the manifest for the next invocation; see `Runtime`."""
        if not self._execution_lock.acquire(timeout=self._lock_timeout):
            raise DbtExecutionTimeoutError(
                f"another dbt invocation in this process held the lock for over {self._lock_timeout:g}s",
                "try again when the other run has finished",
            )
        try:
            with tee_stdio(None) as tagger:
                manifest, targets = dbtcore.parse_targets(
                    args, env=env, on_level=tagger.level if tagger is not None else None
                )
        except dbtcore.DbtParseFailed as e:
            raise DbtError(
                f"dbt could not parse the project: {e}",
                "run the same command with --dry-run to see the dbt arguments, then fix the project",
            ) from e
        finally:
            self._execution_lock.release()
        self._parsed.manifest = manifest
        return targets

    def supports_parallel_execution(self) -> bool:
        """False: dbtRunner keeps global state, so invocations in one process take turns."""
        return False

    def get_runtime_metadata(self) -> dict[str, JsonValue]:
        """Type, versions, and how invocations are isolated."""
        dbt_version = dbtcore.versions().get("dbt-core", "")
        return {
            "type": self.name,
            "runtime_version": dbt_version,
            "dbt_version": dbt_version,
            "python_version": python_version(),
            "parallel": False,
            "isolation": self._isolation,
            "warm": self._warm,
        }


def _result(outcome: dbtcore.Invocation, *, tail: tuple[str, ...]) -> InvocationResult:
    return InvocationResult(
        success=outcome.success,
        dbt_exit_code=outcome.exit_code,
        statuses=outcome.statuses,
        error=outcome.error,
        interrupted=outcome.interrupted,
        error_class=outcome.error_class,
        nodes=outcome.nodes,
        error_type=outcome.error_type,
        output_tail=tail,
    )


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(block)"
    return f"{where}: {first['msg']}"

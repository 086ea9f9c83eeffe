"""The runner: one dbt invocation through a runtime, with classification, retries and timeouts.

`execute()` hands every dbt argv to `Runner.invoke`. A failure is classified (`failures.py`);
only transient classes (a dropped connection, a locked database, dbt Cloud rate-limiting) are
retried, with exponential backoff and jitter, and every attempt is reported. Compilation errors,
data-quality failures and the rest are never retried. After a partial failure, where the runtime
supports it, the retry is `dbt retry`, so nodes that finished are not built again.

A runner holds only its settings: concurrent callers share no mutable state.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from datum_dot.errors import RunTimeoutError, UsageError
from datum_dot.runs import failures, isolation
from datum_dot.runtimes import registry
from datum_dot.runtimes.base import (
    EventHandler,
    InvocationResult,
    NodeOutcome,
    OutputSink,
    RunResult,
    Runtime,
    RuntimeContext,
)

if TYPE_CHECKING:
    from datum_dot.runs.plan import BuildPlan
    from datum_dot.runs.run import RunRequest

log = logging.getLogger(__name__)
RETRY_COMMANDS = frozenset({"build", "run", "seed", "snapshot", "test", "compile", "clone"})
DEFAULT_WORKERS = 4


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried.

    Attributes:
        retries: Attempts after the first (0: never retry).
        delay: Seconds before the first retry; each later one waits twice as long.
        max_delay: The longest wait between attempts.
        jitter: Up to this fraction of each wait is added at random, so that many runs that
            failed together do not all come back at once.
    """

    retries: int = 0
    delay: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise UsageError(
                f"--retries must be 0 or more, got {self.retries}", "pass --retries 3, for example"
            )
        if self.delay < 0 or self.max_delay < 0:
            raise UsageError(
                f"--retry-delay must be 0 or more, got {self.delay}",
                "pass --retry-delay 2, for example",
            )

    def wait(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        base = min(self.delay * 2.0 ** (attempt - 1), self.max_delay)
        return base + rng.uniform(0, base * self.jitter)


class Runner:
    """Runs dbt commands through one runtime."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        policy: RetryPolicy | None = None,
        on_notice: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.runtime = runtime
        self.policy = policy or RetryPolicy()
        self._notice = on_notice or (lambda message: None)
        self._sleep = sleep

    def invoke(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        on_event: EventHandler | None = None,
        output: OutputSink | None = None,
        timeout: float | None = None,
    ) -> InvocationResult:
        """Run one dbt command, retrying transient failures; see `Runtime.invoke`.

        Returns:
            The last attempt's result, classified (`error_class`, `suggestion`), with the
            number of `attempts`; after a `dbt retry`, nodes that finished earlier are kept.

        Raises:
            UsageError: `timeout` is not positive.
            BadInputError: The runtime cannot run this command as configured.
        """
        if timeout is not None and timeout <= 0:
            raise UsageError(
                f"--timeout must be more than 0 seconds, got {timeout:g}",
                "pass --timeout 600, for example",
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        rng = random.Random()  # noqa: S311 - jitter, not secrets; per call, so nothing is shared

        def attempt(previous: InvocationResult | None) -> InvocationResult:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
            try:
                if previous is None:
                    return self.runtime.invoke(
                        args, env=env, on_event=on_event, output=output, timeout=left
                    )
                got = self.runtime.retry(
                    previous, args, env=env, on_event=on_event, output=output, timeout=left
                )
                return _merged(previous, got)
            except RunTimeoutError as e:  # waited too long to even start (another run's lock)
                return InvocationResult(
                    success=False, dbt_exit_code=-1, error=e.message, timed_out=True
                )

        result = attempt(None)
        number = 1
        while True:
            kind, hint = failures.classify(result, args)
            result = replace(result, error_class=kind, suggestion=hint, attempts=number)
            if result.success or kind not in failures.RETRYABLE or number > self.policy.retries:
                if number > 1 and not result.success:
                    self._notice(f"giving up after {number} attempts ({kind}): {_short(result)}")
                return result
            wait = self.policy.wait(number, rng)
            if deadline is not None and time.monotonic() + wait >= deadline:
                self._notice(
                    f"attempt {number} failed ({kind}); no time left for a retry before the timeout"
                )
                return result
            partial = self.runtime.supports_dbt_retry and args[:1] and args[0] in RETRY_COMMANDS
            partial = bool(partial) and failures.is_partial(result)
            how = "dbt retry (only the unfinished nodes)" if partial else "the same command"
            message = (
                f"attempt {number} of {self.policy.retries + 1} failed ({kind}): {_short(result)}; "
                f"retrying with {how} in {wait:.1f}s"
            )
            log.warning(message)
            self._notice(message)
            try:
                self._sleep(wait)
            except KeyboardInterrupt:
                return replace(result, interrupted=True)
            number += 1
            result = attempt(result if partial else None)

    def run_models(
        self,
        models: Sequence[str],
        *,
        project_dir: Path,
        profiles_dir: Path,
        target: str,
        parallel: bool = False,
        max_workers: int = DEFAULT_WORKERS,
    ) -> list[RunResult]:
        """Run each model on its own (`--select <model>`), in parallel where the runtime allows.

        With a runtime that does not support parallel execution (`local`), the models run one
        after another whatever `parallel` says.

        Returns:
            One result per model, in the order given.
        """
        workers = (
            max(1, max_workers) if parallel and self.runtime.supports_parallel_execution() else 1
        )

        def one(model: str) -> RunResult:
            return self.runtime.run_models(project_dir, profiles_dir, target, select=model)

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dot-model") as pool:
            return list(pool.map(one, models))


def runtime_for(request: RunRequest, plan: BuildPlan) -> Runtime:
    """The runtime the plan names (`--runtime`, the environment's, the registered one), or `local`.

    Raises:
        BadInputError: Unknown runtime, not installed, or invalid settings.
    """
    name = plan.runtime
    environ = request.environ if request.environ is not None else os.environ
    iso = plan.isolated
    threads = plan.env.flags.get("threads")
    target = plan.env.flags.get("target")
    context = RuntimeContext(
        project_dir=plan.source_project_dir,
        environ=dict(environ),
        git_sha=iso.commit if iso else None,
        schema=isolation.expected_schema(iso.profile.schema_after, environ) if iso else None,
        target=str(target) if isinstance(target, str) else None,
        threads=threads if isinstance(threads, int) and not isinstance(threads, bool) else None,
        target_path=plan.target_path,
        use_cache=request.cache,
    )
    return registry.load_runtime(name, plan.env.runtimes.get(name, {}), context)


def _merged(previous: InvocationResult, retried: InvocationResult) -> InvocationResult:
    """The result of a `dbt retry`, with the nodes that had finished before it."""
    again = {node.unique_id for node in retried.nodes}
    kept: list[NodeOutcome] = [n for n in previous.nodes if n.unique_id not in again]
    nodes = (*kept, *retried.nodes)
    return replace(retried, nodes=nodes, statuses=tuple(n.status for n in nodes))


def _short(result: InvocationResult) -> str:
    text = result.error or next(
        (n.message for n in result.nodes if n.message and n.status == "error"), ""
    )
    first = (text or "dbt failed").strip().splitlines()
    return first[-1][:200] if first else "dbt failed"

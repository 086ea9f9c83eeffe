"""The `local` runtime: dbt-core's `dbtRunner` in this process."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from datum_dot import dbtcore
from datum_dot.errors import DbtError
from datum_dot.runtimes.base import EventHandler, InvocationResult, NodeTarget, Runtime


class LocalRuntime(Runtime):
    """Run dbt in process: no start-up cost beyond the first import, one run at a time.

    A manifest parsed by `parse_targets` is handed to the next `invoke`, so the isolation check
    before a build costs no second parse.
    """

    name = "local"

    def __init__(self) -> None:
        self._manifest: object | None = None

    def invoke(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        on_event: EventHandler | None = None,
    ) -> InvocationResult:
        """Run one dbt command in process; see `Runtime.invoke`."""
        manifest, self._manifest = self._manifest, None
        outcome = dbtcore.invoke(args, env=env, manifest=manifest, on_event=on_event)
        error = None
        if outcome.exception is not None and not outcome.interrupted:
            error = f"{type(outcome.exception).__name__}: {outcome.exception}"
        code = 0 if outcome.success else 2 if outcome.exception is not None else 1
        return InvocationResult(
            success=outcome.success,
            dbt_exit_code=code,
            statuses=outcome.statuses,
            error=error,
            interrupted=outcome.interrupted,
        )

    def parse_targets(self, args: Sequence[str], *, env: Mapping[str, str]) -> list[NodeTarget]:
        """Parse in process and keep the manifest for the next invocation; see `Runtime`."""
        try:
            manifest, targets = dbtcore.parse_targets(args, env=env)
        except dbtcore.DbtParseFailed as e:
            raise DbtError(
                f"dbt could not parse the project: {e}",
                "run the same command with --dry-run to see the dbt arguments, then fix the project",
            ) from e
        self._manifest = manifest
        return targets

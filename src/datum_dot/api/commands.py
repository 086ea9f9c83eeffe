"""The dbt commands of `Project`: one method each, with the keyword arguments that command takes.

An argument a command does not take is not in its signature, so passing it is a `TypeError`
before anything runs; `args=` carries any other dbt argument.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datum_dot.api.invocation import EventHandler
    from datum_dot.api.options import Options
    from datum_dot.api.result import Result

Selection = str | Sequence[str] | None
"""dbt's node selection: `"orders+"`, or several methods: `["tag:daily", "orders+"]`."""

Vars = Mapping[str, object] | None
"""Values for dbt's `var()`, merged over the environment's and checked against dot_vars.yml."""


class DbtCommands(ABC):
    """One method per dbt command; each runs through `execute()` and returns a `Result`."""

    def build(
        self,
        spec: str = "",
        *,
        select: Selection = None,
        exclude: Selection = None,
        selector: str | None = None,
        defer: str | None = None,
        full_refresh: bool = False,
        vars: Vars = None,
        target: str | None = None,
        threads: int | None = None,
        timeout: float | None = None,
        retries: int = 0,
        runtime: str | None = None,
        args: Sequence[str] = (),
        on_event: EventHandler | None = None,
        echo: bool = False,
    ) -> Result:
        """Run `dbt build` for a spec: seeds, models, snapshots and tests, in order.

        Args:
            spec: `[env][@ref]`: `"prod@main"` builds environment prod as commit main was, in
                its own worktree and schema; `"prod"` builds the working tree; `""` the
                default environment's working tree.
            select: dbt's `--select`.
            exclude: dbt's `--exclude`.
            selector: dbt's `--selector`.
            defer: What unselected parents are read from: an isolated build
                (`"prod@v1.0"`), or an environment as its last plain run left it (`"prod"`).
            full_refresh: Rebuild incremental models and seeds from scratch.
            vars: Values for `var()`, over the environment's; checked against dot_vars.yml.
            target: The profile target, instead of the environment's.
            threads: dbt's `--threads`.
            timeout: Seconds before the run is stopped (status `error`, exit code 40); also
                the longest wait for this process's turn with the `local` runtime. None: no
                limit, and a wait of at most an hour.
            retries: Attempts after the first for transient failures (a dropped connection).
            runtime: `local`, `subprocess`, `cloud`, `fusion` or a plugin's name; default the
                environment's, else `local`.
            args: Any other dbt arguments, as on dbt's command line (`["--fail-fast"]`).
            on_event: Called with each dbt event as `{"name": ..., "data": {...}}`.
            echo: Print dbt's lines and the preparation steps (nothing is printed otherwise).

        Returns:
            How the run ended. A dbt failure is a result with status `error`, not an error.

        Raises:
            BadInput: A malformed spec, an unknown environment or ref, vars that dot_vars.yml
                refuses, a build that would write outside its schema (exit code 20). The
                failure is recorded in the history as a FAILED run.
            DotError: The run could not be prepared (a worktree, `dbt deps`) or wait its turn.
            TypeError: An unknown keyword, or an argument of the wrong type.

        Example:
            >>> project.build("prod@main", select="orders+", vars={"sample_rate": 10})  # doctest: +SKIP
        """
        options = options_of(select, exclude, selector, defer, full_refresh, vars, target, threads,
                           timeout, retries, runtime, args)  # fmt: skip
        return self._run(("build",), spec, options, on_event, echo)

    def run(
        self,
        spec: str = "",
        *,
        select: Selection = None,
        exclude: Selection = None,
        selector: str | None = None,
        defer: str | None = None,
        full_refresh: bool = False,
        vars: Vars = None,
        target: str | None = None,
        threads: int | None = None,
        timeout: float | None = None,
        retries: int = 0,
        runtime: str | None = None,
        args: Sequence[str] = (),
        on_event: EventHandler | None = None,
        echo: bool = False,
    ) -> Result:
        """Run `dbt run` (models only); the arguments are those of `build`."""
        options = options_of(select, exclude, selector, defer, full_refresh, vars, target, threads,
                           timeout, retries, runtime, args)  # fmt: skip
        return self._run(("run",), spec, options, on_event, echo)

    def test(
        self,
        spec: str = "",
        *,
        select: Selection = None,
        exclude: Selection = None,
        selector: str | None = None,
        defer: str | None = None,
        vars: Vars = None,
        target: str | None = None,
        threads: int | None = None,
        timeout: float | None = None,
        retries: int = 0,
        runtime: str | None = None,
        args: Sequence[str] = (),
        on_event: EventHandler | None = None,
        echo: bool = False,
    ) -> Result:
        """Run `dbt test` (data and unit tests); the arguments are those of `build`."""
        options = options_of(select, exclude, selector, defer, False, vars, target, threads,
                           timeout, retries, runtime, args)  # fmt: skip
        return self._run(("test",), spec, options, on_event, echo)

    def seed(
        self,
        spec: str = "",
        *,
        select: Selection = None,
        exclude: Selection = None,
        selector: str | None = None,
        defer: str | None = None,
        full_refresh: bool = False,
        vars: Vars = None,
        target: str | None = None,
        threads: int | None = None,
        timeout: float | None = None,
        retries: int = 0,
        runtime: str | None = None,
        args: Sequence[str] = (),
        on_event: EventHandler | None = None,
        echo: bool = False,
    ) -> Result:
        """Run `dbt seed` (load the CSV seeds); the arguments are those of `build`."""
        options = options_of(select, exclude, selector, defer, full_refresh, vars, target, threads,
                           timeout, retries, runtime, args)  # fmt: skip
        return self._run(("seed",), spec, options, on_event, echo)

    def snapshot(
        self,
        spec: str = "",
        *,
        select: Selection = None,
        exclude: Selection = None,
        selector: str | None = None,
        defer: str | None = None,
        vars: Vars = None,
        target: str | None = None,
        threads: int | None = None,
        timeout: float | None = None,
        retries: int = 0,
        runtime: str | None = None,
        args: Sequence[str] = (),
        on_event: EventHandler | None = None,
        echo: bool = False,
    ) -> Result:
        """Run `dbt snapshot`; the arguments are those of `build`."""
        options = options_of(select, exclude, selector, defer, False, vars, target, threads,
                           timeout, retries, runtime, args)  # fmt: skip
        return self._run(("snapshot",), spec, options, on_event, echo)

    def compile(
        self,
        spec: str = "",
        *,
        select: Selection = None,
        exclude: Selection = None,
        selector: str | None = None,
        defer: str | None = None,
        full_refresh: bool = False,
        vars: Vars = None,
        target: str | None = None,
        threads: int | None = None,
        timeout: float | None = None,
        retries: int = 0,
        runtime: str | None = None,
        args: Sequence[str] = (),
        on_event: EventHandler | None = None,
        echo: bool = False,
    ) -> Result:
        """Run `dbt compile`; `result.artifacts["manifest"]` is the manifest it wrote.

        The arguments are those of `build`.
        """
        options = options_of(select, exclude, selector, defer, full_refresh, vars, target, threads,
                           timeout, retries, runtime, args)  # fmt: skip
        return self._run(("compile",), spec, options, on_event, echo)

    def parse(
        self,
        spec: str = "",
        *,
        vars: Vars = None,
        target: str | None = None,
        timeout: float | None = None,
        runtime: str | None = None,
        args: Sequence[str] = (),
        on_event: EventHandler | None = None,
        echo: bool = False,
    ) -> Result:
        """Run `dbt parse`; the arguments are those of `build`."""
        options = options_of(None, None, None, None, False, vars, target, None, timeout, 0,
                           runtime, args)  # fmt: skip
        return self._run(("parse",), spec, options, on_event, echo)

    def ls(
        self,
        spec: str = "",
        *,
        select: Selection = None,
        exclude: Selection = None,
        selector: str | None = None,
        vars: Vars = None,
        target: str | None = None,
        timeout: float | None = None,
        runtime: str | None = None,
        args: Sequence[str] = (),
        on_event: EventHandler | None = None,
        echo: bool = False,
    ) -> Result:
        """Run `dbt ls`; the arguments are those of `build`.

        dbt prints the nodes it lists: they are in the run's log (`result.logs["log_file"]`),
        and on stdout with `echo=True`.
        """
        options = options_of(select, exclude, selector, None, False, vars, target, None,
                           timeout, 0, runtime, args)  # fmt: skip
        return self._run(("ls",), spec, options, on_event, echo)

    def source_freshness(
        self,
        spec: str = "",
        *,
        select: Selection = None,
        exclude: Selection = None,
        selector: str | None = None,
        vars: Vars = None,
        target: str | None = None,
        threads: int | None = None,
        timeout: float | None = None,
        retries: int = 0,
        runtime: str | None = None,
        args: Sequence[str] = (),
        on_event: EventHandler | None = None,
        echo: bool = False,
    ) -> Result:
        """Run `dbt source freshness`; the arguments are those of `build`."""
        options = options_of(select, exclude, selector, None, False, vars, target, threads,
                           timeout, retries, runtime, args)  # fmt: skip
        return self._run(("source", "freshness"), spec, options, on_event, echo)

    def run_operation(
        self,
        macro: str,
        *,
        args: Mapping[str, object] | None = None,
        spec: str = "",
        defer: str | None = None,
        vars: Vars = None,
        target: str | None = None,
        timeout: float | None = None,
        runtime: str | None = None,
        on_event: EventHandler | None = None,
        echo: bool = False,
    ) -> Result:
        """Run a macro: `dbt run-operation MACRO --args '{...}'`.

        Args:
            macro: The macro's name.
            args: The macro's arguments (passed as dbt's `--args`).
            spec: As for `build`; the other arguments are those of `build` too.
            defer: As for `build`.
            vars: As for `build`.
            target: As for `build`.
            timeout: As for `build`.
            runtime: As for `build`.
            on_event: As for `build`.
            echo: As for `build`.

        Returns:
            How the run ended.

        Example:
            >>> project.run_operation("grant_select", args={"role": "reporter"}, spec="prod")  # doctest: +SKIP
        """
        # lazy: checking arguments needs the run request's module, not `import datum_dot`
        from datum_dot.api.options import operation_args

        extra = operation_args(macro, args)
        options = options_of(None, None, None, defer, False, vars, target, None, timeout, 0,
                           runtime, ())  # fmt: skip
        return self._run(("run-operation", macro), spec, options, on_event, echo, extra)

    def dbt(
        self,
        *command: str,
        spec: str = "",
        args: Sequence[str] = (),
        defer: str | None = None,
        vars: Vars = None,
        target: str | None = None,
        timeout: float | None = None,
        retries: int = 0,
        runtime: str | None = None,
        on_event: EventHandler | None = None,
        echo: bool = False,
    ) -> Result:
        """Run any dbt command: `project.dbt("docs", "generate", spec="prod@main")`.

        Args:
            *command: The dbt command words (`"docs", "generate"`, `"show"`, `"clone"`).
            spec: As for `build`; the other arguments are those of `build` too.
            args: As for `build`.
            defer: As for `build`.
            vars: As for `build`.
            target: As for `build`.
            timeout: As for `build`.
            retries: As for `build`.
            runtime: As for `build`.
            on_event: As for `build`.
            echo: As for `build`.

        Returns:
            How the run ended; `artifacts["catalog"]` after `docs generate`.
        """
        # lazy: as in run_operation
        from datum_dot.api.options import command_words

        words = command_words(command)
        options = options_of(None, None, None, defer, False, vars, target, None, timeout, retries,
                           runtime, args)  # fmt: skip
        return self._run(words, spec, options, on_event, echo)

    @abstractmethod
    def _run(
        self,
        command: tuple[str, ...],
        spec: str,
        options: Options,
        on_event: EventHandler | None,
        echo: bool,
        extra_args: Sequence[str] = (),
    ) -> Result:
        """Run one dbt command for `spec`: what every method above ends in (`Project` runs it)."""


def options_of(
    select: Selection,
    exclude: Selection,
    selector: str | None,
    defer: str | None,
    full_refresh: bool,
    vars: Vars,
    target: str | None,
    threads: int | None,
    timeout: float | None,
    retries: int,
    runtime: str | None,
    args: Sequence[str],
) -> Options:
    # lazy: as for the dbt methods
    from datum_dot.api.options import Options

    return Options(select=select, exclude=exclude, selector=selector, defer=defer,
                   full_refresh=full_refresh, vars=vars, target=target, threads=threads,
                   timeout=timeout, retries=retries, runtime=runtime, args=args)  # fmt: skip

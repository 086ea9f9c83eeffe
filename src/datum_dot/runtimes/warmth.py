"""Warm workers: dbt imported and run once, every run in a forked copy of the worker.

`dot webhook serve --warm` runs dbt with the `local` runtime in a child forked from the webhook
worker for each run (`isolation="process"`: a run can be stopped, and dbt's global state is
the child's own). The worker prepares itself once (`warm_up`): it imports dbt and the adapters and
parses a throwaway project, so a forked child starts past dbt's one-time work (code generation
for its serializers and schemas, about a second). Before each run the worker parses the project
itself (a partial parse: about 0.1 s in a warm process against 0.4 s in a new child) and hands
the manifest to the child, which then does not parse at all; `LocalRuntime` supports exactly
this (`parse_targets`, then `invoke`).

One rule keeps forking safe: this process never parses with dbt's static parser. It is Rust
(dbt_extractor) and starts a pool of threads the first time it runs; a forked copy has none of
them, and a full parse in it waits for them forever. So the worker parses with
`DBT_STATIC_PARSER=false` (the throwaway project and every run's parse); the children may use
it, each starting a pool of its own.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from datum_dot.errors import DbtError

if TYPE_CHECKING:
    from datum_dot.runtimes.base import EventHandler, InvocationResult, NodeTarget, OutputSink
    from datum_dot.runtimes.local import LocalRuntime

log = logging.getLogger("datum_dot.webhook")
STATIC_PARSER_ENV = "DBT_STATIC_PARSER"
# Commands that parse the project first, and so gain from a manifest parsed beforehand.
PARSING_COMMANDS = frozenset({"build", "run", "test", "seed", "snapshot", "compile"})


def warm_runtime() -> LocalRuntime:
    """The `local` runtime for a warm worker (see the module docstring)."""
    # lazy: dbt's adapter and the local runtime load only in a server started with --warm
    from datum_dot import dbtcore
    from datum_dot.runtimes.local import LocalRuntime

    class WarmLocalRuntime(LocalRuntime):
        """`local` in forked children of a worker that parses without the static parser."""

        def __init__(self) -> None:
            super().__init__(isolation="process")
            self._mine = threading.local()

        def parse_targets(self, args: Sequence[str], *, env: Mapping[str, str]) -> list[NodeTarget]:
            """Parse in this process, without the static parser; see `LocalRuntime`."""
            targets = super().parse_targets(args, env={**env, STATIC_PARSER_ENV: "false"})
            self._mine.parsed = True
            return targets

        def invoke(
            self,
            args: Sequence[str],
            *,
            env: Mapping[str, str],
            on_event: EventHandler | None = None,
            output: OutputSink | None = None,
            timeout: float | None = None,
        ) -> InvocationResult:
            """Parse here first (unless just done), then run in a forked child; see `Runtime`."""
            parsed, self._mine.parsed = getattr(self._mine, "parsed", False), False
            if not parsed and args and args[0] in PARSING_COMMANDS:
                # On a failure the child parses again, and says what is wrong in the run's output.
                with contextlib.suppress(DbtError):
                    accepted = dbtcore.command_options(("parse",))
                    self.parse_targets(parse_args(args, accepted), env=env)
                self._mine.parsed = False
            return super().invoke(args, env=env, on_event=on_event, output=output, timeout=timeout)

    return WarmLocalRuntime()


def parse_args(args: Sequence[str], accepted: frozenset[str]) -> list[str]:
    """The options of a dbt argv that `dbt parse` takes too, with their values.

    Args:
        args: dbt's argv (`build --project-dir P --select x --vars {...}`), command first.
        accepted: The option strings `parse` accepts.
    """
    out: list[str] = []
    i = 1
    while i < len(args):
        arg = args[i]
        name = arg.split("=", 1)[0]
        takes_value = "=" not in arg and i + 1 < len(args) and not args[i + 1].startswith("-")
        if name in accepted:
            out += [arg, args[i + 1]] if takes_value else [arg]
        i += 2 if takes_value else 1
    return out


def warm_up() -> None:
    """Import the adapters and parse a throwaway project (`dbtcore.warm_parse`)."""
    from datum_dot import dbtcore  # lazy: as in `warm_runtime`

    for module in dbtcore.preload_modules():
        try:
            importlib.import_module(module)
        except ImportError:  # a name that is no adapter module: as the fork server does
            log.debug("cannot preload %s", module)
    if dbtcore.warm_parse() is False:
        log.warning("warming up dbt failed; each run starts cold")

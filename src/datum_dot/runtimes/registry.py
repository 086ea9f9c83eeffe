"""Find runtimes through the entry-point group `datum_dot.runtimes`.

The built-in runtimes register there too (pyproject.toml), so a third-party package adds a
runtime exactly as they do:

    [project.entry-points."datum_dot.runtimes"]
    spark = "my_package.runtime:SparkRuntime"

A plugin that fails to import is logged and listed as unavailable; it never breaks the others.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import metadata

from datum_dot.runtimes.base import Runtime, RuntimeContext, RuntimeProbe, RuntimeUnavailableError

GROUP = "datum_dot.runtimes"
# The entry points this package declares (pyproject.toml), by name.
BUILTIN = {
    "local": "datum_dot.runtimes.local:LocalRuntime",
    "subprocess": "datum_dot.runtimes.subprocess:SubprocessRuntime",
    "cloud": "datum_dot.runtimes.cloud:CloudRuntime",
    "fusion": "datum_dot.runtimes.fusion:FusionRuntime",
}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuntimeInfo:
    """One installed runtime, for `dot runtimes`.

    Attributes:
        name: Its name (`--runtime NAME`).
        target: The entry point's `module:Class`.
        package: The distribution that declares it, with its version.
        probe: Whether it can run here, and what version it runs.
        parallel: Whether its invocations may run at the same time, when known.
    """

    name: str
    target: str
    package: str
    probe: RuntimeProbe
    parallel: bool | None = None


@cache
def _entry_points() -> dict[str, metadata.EntryPoint]:
    found: dict[str, metadata.EntryPoint] = {}
    for entry in metadata.entry_points(group=GROUP):
        if entry.name in BUILTIN and entry.value != BUILTIN[entry.name]:
            log.warning(
                "runtime plugin %s (%s) ignored: the name is built in", entry.name, entry.value
            )
            continue
        found.setdefault(entry.name, entry)
    return dict(sorted(found.items()))


def names() -> list[str]:
    """The names of every registered runtime, sorted."""
    return list(_entry_points())


def runtime_class(name: str) -> type[Runtime]:
    """The class registered under `name`.

    The four built-in runtimes are found without scanning every installed distribution's entry
    points (about 10 ms of each run's start); their names always mean the built-in classes.

    Raises:
        RuntimeUnavailableError: No runtime has that name, or its plugin does not load.
    """
    builtin = BUILTIN.get(name)
    if builtin is not None:
        module, _, attribute = builtin.partition(":")
        found: type[Runtime] = getattr(importlib.import_module(module), attribute)
        return found
    entry = _entry_points().get(name)
    if entry is None:
        known = names()
        close = difflib.get_close_matches(name, known, n=1)
        guess = f" (did you mean '{close[0]}'?)" if close else ""
        raise RuntimeUnavailableError(
            f"unknown runtime '{name}'{guess}; installed: {', '.join(known) or 'none'}",
            "pick one of those with --runtime, or run `dot runtimes` to see them all",
        )
    try:
        loaded = entry.load()
    except Exception as e:
        log.warning("runtime plugin %s (%s) failed to load: %r", name, entry.value, e)
        raise RuntimeUnavailableError(
            f"runtime '{name}' ({entry.value}) failed to load: {type(e).__name__}: {e}",
            f"reinstall the package that provides it, or pick another runtime: {', '.join(names())}",
        ) from e
    if not (isinstance(loaded, type) and issubclass(loaded, Runtime)):
        raise RuntimeUnavailableError(
            f"runtime '{name}' ({entry.value}) is not a datum_dot Runtime subclass",
            "fix the plugin's entry point, or pick another runtime with --runtime",
        )
    return loaded


def load_runtime(name: str, settings: Mapping[str, object], context: RuntimeContext) -> Runtime:
    """Create the runtime `name` from its settings.

    Raises:
        RuntimeUnavailableError: Unknown, broken, or not installed here.
        BadInputError: Its settings are invalid or incomplete.
    """
    return runtime_class(name).from_settings(settings, context)


def installed() -> list[RuntimeInfo]:
    """Every registered runtime and whether it can run here; broken plugins included."""
    infos: list[RuntimeInfo] = []
    for name, entry in _entry_points().items():
        package = f"{entry.dist.name} {entry.dist.version}" if entry.dist else "?"
        try:
            cls = runtime_class(name)
            probe = cls.probe()
        except RuntimeUnavailableError as e:
            infos.append(RuntimeInfo(name, entry.value, package, RuntimeProbe(False, "", str(e))))
            continue
        infos.append(RuntimeInfo(name, entry.value, package, probe, cls.parallel))
    return infos

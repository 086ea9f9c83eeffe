"""The run's output lines, each with its level where known, for log records (no OpenTelemetry).

In process, dbt writes an event's line and then calls back with the event on the same thread,
so a dbt line waits for the next event of its thread to learn its level (`LevelTagger`, as the
terminal does); the runtimes of a dbt executable call back in the same order from its JSON log.
dot's own lines on stderr (`dot: ...`, `error: ...`) carry their level in their prefix. A line
of the local runtime's child process has no known level.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from datum_dot.runtimes.output import LevelTagger

SEVERITIES: dict[str, tuple[int, str]] = {
    "debug": (5, "DEBUG"),
    "info": (9, "INFO"),
    "warn": (13, "WARN"),
    "error": (17, "ERROR"),
}
"""dbt's event levels as OpenTelemetry severity numbers and texts."""

_OWN_PREFIXES = (("dot: ", "info"), ("hint: ", "info"), ("warning: ", "warn"), ("error: ", "error"))


@dataclass(frozen=True)
class Line:
    """One line of the run's output.

    Attributes:
        stream: "stdout" or "stderr".
        text: The line, without its newline or colour codes.
        level: dbt's level for it ("debug", "info", "warn", "error"), or None if not known.
    """

    stream: str
    text: str
    level: str | None

    def severity(self) -> tuple[int, str | None]:
        """The OpenTelemetry severity number (0: unspecified) and text of the line."""
        if self.level is None or self.level not in SEVERITIES:
            return 0, None
        return SEVERITIES[self.level]


class LineLevels:
    """Hands each line of the run's output on to `emit`, once its level is known (or cannot be)."""

    def __init__(self, emit: Callable[[Line], None]) -> None:
        self._emit = emit
        self._tagger = LevelTagger(lambda stream, text, level: emit(Line(stream, text, level)))

    def line(self, stream: str, text: str) -> None:
        """A line written on this thread."""
        if stream == "stderr":
            for prefix, level in _OWN_PREFIXES:
                if text.startswith(prefix):
                    self._emit(Line(stream, text, level))
                    return
        self._tagger.writing()
        self._tagger.line(stream, text)

    def event(self, data: Mapping[str, Any]) -> None:
        """A dbt event fired on this thread: its level is that of the line just written."""
        level = getattr(data, "level", None)  # a child process's events do not say it
        if isinstance(level, str):
            self._tagger.level(level)

    def finish(self) -> None:
        """Hand on every line still waiting (the run is over)."""
        self._tagger.finish()

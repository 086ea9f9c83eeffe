"""dbt's event callbacks: each event's name and data, or its level, handed to our observers.

The data is converted from dbt's protobuf message only when read (`_EventData`), and a copy
sent to another process is a plain dict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any


def event_callback(on_event: Callable[[str, Mapping[str, Any]], None]) -> Callable[[Any], None]:
    """A dbt callback that hands `on_event` each event's name and (lazily converted) data."""

    def callback(event: Any) -> None:
        on_event(event.info.name, _EventData(event))

    return callback


def level_callback(on_level: Callable[[str], None]) -> Callable[[Any], None]:
    """A dbt callback that hands `on_level` each event's level ("debug", "info", ...)."""

    def callback(event: Any) -> None:
        on_level(str(event.info.level))

    return callback


class _EventData(Mapping[str, Any]):
    """An event's data as a dict, converted from dbt's protobuf message when first read.

    dbt calls back for every event, debug-level ones included (about 900 in a build of the
    example project); converting each (`MessageToDict`) cost about 65 ms of such a run, and the
    progress display reads only the node start and result events. A copy for another process
    (pickling) is a plain dict.
    """

    def __init__(self, event: Any) -> None:
        self._event = event
        self._converted: dict[str, Any] | None = None

    def _dict(self) -> dict[str, Any]:
        if self._converted is None:
            try:
                from google.protobuf.json_format import (  # type: ignore[import-untyped]
                    MessageToDict,
                )

                self._converted = dict(
                    MessageToDict(self._event.data, preserving_proto_field_name=True)
                )
            except Exception:  # noqa: BLE001 - a progress callback must never break a dbt run
                self._converted = {}
        return self._converted

    @property
    def level(self) -> str:
        """dbt's level for the event ("debug", "info", "warn", "error"): its line's severity."""
        return str(self._event.info.level)

    def __getitem__(self, key: str) -> Any:
        return self._dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def __reduce__(self) -> tuple[type[dict[str, Any]], tuple[dict[str, Any]]]:
        return dict, (self._dict(),)

    def __repr__(self) -> str:
        return repr(self._dict())

"""Which observers ask for dbt's events: a run in a child process sends them only to a reader."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datum_dot.api.invocation import CallObserver
from datum_dot.cli.runobserver import CliObserver
from datum_dot.execute import Observer
from datum_dot.telemetry.switch import OFF


class _Counting(Observer):
    def __init__(self) -> None:
        self.names: list[str] = []

    def event(self, name: str, data: Mapping[str, Any]) -> None:
        self.names.append(name)


def test_the_base_observer_reads_no_events_and_a_subclass_that_overrides_event_does() -> None:
    assert Observer().wants_events() is False
    assert _Counting().wants_events() is True


def test_the_cli_reads_events_only_for_its_progress_display() -> None:
    assert CliObserver(prog="dot", debug=False, prompts=False).wants_events() is False


def test_the_api_reads_events_only_for_a_callers_on_event() -> None:
    assert CallObserver(on_event=None, echo=False, wait=0).wants_events() is False
    seen: list[dict[str, Any]] = []
    observer = CallObserver(on_event=seen.append, echo=False, wait=0)
    assert observer.wants_events() is True
    observer.event("NodeStart", {"node_info": {"unique_id": "model.x.y"}})
    assert seen == [{"name": "NodeStart", "data": {"node_info": {"unique_id": "model.x.y"}}}]


def test_an_untraced_run_passes_no_event_handler_on() -> None:
    assert OFF.events(None) is None
    counting = _Counting()
    handler = OFF.events(counting.event)
    assert handler is not None
    handler("NodeFinished", {})
    assert counting.names == ["NodeFinished"]

"""dbt events reach observers as lazily converted data; progress reads only the events it needs."""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Mapping
from typing import Any

from dbt.events.types import LogStartLine
from dbt_common.events.base_types import msg_from_base_event

from datum_dot.dbtcore.events import event_callback
from datum_dot.runs.progress import ProgressTracker


def _start_event() -> Any:
    event = LogStartLine(
        description="sql table model p.x",
        index=1,
        total=3,
        node_info={"unique_id": "model.p.x", "node_status": "started"},
    )
    return msg_from_base_event(event)


def test_event_data_reads_as_the_converted_dict() -> None:
    seen: list[tuple[str, Mapping[str, Any]]] = []
    event_callback(lambda name, data: seen.append((name, data)))(_start_event())
    [(name, data)] = seen
    assert name == "LogStartLine"
    assert data == {
        "node_info": {"unique_id": "model.p.x", "node_status": "started"},
        "description": "sql table model p.x",
        "index": 1,
        "total": 3,
    }
    assert data.get("total") == 3
    assert sorted(data) == ["description", "index", "node_info", "total"]


def test_event_data_pickles_as_a_plain_dict() -> None:
    seen: list[Mapping[str, Any]] = []
    event_callback(lambda name, data: seen.append(data))(_start_event())
    # What a child process sends its parent; the bytes are our own.
    copy = pickle.loads(pickle.dumps(seen[0]))  # noqa: S301
    assert type(copy) is dict
    assert copy["node_info"]["unique_id"] == "model.p.x"


class _Unreadable(Mapping[str, Any]):
    """Event data that fails the test if anything reads it."""

    def __getitem__(self, key: str) -> Any:
        raise AssertionError(f"read {key!r} of an event progress does not use")

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("iterated an event progress does not use")

    def __len__(self) -> int:
        raise AssertionError("sized an event progress does not use")


def test_progress_does_not_read_other_events() -> None:
    tracker = ProgressTracker(clock=iter([1.0, 2.0, 5.0]).__next__)
    assert tracker.on_event("SQLQuery", _Unreadable()) is None
    assert tracker.on_event("ConnectionUsed", _Unreadable()) is None
    state = tracker.on_event("NodeStart", {"node_info": {"unique_id": "model.p.x"}})
    assert state is not None
    assert state.current == "model.p.x"
    assert state.elapsed == 4.0  # timed from the first event, read or not

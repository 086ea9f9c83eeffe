"""Progress of a dbt invocation (nodes done / total, current node, elapsed), from dbt's events.

This is the state only; the CLI draws it (a rich progress bar on a terminal, timestamped lines
otherwise). Events come from dbt's worker threads, so updates are locked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProgressState:
    """A snapshot of an invocation's progress.

    Attributes:
        done: Nodes finished.
        total: Nodes to run, once dbt has said.
        current: The node most recently started, if any is running.
        elapsed: Seconds since the first event.
        failed: Nodes finished with `error` or `fail`.
        last_finished: The node that finished most recently, with its status.
    """

    done: int = 0
    total: int | None = None
    current: str | None = None
    elapsed: float = 0.0
    failed: int = 0
    last_finished: tuple[str, str] | None = None


class ProgressTracker:
    """Folds dbt events into a `ProgressState`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._started: float | None = None
        self._running: list[str] = []
        self._finished: set[str] = set()
        self._state = ProgressState()

    def on_event(self, name: str, data: Mapping[str, Any]) -> ProgressState | None:
        """Take one event; return the new state if the event changed it.

        Only node start and result events change the state; the data of the others (most of
        dbt's events) is never read, so it need not be converted (see `dbtcore`).
        """
        relevant = name in _STARTS or name in _RESULTS
        info = data.get("node_info") if relevant and isinstance(data, Mapping) else None
        unique_id = str(info.get("unique_id", "")) if isinstance(info, Mapping) else ""
        if isinstance(info, Mapping) and info.get("materialized") == "ephemeral":
            # dbt reports an ephemeral model finished but leaves it out of its node total.
            relevant = False
        with self._lock:
            now = self._clock()
            if self._started is None:
                self._started = now
            if not relevant:
                return None
            state = self._state
            if isinstance(data.get("total"), int):
                state = _replace(state, total=int(data["total"]))
            if name in _STARTS and unique_id and unique_id not in self._running:
                self._running.append(unique_id)
                state = _replace(state, current=unique_id)
            elif name in _RESULTS and unique_id and unique_id not in self._finished:
                # In process dbt sends NodeFinished and a Log*Result for each node; a child's
                # JSON log has only the info-level Log*Result: count each node once.
                self._finished.add(unique_id)
                if unique_id in self._running:
                    self._running.remove(unique_id)
                status = _status(data, info)
                state = _replace(
                    state,
                    done=state.done + 1,
                    failed=state.failed + (status in {"error", "fail"}),
                    current=self._running[-1] if self._running else None,
                    last_finished=(unique_id, status),
                )
            elif state == self._state:
                return None
            self._state = _replace(state, elapsed=now - self._started)
            return self._state

    def state(self) -> ProgressState:
        """The latest snapshot, with the elapsed time brought up to now."""
        with self._lock:
            if self._started is None:
                return self._state
            return _replace(self._state, elapsed=self._clock() - self._started)


_STARTS = frozenset({"NodeStart", "LogStartLine"})
_RESULTS = frozenset(
    {
        "NodeFinished",
        "LogModelResult",
        "LogTestResult",
        "LogSeedResult",
        "LogSnapshotResult",
        "LogFreshnessResult",
        "LogNodeResult",
        "LogNodeNoOpResult",
        "LogFunctionResult",
    }
)


def _status(data: Mapping[str, Any], info: Mapping[str, Any] | None) -> str:
    result = data.get("run_result")
    if isinstance(result, Mapping) and result.get("status"):
        return str(result["status"])
    if data.get("status"):
        return str(data["status"])
    return str((info or {}).get("node_status", ""))


def _replace(state: ProgressState, **changes: Any) -> ProgressState:
    values = {**state.__dict__, **changes}
    return ProgressState(**values)

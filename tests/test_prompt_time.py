"""A run's duration starts when the run proper starts, not while a person answers a question.

Regression: the start-up questions are asked in `Observer.planned`, and the time spent reading
them counted in the run's recorded and shown duration.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from datum_dot.execute import Observer, execute
from datum_dot.history import RunStore
from datum_dot.home.settings import datum_home
from datum_dot.runs.plan import BuildPlan
from datum_dot.runs.run import RunRequest
from datum_dot.runs.spec import parse_spec
from tests.helpers.example import ExampleProject

PAUSE = 1.5


class SlowToAnswer(Observer):
    """Takes a while over the start-up questions, as a person reading them does."""

    answered: datetime | None = None

    def planned(self, plan: BuildPlan) -> None:
        del plan
        time.sleep(PAUSE)
        self.answered = datetime.now(UTC)


@pytest.mark.slow
def test_prompt_time_is_not_in_the_run_duration(example: ExampleProject) -> None:
    observer = SlowToAnswer()
    request = RunRequest(command=("ls",), spec=parse_spec("prod@main"), project_dir=example.path)
    record = execute(request, observer=observer)
    assert observer.answered is not None
    assert record.started_at >= observer.answered
    assert record.run_id is not None
    stored = RunStore(datum_home()).get(record.run_id)
    assert stored.started_at >= observer.answered
    assert stored.duration_seconds is not None
    assert record.finished_at is not None
    elapsed = (record.finished_at - observer.answered).total_seconds()
    assert stored.duration_seconds <= elapsed + 0.5

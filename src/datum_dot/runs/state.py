"""Deferred and compared state: where `--defer` and `--state-from` read a manifest from.

`--defer env@ref` reads an isolated build's target folder (`isolatedplan.plan_baseline`).
`--defer env` reads the live environment: the artifacts the newest successful plain run of
`env` left in the run history (`StateHistory`, which the history implements: this layer sits
below it), or with `--state-source cloud` the latest successful run of its dbt Cloud job.
`--state-from env@ref` parses a commit (no build) and compares against that manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from datum_dot.errors import BaselineError

WRITING_RUNS = frozenset({"build", "run", "seed", "snapshot", "clone"})
"""dbt commands whose plain run writes the live environment's relations."""


@dataclass(frozen=True)
class LiveState:
    """The newest successful plain run of an environment that wrote its schema(s).

    Attributes:
        run_id: The run's id in the history.
        commit: The commit the checkout was at (None outside git).
        finished_at: When it finished (UTC).
        state_dir: The run's folder, holding its manifest.json: dbt's `--state`.
        command: The dbt command words it ran.
        trigger: What started it (`manual`, `cron`, `webhook`, `sdk`).
    """

    run_id: str
    commit: str | None
    finished_at: datetime
    state_dir: Path
    command: tuple[str, ...]
    trigger: str


@dataclass(frozen=True)
class LiveSearch:
    """What looking for an environment's live state found.

    Attributes:
        found: The newest usable run, or None.
        skipped: One line per newer run passed over, and why (folder deleted, manifest not JSON).
    """

    found: LiveState | None
    skipped: tuple[str, ...] = ()


class StateHistory(Protocol):
    """The run history, as `--defer ENV` asks it (implemented by `history.states`)."""

    def live_state(self, project: str, env: str) -> LiveSearch:
        """The newest successful plain run of `env` in `project` with a usable manifest."""
        ...


def human_age(seconds: float) -> str:
    """An age for people: `45s`, `12m`, `3h05m`, `2d4h`."""
    whole = max(int(seconds), 0)
    if whole < 60:
        return f"{whole}s"
    minutes, _ = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h"


def check_age(what: str, age: float, max_age: float | None, rebuild: str) -> None:
    """Refuse state older than `--max-state-age`.

    Raises:
        BaselineError: `age` is over `max_age`.
    """
    if max_age is None or age <= max_age:
        return
    raise BaselineError(
        f"{what} is {human_age(age)} old, older than --max-state-age {human_age(max_age)}",
        f"refresh it ({rebuild}), or allow older state with a larger --max-state-age",
    )

"""A schedule's definition carried by an exported file, so `dot schedule run` needs no config.yaml.

Exported CronJobs, units and workflows set `DOT_SCHEDULE_DEFINITION` to one line of JSON: the
schedule as config.yaml keeps it, the project's id, the dbt project's folder inside the
repository, and the registration's runtime. `dot schedule run NAME` reads it instead of
`$DATUM_HOME/config.yaml` and builds the dbt project found from its working folder (adr/0016).
The JSON is compact with sorted keys, so the same schedule always gives the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from datum_dot.errors import ScheduleError
from datum_dot.home.userconfig import PROJECT_ID, ProjectEntry
from datum_dot.scheduling.schedules import Located, Schedule

DEFINITION_ENV = "DOT_SCHEDULE_DEFINITION"


class Definition(BaseModel):
    """What an exported file embeds.

    Attributes:
        version: The layout's version.
        project: The project's id (the history and the lock use it).
        folder: The dbt project's folder relative to the repository's top (`.` at the top).
        target: The target the registration names, used when nothing else names one.
        runtime: The runtime the registration names.
        schedule: The schedule.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    project: str = Field(pattern=PROJECT_ID.pattern)
    folder: str = "."
    target: str = Field(min_length=1)
    runtime: str = "local"
    schedule: Schedule


def encode_definition(definition: Definition) -> str:
    """One line of JSON, keys sorted: byte-identical for the same definition."""
    data = definition.model_dump(mode="json", exclude_none=True)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def decode_definition(text: str, *, name: str) -> Definition:
    """The definition in `text`, checked, for the schedule called `name`.

    Raises:
        ScheduleError: It is not JSON, not a definition, or defines another schedule.
    """
    hint = f"export the schedule again: dot schedule export {name} --to ..."
    try:
        definition = Definition.model_validate(json.loads(text))
    except json.JSONDecodeError as e:
        raise ScheduleError(f"{DEFINITION_ENV} is not JSON: {e.msg} at {e.pos}", hint) from e
    except ValidationError as e:
        detail = e.errors()[0]
        where = ".".join(str(p) for p in detail["loc"])
        raise ScheduleError(
            f"{DEFINITION_ENV} is not a schedule definition: {where}: {detail['msg']}", hint
        ) from e
    if definition.schedule.name != name:
        raise ScheduleError(
            f"{DEFINITION_ENV} defines schedule '{definition.schedule.name}', not '{name}'",
            f"run it by its own name: dot schedule run {definition.schedule.name}",
        )
    return definition


def located_from_definition(definition: Definition, project_dir: Path) -> Located:
    """The schedule as `fire` takes it, its project being the dbt project at `project_dir`."""
    entry = ProjectEntry(
        path=project_dir,
        profiles_dir=project_dir,
        target=definition.target,
        runtime=definition.runtime,
        created_at=definition.schedule.created_at,
    )
    return Located(definition.project, entry, definition.schedule)

"""What every rendering of a schedule starts from: the schedule, its zone, its project's layout.

Gathered once per schedule from config.yaml and the project folder: the embedded definition,
the IANA time zone its cron expression is read in (the machine's, as cron's, unless given), the
dbt project's folder inside the repository, and the names of the variables its profile reads
with `env_var()`. Names only: the values are the user's secrets and never leave the machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from datum_dot.errors import ScheduleError
from datum_dot.runs import commits
from datum_dot.scheduling.cronexpr import local_zone
from datum_dot.scheduling.export.cronfields import CronFields, cron_fields
from datum_dot.scheduling.export.definition import Definition
from datum_dot.scheduling.schedules import Located

# `env_var('NAME')` or `env_var("NAME", default)`, as dbt's Jinja reads it.
_ENV_VAR = re.compile(r"""env_var\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*(,)?""")


@dataclass(frozen=True)
class ProfileVariable:
    """A variable the profile reads with `env_var()`.

    Attributes:
        name: Its name.
        has_default: The profile gives a default (`env_var('X', 'y')`), so it may be unset.
    """

    name: str
    has_default: bool


@dataclass(frozen=True)
class ExportSource:
    """One schedule, ready to be rendered.

    Attributes:
        located: The schedule and its project.
        definition: What the rendering embeds for `dot schedule run`.
        fields: Its cron expression as value sets.
        zone: The IANA time zone the expression is read in.
        folder: The dbt project's folder relative to the repository's top (`.` at the top).
        variables: The variables the profile reads, by name.
    """

    located: Located
    definition: Definition
    fields: CronFields
    zone: str
    folder: str
    variables: tuple[ProfileVariable, ...]

    @property
    def slug(self) -> str:
        """`<project>-<schedule>` in lower case, `_` and `.` as `-`: a name every scheduler takes."""
        text = f"{self.located.project_id}-{self.located.schedule.name}".lower()
        return re.sub(r"[^a-z0-9-]+", "-", text).strip("-")


def export_source(located: Located, *, zone: str | None) -> ExportSource:
    """Gather what the renderings need for one schedule.

    Raises:
        ScheduleError: The zone is unknown (or the machine's has no name), the project is not
            in a git repository, or the cron expression cannot be read.
    """
    project_dir = Path(located.project.path)
    root = commits.find_repo_root(project_dir)
    if root is None:
        raise ScheduleError(
            f"project '{located.project_id}' at {project_dir} is not in a git repository",
            "an exported schedule checks the project out from git: commit it to a repository",
        )
    folder = project_dir.resolve().relative_to(root.resolve()).as_posix()
    definition = Definition(
        project=located.project_id,
        folder=folder,
        target=located.project.target,
        runtime=located.project.runtime,
        schedule=located.schedule,
    )
    return ExportSource(
        located=located,
        definition=definition,
        fields=cron_fields(located.schedule.cron),
        zone=zone_key(zone),
        folder=folder,
        variables=profile_variables(project_dir, Path(located.project.profiles_dir)),
    )


def zone_key(zone: str | None) -> str:
    """An IANA zone name: `zone` checked, else the machine's (cron's) zone.

    Raises:
        ScheduleError: `zone` is not a zone, or the machine's zone has no IANA name.
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if zone is None:
        key = getattr(local_zone(), "key", None)
        if not isinstance(key, str):
            raise ScheduleError(
                "this machine's time zone has no IANA name (/etc/localtime is not a zone link)",
                "name the zone the cron expression is read in: --time-zone Europe/Berlin",
            )
        zone = key
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ScheduleError(
            f"--time-zone '{zone}' is not a time zone",
            "use an IANA name such as UTC, Europe/Berlin or America/New_York",
        ) from e
    return zone.removeprefix("Etc/") if zone in ("Etc/UTC", "Etc/GMT") else zone


def profile_variables(project_dir: Path, profiles_dir: Path) -> tuple[ProfileVariable, ...]:
    """The variables the project's profile reads with `env_var()`, sorted by name.

    The profile is the one dbt_project.yml names, in the registered profiles folder's
    profiles.yml (else the project folder's); none when neither file can be read.
    """
    profile = _profile_name(project_dir)
    for folder in (profiles_dir, project_dir):
        try:
            data = yaml.safe_load((folder / "profiles.yml").read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict):
            section = data.get(profile, data) if profile else data
            found: dict[str, bool] = {}
            for text in _strings(section):
                for match in _ENV_VAR.finditer(text):
                    found[match[1]] = found.get(match[1], True) and bool(match[2])
            return tuple(ProfileVariable(n, d) for n, d in sorted(found.items()))
    return ()


def _strings(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return []


def _profile_name(project_dir: Path) -> str | None:
    try:
        data = yaml.safe_load((project_dir / "dbt_project.yml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    name = data.get("profile") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None

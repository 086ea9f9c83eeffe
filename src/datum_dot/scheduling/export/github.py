"""A schedule as a GitHub Actions workflow that runs `dot schedule run NAME` on a runner.

`on.schedule` holds the cron expression moved to UTC (`utccron.py`), with the local one in a
comment. A `concurrency` group per schedule stands for the overlap policy: GitHub never runs two
of the group at once and keeps one firing pending meanwhile (queue; for skip that firing waits
too, said in a comment). The checkout is the pinned commit (or the ref); the profile and its
variables come from the repository's secrets, by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from datum_dot.scheduling.export.artifact import ExportedFile, Rendering, describe, yaml_text
from datum_dot.scheduling.export.definition import DEFINITION_ENV, encode_definition
from datum_dot.scheduling.export.source import ExportSource
from datum_dot.scheduling.export.utccron import utc_cron
from datum_dot.scheduling.schedules import Overlap

SETUP_MINUTES = 15
"""Minutes the job's limit adds to the schedule's timeout, for the checkout and the install."""
PROFILES_SECRET = "DBT_PROFILES_YML"  # noqa: S105 - the secret's name, not a value
DATABASE_URL_ENV = "DATUM_DATABASE_URL"


@dataclass(frozen=True)
class GithubOptions:
    """How the runner gets dot and the profile.

    Attributes:
        install: What `pip install` installs: dot with the project's adapter.
        python: The Python version of `actions/setup-python`.
        utc_ok: Accept an hour's drift of a zone with daylight-saving time.
        profiles_in_repo: profiles.yml is tracked in the project folder: no secret for it.
    """

    install: str = "datum-dot[duckdb]"
    python: str = "3.12"
    utc_ok: bool = False
    profiles_in_repo: bool = False


def render_workflow(source: ExportSource, options: GithubOptions) -> Rendering:
    """`.github/workflows/datum-dot-<project>-<schedule>.yml` for one schedule.

    Raises:
        ScheduleError: The cron expression has no UTC equivalent GitHub can run (see `utc_cron`).
    """
    schedule = source.located.schedule
    utc = utc_cron(source.fields, source.zone, utc_ok=options.utc_ok)
    name = f"datum-dot-{source.slug}"
    header = [
        f"{describe(source)}",
        f"as a GitHub Actions workflow: `dot schedule run {schedule.name}` on a runner.",
        f"Written by `dot schedule export {schedule.name} --to github-actions`: export again "
        "after changing the schedule.",
        f"cron '{schedule.cron}' in {source.zone} is {_and(utc.lines)} in UTC, the zone GitHub "
        "reads schedules in.",
    ]
    if utc.daylight_saving:
        header.append(
            f"{source.zone} has daylight-saving time: these UTC times fire an hour later by the "
            "local clock while it is in force (exported with --utc-ok)."
        )
    if schedule.overlap is Overlap.SKIP:
        header.append(
            "overlap skip: GitHub cannot skip; the concurrency group holds a firing during a "
            "run and starts it after (one pending at most)."
        )
    if not schedule.enabled:
        header.append("The schedule is paused: each firing records PAUSED and builds nothing.")
    secrets = _secret_names(source, options)
    header.append(f"Repository secrets it reads: {', '.join(secrets)}; named here, never valued.")
    job: dict[str, Any] = {"name": f"dot schedule run {schedule.name}", "runs-on": "ubuntu-latest"}
    if schedule.timeout is not None:
        job["timeout-minutes"] = math.ceil(schedule.timeout / 60) + SETUP_MINUTES
    job["steps"] = _steps(source, options)
    document = {
        "name": f"datum-dot {source.located.project_id} {schedule.name}",
        "on": {"schedule": [{"cron": line} for line in utc.lines], "workflow_dispatch": {}},
        "concurrency": {"group": name, "cancel-in-progress": False},
        "permissions": {"contents": "read"},
        "jobs": {"run": job},
    }
    text = yaml_text(header, document)
    notes = (
        f"commit {{dir}}/{name}.yml to .github/workflows/ on the default branch "
        "(GitHub runs schedules from there)",
        f"repository secrets to set: {', '.join(secrets)}",
    )
    return Rendering((ExportedFile(f"{name}.yml", text),), notes)


def _steps(source: ExportSource, options: GithubOptions) -> list[dict[str, Any]]:
    schedule = source.located.schedule
    checkout: dict[str, Any] = {"name": "Check out the project", "uses": "actions/checkout@v4"}
    ref = schedule.pinned_commit or schedule.spec.partition("@")[2]
    checkout["with"] = {**({"ref": ref} if ref else {}), "fetch-depth": 0}
    steps: list[dict[str, Any]] = [
        checkout,
        {"uses": "actions/setup-python@v5", "with": {"python-version": options.python}},
        {"name": "Install dot", "run": f"python -m pip install '{options.install}'"},
    ]
    env: dict[str, str] = {DEFINITION_ENV: encode_definition(source.definition)}
    if not options.profiles_in_repo:
        steps.append({
            "name": f"profiles.yml from the {PROFILES_SECRET} secret",
            "env": {PROFILES_SECRET: f"${{{{ secrets.{PROFILES_SECRET} }}}}"},
            "run": 'mkdir -p "$RUNNER_TEMP/dbt"\n'
            f"printf '%s\\n' \"${PROFILES_SECRET}\" > \"$RUNNER_TEMP/dbt/profiles.yml\"\n",
        })  # fmt: skip
        env["DBT_PROFILES_DIR"] = "${{ runner.temp }}/dbt"
    env[DATABASE_URL_ENV] = f"${{{{ secrets.{DATABASE_URL_ENV} }}}}"
    for variable in source.variables:
        env.setdefault(variable.name, f"${{{{ secrets.{variable.name} }}}}")
    run: dict[str, Any] = {"name": f"dot schedule run {schedule.name}"}
    if source.folder != ".":
        run["working-directory"] = source.folder
    # GitHub sets an unset secret to "": dbt would read that instead of the profile's default.
    optional = [n for n in env if n.startswith(DATABASE_URL_ENV)] + [
        v.name for v in source.variables if v.has_default
    ]
    script = f"dot schedule run {schedule.name}\n"
    if optional:
        script = (
            f"for name in {' '.join(sorted(set(optional)))}; do\n"
            '  [ -n "${!name}" ] || unset "$name"\n'
            "done\n" + script
        )
    run |= {"env": env, "shell": "bash", "run": script}
    steps.append(run)
    return steps


def _secret_names(source: ExportSource, options: GithubOptions) -> list[str]:
    names = [] if options.profiles_in_repo else [PROFILES_SECRET]
    names.extend(v.name for v in source.variables if v.name != DATABASE_URL_ENV)
    names.append(f"{DATABASE_URL_ENV} (optional)")
    return names


def _and(lines: tuple[str, ...]) -> str:
    return " and ".join(f"'{line}'" for line in lines)

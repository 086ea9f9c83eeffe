"""A schedule as a systemd `.service` and `.timer` pair that runs `dot schedule run NAME`.

The timer's `OnCalendar=` is the cron expression written value by value in the schedule's time
zone; where cron fires on a day matching the day of month OR the day of week, the timer gets
one `OnCalendar=` line for each (systemd ANDs the parts of one line). The service is a oneshot:
systemd never starts it again while it runs, so a firing during a run is dropped, as `skip`
does. Variables the profile reads come from an `EnvironmentFile=` named here, never inlined.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass

from datum_dot.scheduling.export.artifact import TIMEOUT_GRACE, ExportedFile, Rendering, describe
from datum_dot.scheduling.export.cronfields import CronFields, compact
from datum_dot.scheduling.export.definition import DEFINITION_ENV, encode_definition
from datum_dot.scheduling.export.source import ExportSource
from datum_dot.scheduling.schedules import Overlap

_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


@dataclass(frozen=True)
class SystemdOptions:
    """How the units run.

    Attributes:
        program: The `dot` to start (absolute), as `ExecStart=` words.
        user: User units (`systemctl --user`) instead of system units.
        persistent: `Persistent=true`: a firing missed while the machine was off runs at boot.
        env_file: The `EnvironmentFile=` with the profile's variables; none: the default path.
        datum_home: `DATUM_HOME` for user units when it is not `~/.datum`.
    """

    program: tuple[str, ...]
    user: bool = False
    persistent: bool = False
    env_file: str | None = None
    datum_home: str | None = None


def render_units(source: ExportSource, options: SystemdOptions) -> Rendering:
    """`datum-dot-<project>-<schedule>.service` and `.timer` for one schedule."""
    unit = f"datum-dot-{source.slug}"
    schedule = source.located.schedule
    calendars = on_calendar(source.fields, source.zone)
    service = _service(source, options)
    timer_lines = [
        f"# Timer of {describe(source)}.",
        f"# cron '{schedule.cron}' in {source.zone}, as systemd calendar events.",
        "[Unit]",
        f"Description=datum-dot schedule {schedule.name} of project {source.located.project_id}",
        "",
        "[Timer]",
        *(f"OnCalendar={c}" for c in calendars),
        f"Persistent={'true' if options.persistent else 'false'}",
        # cron fires on the minute; systemd's default accuracy is a minute late at worst.
        "AccuracySec=1s",
        "",
        "[Install]",
        "WantedBy=timers.target",
    ]
    files = (
        ExportedFile(f"{unit}.service", service),
        ExportedFile(f"{unit}.timer", "\n".join(timer_lines) + "\n"),
    )
    return Rendering(files, _install_notes(unit, options, enabled=schedule.enabled))


def on_calendar(fields: CronFields, zone: str) -> tuple[str, ...]:
    """The `OnCalendar=` values that fire exactly when the cron expression does, in `zone`."""
    time = f"{_clock(fields.hours, 23)}:{_clock(fields.minutes, 59)}:00"
    months = "*" if len(fields.months) == 12 else compact(fields.months, dash="..")
    days = compact(fields.days, dash="..") if len(fields.days) < 31 else "*"
    weekdays = _weekdays(fields.weekdays) if len(fields.weekdays) < 7 else ""
    if fields.either_day:
        return (f"*-{months}-{days} {time} {zone}", f"{weekdays} *-{months}-* {time} {zone}")
    prefix = f"{weekdays} " if weekdays else ""
    return (f"{prefix}*-{months}-{days} {time} {zone}",)


def _clock(values: frozenset[int], highest: int) -> str:
    if len(values) == highest + 1:
        return "*"
    ordered = sorted(values)
    if len(ordered) > 2:
        step = ordered[1] - ordered[0]
        steps = list(range(ordered[0], highest + 1, step))
        if steps == ordered:
            return f"{ordered[0]:02d}/{step}"
    return compact(ordered, dash="..", width=2)


def _weekdays(values: frozenset[int]) -> str:
    # Monday first, as systemd counts, so `Mon..Fri` and `Sat,Sun` come out as people write them.
    order = [1, 2, 3, 4, 5, 6, 0]
    positions = [order.index(v) for v in values]
    text = compact(positions, dash="..")
    for position in range(6, -1, -1):
        text = text.replace(str(position), _DAYS[order[position]])
    return text


def _service(source: ExportSource, options: SystemdOptions) -> str:
    schedule = source.located.schedule
    env_file = options.env_file or (
        f"%h/.config/datum-dot/{source.located.project_id}.env"
        if options.user
        else f"/etc/datum-dot/{source.located.project_id}.env"
    )
    required = [v.name for v in source.variables if not v.has_default]
    names = ", ".join(v.name for v in source.variables) or "none"
    lines = [
        f"# {describe(source)}",
        f"# as a systemd service started by its timer: `dot schedule run {schedule.name}`.",
        f"# Written by `dot schedule export {schedule.name} --to systemd`: export again after "
        "changing the schedule.",
        f"# {env_file} holds the profile's variables ({names}) as NAME=value lines, mode 0600.",
    ]
    if schedule.overlap is Overlap.QUEUE:
        lines.append(
            "# overlap queue: systemd has no queue. It never starts this service while it runs,"
            " so a firing during a run is dropped, as with skip."
        )
    if not options.user:
        lines.append("# Runs as root unless you add User=: that user must be able to write the "
                     "project folder (.dot/).")  # fmt: skip
    timeout = str(math.ceil(schedule.timeout) + TIMEOUT_GRACE) if schedule.timeout else "infinity"
    lines += [
        "[Unit]",
        f"Description=datum-dot schedule {schedule.name} of project {source.located.project_id}",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        f"WorkingDirectory={_escape(str(source.located.project.path))}",
        f"Environment={_quoted(f'{DEFINITION_ENV}={encode_definition(source.definition)}')}",
    ]
    if not options.user:
        lines += ["StateDirectory=datum-dot", "Environment=DATUM_HOME=%S/datum-dot"]
    elif options.datum_home:
        lines.append(f"Environment={_quoted(f'DATUM_HOME={options.datum_home}')}")
    lines += [
        f"EnvironmentFile={'' if required else '-'}{env_file}",
        f"ExecStart={_command(options.program, schedule.name)}",
        # A oneshot's start is its whole run: systemd's default would stop dbt after 90 s.
        f"TimeoutStartSec={timeout}",
    ]
    return "\n".join(lines) + "\n"


def _command(program: tuple[str, ...], name: str) -> str:
    return " ".join(_escape(shlex.quote(word)) for word in (*program, "schedule", "run", name))


def _quoted(value: str) -> str:
    """A value systemd reads back as it is: in double quotes, `\\` and `"` escaped, `%` doubled."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{_escape(escaped)}"'


def _escape(text: str) -> str:
    return text.replace("%", "%%")


def _install_notes(unit: str, options: SystemdOptions, *, enabled: bool) -> tuple[str, ...]:
    files = f"{{dir}}/{unit}.service {{dir}}/{unit}.timer"
    if options.user:
        steps = [
            f"install -D -m 0644 -t ~/.config/systemd/user {files}",
            "systemctl --user daemon-reload",
            f"systemctl --user enable --now {unit}.timer",
            'loginctl enable-linger "$USER"  # fire while you are logged out',
        ]
    else:
        steps = [
            f"sudo install -m 0644 -t /etc/systemd/system {files}",
            "sudo systemctl daemon-reload",
            f"sudo systemctl enable --now {unit}.timer",
        ]
    if not enabled:
        steps[-1 if not options.user else 2] = (
            f"# the schedule is paused: enable {unit}.timer after `dot schedule resume`"
        )
    return ("install:", *(f"  {step}" for step in steps))

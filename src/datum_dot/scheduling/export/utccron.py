"""A cron expression read in a time zone, rewritten as cron lines read in UTC (GitHub's).

Exact only for a zone whose offset from UTC is the same all year: each local (hour, minute) is
moved by the offset, a move past midnight shifts the day of week with it, and times that land
on the same minutes share a line. A zone with daylight-saving time has no fixed UTC equivalent;
with `utc_ok` its standard offset is used and the lines are an hour off in summer.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from datum_dot.errors import ScheduleError
from datum_dot.scheduling.export.cronfields import CronFields, check_portable_days, compact

MINIMUM_GAP = 5
"""GitHub runs scheduled workflows at most every 5 minutes."""


@dataclass(frozen=True)
class UtcCron:
    """The UTC cron lines of a schedule.

    Attributes:
        lines: One or more 5-field cron expressions, in UTC.
        offset: The zone's offset used, in minutes east of UTC.
        daylight_saving: The zone changes its offset during the year (only with `utc_ok`).
    """

    lines: tuple[str, ...]
    offset: int
    daylight_saving: bool


def utc_cron(fields: CronFields, zone: str, *, utc_ok: bool, year: int | None = None) -> UtcCron:
    """The cron lines that fire in UTC when `fields` fires in `zone`.

    Raises:
        ScheduleError: The zone has daylight-saving time (and not `utc_ok`), a move past
            midnight meets a restricted day of month or month, the expression fires more often
            than every 5 minutes, or it is read differently outside Debian's cron.
    """
    _check_gaps(fields)
    check_portable_days(fields, "GitHub")
    offsets = _offsets(zone, year or datetime.now(UTC).year)
    daylight_saving = len(set(offsets.values())) > 1
    if daylight_saving and not utc_ok:
        raise ScheduleError(
            f"{zone} changes its UTC offset for daylight-saving time, and GitHub reads cron in "
            f"UTC: no fixed UTC schedule fires at '{fields.text}' local time all year",
            "schedule it in UTC (--time-zone UTC), or accept an hour's drift in summer: --utc-ok",
        )
    offset = offsets["standard"]
    by_shift: dict[int, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
    for hour in fields.hours:
        for minute in fields.minutes:
            shift, moved = divmod(hour * 60 + minute - offset, 24 * 60)
            by_shift[shift][moved // 60].add(moved % 60)
    lines: list[str] = []
    for shift in sorted(by_shift):
        days, weekdays = _days(fields, shift)
        hours_by_minutes: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for hour, minutes in sorted(by_shift[shift].items()):
            hours_by_minutes[tuple(sorted(minutes))].append(hour)
        months = "*" if len(fields.months) == 12 else compact(fields.months)
        for minute_list, hours in sorted(hours_by_minutes.items(), key=lambda kv: kv[1]):
            lines.append(f"{_list(minute_list, 60)} {_list(hours, 24)} {days} {months} {weekdays}")
    return UtcCron(tuple(lines), offset, daylight_saving)


def _days(fields: CronFields, shift: int) -> tuple[str, str]:
    every_day = fields.either_day and (len(fields.days) == 31 or len(fields.weekdays) == 7)
    days = "*" if every_day or len(fields.days) == 31 else compact(fields.days)
    weekdays = "*" if every_day or len(fields.weekdays) == 7 else compact(fields.weekdays)
    if shift == 0:
        return days, weekdays
    if days != "*" or len(fields.months) < 12:
        raise ScheduleError(
            f"cron expression '{fields.text}': in UTC some firings move to the day "
            f"{'before' if shift < 0 else 'after'}, and a moved day of month or month is not "
            "a cron field",
            "schedule it in UTC (--time-zone UTC), or at a time that stays on the same day in UTC",
        )
    if weekdays != "*":
        weekdays = compact((d + shift) % 7 for d in fields.weekdays)
    return days, weekdays


def _list(values: tuple[int, ...] | list[int], size: int) -> str:
    return "*" if len(values) == size else compact(values)


def _offsets(zone: str, year: int) -> dict[str, int]:
    """Minutes east of UTC in January and July, and the standard one (without DST)."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    found: dict[str, int] = {}
    for label, month in (("january", 1), ("july", 7)):
        moment = datetime(year, month, 1, 12, tzinfo=tz)
        offset = moment.utcoffset() or timedelta(0)
        found[label] = int(offset.total_seconds() // 60)
        if not moment.dst():
            found["standard"] = found[label]
    found.setdefault("standard", found["january"])
    return found


def _check_gaps(fields: CronFields) -> None:
    minutes = sorted(fields.minutes)
    gaps = [b - a for a, b in itertools.pairwise(minutes)]
    if len(fields.hours) > 1 or len(minutes) > 1:
        gaps.append(60 - minutes[-1] + minutes[0])
    if gaps and min(gaps) < MINIMUM_GAP:
        raise ScheduleError(
            f"cron expression '{fields.text}' fires every {min(gaps)} minute(s); GitHub runs "
            f"scheduled workflows at most every {MINIMUM_GAP} minutes",
            "fire at most every 5 minutes: for example '*/5 * * * *'",
        )

"""Cron expressions: what cron itself accepts, checked with croniter, and when they fire next.

croniter understands more than cron does (a seconds field, `L`, `W`, `#`, `?`, `H`); a line cron
cannot read would never fire, so those are refused here with the reason. Fire times are computed
in the machine's local time zone, the one the cron daemon uses (`/etc/localtime`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

from datum_dot.errors import ScheduleError

MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
EXAMPLE = '"0 6 * * *" (06:00 every day), "*/15 * * * *" (every 15 minutes) or "@hourly"'
_FIELDS = ("minute", "hour", "day of month", "month", "day of week")
# What Vixie/Debian cron reads in a field: numbers, names (jan, mon), `*`, ranges, steps, lists.
_FIELD = re.compile(r"[0-9A-Za-z*/,-]+")
_EXTENSIONS = {"L": "last", "W": "weekday", "#": "nth weekday", "?": "no value", "H": "hashed"}
_ZONEINFO = "/usr/share/zoneinfo/"


@dataclass(frozen=True)
class CronExpression:
    """A cron expression cron and croniter both accept.

    Attributes:
        text: The expression, fields separated by single spaces (`0 6 * * *`, `@daily`).
    """

    text: str

    def next_times(self, count: int, *, after: datetime | None = None) -> list[datetime]:
        """The next `count` fire times after `after` (default now), in the local time zone."""
        from croniter import croniter

        start = (after or datetime.now(local_zone())).astimezone(local_zone())
        it = croniter(self.text, start)
        return [it.get_next(datetime) for _ in range(count)]

    def previous_time(self, *, before: datetime | None = None) -> datetime:
        """The last fire time before `before` (default now), in the local time zone."""
        from croniter import croniter

        start = (before or datetime.now(local_zone())).astimezone(local_zone())
        result: datetime = croniter(self.text, start).get_prev(datetime)
        return result


def parse_cron(text: str) -> CronExpression:
    """Check a cron expression as cron reads it: five fields, or one of the `@` macros.

    Raises:
        ScheduleError: It is empty, has a seconds field, uses a croniter-only extension, or a
            field is out of range; the message says which, the hint gives examples.
    """
    words = text.split()
    if not words:
        raise _invalid(text, "it is empty")
    if words[0].startswith("@"):
        return _macro(text, words)
    if len(words) == 6:
        raise _invalid(
            text, "it has 6 fields: cron has no seconds field (minute hour day month weekday)"
        )
    if len(words) != 5:
        raise _invalid(text, f"it has {len(words)} fields; cron needs 5: {', '.join(_FIELDS)}")
    for name, word in zip(_FIELDS, words, strict=True):
        for mark, meaning in _EXTENSIONS.items():
            if mark in word.upper() if mark in "LWH" else mark in word:
                if mark in "LWH" and _is_name(word):
                    continue  # `jul`, `wed`, `thu`: month and day names hold these letters
                raise _invalid(
                    text, f"the {name} field '{word}' uses '{mark}' ({meaning}), which cron lacks"
                )
        if not _FIELD.fullmatch(word):
            raise _invalid(text, f"the {name} field '{word}' holds characters cron does not read")
    expression = CronExpression(" ".join(words))
    _check_with_croniter(expression, text)
    return expression


def local_zone() -> tzinfo:
    """The machine's time zone as cron sees it: `/etc/localtime`, else the process's own."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        target = str(Path("/etc/localtime").readlink())
    except OSError:
        target = ""
    if _ZONEINFO in target:
        try:
            return ZoneInfo(target.split(_ZONEINFO, 1)[1])
        except (ZoneInfoNotFoundError, ValueError):
            pass
    name = _timezone_file()
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None  # noqa: S101 - astimezone() always sets one
    return zone


def zone_name(moment: datetime) -> str:
    """The name of a time's zone for people: `Europe/Berlin`, `UTC`, or its abbreviation."""
    key = getattr(moment.tzinfo, "key", None)
    if isinstance(key, str):
        return key.removeprefix("Etc/")
    return moment.tzname() or "local time"


def _macro(text: str, words: list[str]) -> CronExpression:
    macro = words[0].lower()
    if len(words) > 1:
        raise _invalid(text, f"{macro} takes no fields after it")
    if macro == "@reboot":
        raise _invalid(text, "@reboot fires at boot, not at a time: a schedule needs a time")
    if macro not in MACROS:
        raise _invalid(text, f"{words[0]} is not a cron macro; cron knows {', '.join(MACROS)}")
    return CronExpression(macro)


def _check_with_croniter(expression: CronExpression, text: str) -> None:
    from croniter import CroniterBadCronError, CroniterBadDateError, croniter

    try:
        croniter(expression.text, datetime.now(local_zone())).get_next(datetime)
    except CroniterBadDateError as e:
        raise _invalid(text, "it never fires (no date matches it)") from e
    except (CroniterBadCronError, ValueError, KeyError) as e:
        raise _invalid(text, str(e).replace(f"[{expression.text}] ", "")) from e


def _is_name(word: str) -> bool:
    return any(part.isalpha() and len(part) == 3 for part in re.split(r"[,/-]", word))


def _timezone_file() -> str:
    try:
        return Path("/etc/timezone").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _invalid(text: str, why: str) -> ScheduleError:
    return ScheduleError(
        f"invalid cron expression '{text}': {why}",
        f"use 5 fields (minute hour day-of-month month day-of-week), for example {EXAMPLE}",
    )

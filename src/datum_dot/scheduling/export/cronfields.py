"""A cron expression as the sets of values cron matches, for translating it to other schedulers.

`parse_cron` has already checked the expression; this module reads it as Debian's cron does:
names (`jan`, `mon`), ranges, steps, lists, day of week 7 as Sunday, the `@` macros, and the
rule that day of month and day of week are OR-ed when both fields are restricted, where a field
counts as unrestricted when its text starts with `*` (so `*/2` does too).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from datum_dot.errors import ScheduleError
from datum_dot.scheduling.cronexpr import parse_cron

MACRO_FIELDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (lowest, highest, names whose index + offset is the value) per field, as cron reads them.
_RANGES = ((0, 59, (), 0), (0, 23, (), 0), (1, 31, (), 0), (1, 12, _MONTHS, 1), (0, 7, _DAYS, 0))


@dataclass(frozen=True)
class CronFields:
    """The values a cron expression matches, field by field.

    Attributes:
        text: The expression as given (a macro stays a macro).
        words: The five fields as written (a macro's expansion).
        minutes: Minutes, 0-59.
        hours: Hours, 0-23.
        days: Days of the month, 1-31.
        months: Months, 1-12.
        weekdays: Days of the week, 0-6 with 0 Sunday (cron's 7 is folded into 0).
    """

    text: str
    words: tuple[str, str, str, str, str]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]

    @property
    def days_restricted(self) -> bool:
        """Day of month is restricted, as cron decides it (its text does not start with `*`)."""
        return not self.words[2].startswith("*")

    @property
    def weekdays_restricted(self) -> bool:
        """Day of week is restricted, as cron decides it (its text does not start with `*`)."""
        return not self.words[4].startswith("*")

    @property
    def either_day(self) -> bool:
        """Cron fires on a day that matches day of month OR day of week (both restricted)."""
        return self.days_restricted and self.weekdays_restricted


def cron_fields(text: str) -> CronFields:
    """The values of a cron expression cron accepts.

    Raises:
        ScheduleError: It is not one (`parse_cron`'s message), or it steps from a single value
            (`5/10`), which cron implementations read differently.
    """
    expression = parse_cron(text).text
    words = MACRO_FIELDS.get(expression, expression).split()
    values = [_field(word, *limits) for word, limits in zip(words, _RANGES, strict=True)]
    weekdays = frozenset(d % 7 for d in values[4])
    minute, hour, day, month, weekday = words
    return CronFields(
        text=expression,
        words=(minute, hour, day, month, weekday),
        minutes=values[0],
        hours=values[1],
        days=values[2],
        months=values[3],
        weekdays=weekdays,
    )


def check_portable_days(fields: CronFields, scheduler: str) -> None:
    """Refuse what `scheduler` reads differently from Debian's cron: `*/2` with a restricted day.

    Debian's cron ORs day of month and day of week only when neither field starts with `*`;
    other crons (Kubernetes', GitHub's) count `*/2` as restricted and OR it too.

    Raises:
        ScheduleError: One day field starts with `*` but is not `*`, and the other is not `*`.
    """
    day, weekday = fields.words[2], fields.words[4]
    for mine, other in ((day, weekday), (weekday, day)):
        if mine.startswith("*") and mine != "*" and other != "*":
            raise ScheduleError(
                f"cron expression '{fields.text}': {scheduler} reads '{mine}' with '{other}' "
                "differently from cron (day of month OR day of week)",
                "write the day of month or the day of week as a list of values instead",
            )


def compact(values: Iterable[int], *, dash: str = "-", width: int = 0) -> str:
    """Sorted values as a list of single values and runs of three or more: `1-5,7`.

    `width` pads each number with zeros (`09..17`).
    """
    ordered = sorted(set(values))
    parts: list[str] = []
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        if end - start >= 2:
            parts.append(f"{ordered[start]:0{width}d}{dash}{ordered[end]:0{width}d}")
        else:
            parts.extend(f"{v:0{width}d}" for v in ordered[start : end + 1])
        start = end + 1
    return ",".join(parts)


def _field(word: str, low: int, high: int, names: tuple[str, ...], offset: int) -> frozenset[int]:
    found: set[int] = set()
    for part in word.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = low, high
        elif "-" in span:
            a, b = span.split("-", 1)
            first, last = _value(a, names, offset), _value(b, names, offset)
        else:
            if step_text:
                raise ScheduleError(
                    f"the cron field '{word}' steps from a single value: Debian's cron reads "
                    f"'{part}' as {span} alone, croniter and other schedulers as {span}-{high}/"
                    f"{step_text}",
                    f"write the range out: {span}-{high}/{step_text}",
                )
            first = last = _value(span, names, offset)
        found.update(range(first, last + 1, step))
    return frozenset(found)


def _value(word: str, names: tuple[str, ...], offset: int) -> int:
    lowered = word.lower()
    if lowered in names:
        return names.index(lowered) + offset
    return int(word)

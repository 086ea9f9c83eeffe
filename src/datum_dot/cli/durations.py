"""Durations and ages on the command line: `90s`, `10m`, `1h30m`, `2d`, `1w`, or a bare number.

One grammar for every option that takes a length of time (`--timeout`, `--retry-delay`,
`--grace`, `--older-than`, `--since`): a bare number keeps the option's own unit (seconds for
timeouts), and units are lower-case only. `1M` is refused rather than read as a minute: to
a reader it may as well be a month.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

from datum_dot.errors import UsageError

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
"""Seconds per unit: s, m, h, d, w (lower-case)."""
_NAMES = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PART = re.compile(r"(\d+(?:\.\d+)?)([a-zA-Z]+)")
_BARE = re.compile(r"\d+(?:\.\d+)?")
_LONGEST = 100 * 366 * 86400.0

DurationType = Callable[[str], float]
"""An argparse `type=` that returns seconds."""


def parse_seconds(text: str, option: str) -> float:
    """Parse a duration into seconds: `90`, `90s`, `10m`, `1h30m`, `2d`, `1w`, `1.5h`.

    Args:
        text: What was typed.
        option: The option's name, for the message (`--timeout`).

    Raises:
        UsageError: Not a duration, an upper-case or unknown unit, or longer than 100 years.
    """
    cleaned = text.strip()
    hint = f"give a number with a unit (s, m, h, d, w; lower-case), for example {option} 10m"
    if _BARE.fullmatch(cleaned):
        seconds = float(cleaned)  # a bare number keeps the unit these options always had
    else:
        parts = _PART.findall(cleaned)
        if not parts or _PART.sub("", cleaned):
            raise UsageError(f"{option} '{text}' is not a duration", hint)
        seconds = 0.0
        for number, unit in parts:
            if unit not in UNITS:
                raise UsageError(_unit_message(option, text, unit), hint)
            seconds += float(number) * UNITS[unit]
    if not math.isfinite(seconds) or seconds > _LONGEST:
        raise UsageError(f"{option} '{text}' is longer than 100 years", hint)
    return seconds


def _unit_message(option: str, text: str, unit: str) -> str:
    lower = unit.lower()
    if lower in UNITS:
        return (
            f"{option} '{text}': units are lower-case; '{unit}' is refused rather than guessed "
            f"(write {lower} for {_NAMES[lower]})"
        )
    return f"{option} '{text}': unknown unit '{unit}'"


def seconds_type(option: str, *, zero: bool) -> DurationType:
    """An argparse `type=` for a length of time in seconds (a bare number is seconds).

    Args:
        option: The option's name, for messages.
        zero: Whether 0 is allowed.
    """

    def parse(text: str) -> float:
        value = parse_seconds(text, option)
        if not zero and value <= 0:
            raise UsageError(
                f"{option} must be more than 0, got '{text}'", f"pass {option} 10m, for example"
            )
        return value

    parse.duration_unit = "s"  # type: ignore[attr-defined]
    return parse


def age_type(option: str) -> Callable[[str], str]:
    """An argparse `type=` that checks an age (`14d`, `12h`) and keeps the text as typed.

    The command reads the text itself (an age, or for `--since` also a date); this check makes
    `1M` and other upper-case units an error at once, whichever command reads it.
    """

    def check(text: str) -> str:
        if _looks_like_date(text):
            return text
        if _BARE.fullmatch(text.strip()):
            raise UsageError(
                f"{option} '{text}' has no unit", f"for example {option} {text.strip()}d"
            )
        try:
            parse_seconds(text, option)
        except UsageError as e:
            if not e.message.endswith("is not a duration"):
                raise  # an upper-case or unknown unit: its own message says which
            dates = " or a date (2026-01-31)" if option == "--since" else ""
            raise UsageError(
                f"{option} '{text}' is not an age",
                f"give a number with a unit (s, m, h, d, w), for example {option} 2d, 12h, 30m"
                f"{dates}",
            ) from e
        return text

    check.duration_unit = "age"  # type: ignore[attr-defined]
    return check


def _looks_like_date(text: str) -> bool:
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", text.strip()))


def is_duration_action(action: argparse.Action) -> bool:
    """Whether an option was declared with one of this module's types (for the parser's tests)."""
    return getattr(action.type, "duration_unit", None) is not None

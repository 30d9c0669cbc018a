"""How instants and spans of time read to a person: a date in the display zone with its
abbreviation, the time alone when it is today, "2h 5m" rather than seconds, how late or how
long left. Pure: `now` and the zone are arguments."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Final

__all__ = ["date_or_none", "duration", "late", "left", "short_date", "when"]


def date_or_none(moment: datetime | None, zone: tzinfo) -> str:
    return when(moment, zone) if moment is not None else "none"


def when(moment: datetime, zone: tzinfo = UTC) -> str:
    """A date and time in the display zone, with the zone's abbreviation (CST, CEST, UTC)."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def short_date(moment: datetime, now: datetime, zone: tzinfo) -> str:
    """The time alone when it is the same day as `now` in the zone, else with the date."""
    local, today = moment.astimezone(zone), now.astimezone(zone)
    if local.date() == today.date():
        return local.strftime("%H:%M")
    return local.strftime("%b %d %H:%M" if local.year == today.year else "%Y-%m-%d %H:%M")


def late(deadline: datetime | None, now: datetime) -> str:
    if deadline is None:
        return "unknown"
    seconds = (now - deadline).total_seconds()
    # Overdue fires at the deadline: "0s late" and "12s late" say nothing a person can use.
    return duration(seconds) if seconds >= 60 else "less than a minute"


def left(deadline: datetime | None, now: datetime) -> str:
    return duration((deadline - now).total_seconds()) if deadline is not None else "unknown"


_UNITS: Final = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def duration(seconds: float) -> str:
    """The largest unit and the one below it, never skipping one: 45s, 12m 5s, 2h 5m, 2h
    (not "2h 5s": seconds do not matter at hours), 3d 4h. Under a second: "less than a
    second"; a review "0s late" is not a thing a person should read."""
    total = max(0, int(seconds))
    for index, (unit, size) in enumerate(_UNITS):
        if total >= size:
            count, rest = divmod(total, size)
            if index + 1 == len(_UNITS):
                return f"{count}{unit}"
            below, below_size = _UNITS[index + 1]
            more = rest // below_size
            return f"{count}{unit} {more}{below}" if more else f"{count}{unit}"
    return "less than a second"

"""Quiet hours and maintenance windows, pure: is an instant inside a sink's quiet time, and
when does that quiet time end. Instants are epoch seconds; the windows are read in the sink's
time zone (a `zoneinfo.ZoneInfo`), so "22:00" is 22:00 on the wall clock on both sides of a
daylight-saving change.

Kinds of window (one sink may have any number; they may overlap or abut):
- `days`: whole days of the week (`{days: [sat, sun]}`);
- `from`/`to`: every day from one wall-clock time to another, across midnight when `to` is
  earlier (`{from: "22:00", to: "07:00"}`); with `days`, only occurrences starting on them;
- `start`/`end` dates: whole days, both inclusive (`{start: 2026-12-20, end: 2027-01-04}`);
- one-off windows from the CLI: [start, end) in epoch seconds.
Quiet time that ends where another window begins continues: `until` is the end of it all.
Daily windows that together cover every hour of every day never end: `until` is then
`FOREVER` (math.inf), and settings refuse such a schedule (`always`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Final

__all__ = ["DAYS", "FOREVER", "Absolute", "Daily", "Dates", "Schedule", "Window", "always", "until"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FOREVER: Final = math.inf
"""`until` of a schedule that is always quiet: the quiet time has no end."""
_CHAIN = 1000
"""How many abutting windows `until` follows before it answers with the end reached so far
(only a thousand chained one-off or dated windows get there; a caller asks again then)."""
_DAY, _WEEK = 86400, 7 * 86400


@dataclass(frozen=True, slots=True)
class Daily:
    """Every day (or every listed weekday, 0 = Monday) from `start` to `end`, wall clock;
    `start == end` with days set is the whole day."""

    start: time = time(0)
    end: time = time(0)
    days: frozenset[int] = frozenset(range(7))

    def ends(self, at: float, zone: tzinfo) -> Iterable[float]:
        local = datetime.fromtimestamp(at, zone).date()
        wraps = self.end <= self.start
        for day in (local - timedelta(days=1), local):  # an occurrence from yesterday may run
            if day.weekday() not in self.days:
                continue
            begin = _at(day, self.start, zone)
            finish = _at(day + timedelta(days=1) if wraps else day, self.end, zone)
            if begin <= at < finish:
                yield finish


@dataclass(frozen=True, slots=True)
class Dates:
    """Whole days from `first` to `last`, both inclusive (a term break, a holiday)."""

    first: date
    last: date

    def ends(self, at: float, zone: tzinfo) -> Iterable[float]:
        begin = _at(self.first, time(0), zone)
        finish = _at(self.last + timedelta(days=1), time(0), zone)
        if begin <= at < finish:
            yield finish


@dataclass(frozen=True, slots=True)
class Absolute:
    """[start, end) in epoch seconds: a one-off window (`spmon quiet add`)."""

    start: float
    end: float

    def ends(self, at: float, zone: tzinfo) -> Iterable[float]:
        if self.start <= at < self.end:
            yield self.end


Window = Daily | Dates | Absolute


@dataclass(frozen=True, slots=True)
class Schedule:
    """One sink's quiet windows and the zone they are read in."""

    windows: tuple[Window, ...]
    zone: tzinfo

    def with_windows(self, more: Sequence[Window]) -> Schedule:
        return Schedule((*self.windows, *more), self.zone)


def always(schedule: Schedule) -> bool:
    """Do the daily windows cover every moment of the week on the wall clock? Dated and
    one-off windows end, so they never make a schedule quiet for ever. (The wall clock, not
    instants: windows that abut only on the wall clock, e.g. one ending at 03:00 and the next
    starting 02:30, may leave a half hour of the day clocks spring forward; that is still
    read as quiet for ever, which is what such a schedule means.)"""
    spans: list[tuple[float, float]] = []
    for window in schedule.windows:
        if not isinstance(window, Daily):
            continue
        begin, end = _seconds(window.start), _seconds(window.end)
        length = end - begin if end > begin else _DAY - begin + end  # across midnight, or 24 h
        for day in window.days:
            start = day * _DAY + begin
            spans.append((start, min(start + length, _WEEK)))
            if start + length > _WEEK:  # Sunday night runs into Monday
                spans.append((0, start + length - _WEEK))
    reached = 0.0
    for start, end in sorted(spans):
        if start > reached:
            return False
        reached = max(reached, end)
    return reached >= _WEEK


def until(schedule: Schedule, at: float) -> float | None:
    """The end of the quiet time `at` is in (following abutting or overlapping windows),
    FOREVER when the schedule is always quiet, or None when `at` is not quiet."""
    if always(schedule):
        return FOREVER
    moment = at
    for _ in range(_CHAIN):
        ends = [end for window in schedule.windows for end in window.ends(moment, schedule.zone)]
        if not ends:
            break
        moment = max(ends)
    return moment if moment > at else None


def _seconds(clock: time) -> float:
    return clock.hour * 3600 + clock.minute * 60 + clock.second + clock.microsecond / 1e6


def _at(day: date, clock: time, zone: tzinfo) -> float:
    """A wall-clock time on a day in `zone`, as epoch seconds. fold=0 (PEP 495) reads a time
    skipped by a DST change with the offset before it (an instant after the gap) and a
    repeated time as its first occurrence: either way the window neither vanishes nor
    doubles."""
    return datetime.combine(day, clock).replace(tzinfo=zone).timestamp()

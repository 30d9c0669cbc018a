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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

__all__ = ["DAYS", "Absolute", "Daily", "Dates", "Schedule", "Window", "until"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CHAIN = 1000
"""How many abutting windows `until` follows (a schedule quiet all week ends "never")."""


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


def until(schedule: Schedule, at: float) -> float | None:
    """The end of the quiet time `at` is in (following abutting or overlapping windows), or
    None when `at` is not quiet."""
    moment = at
    for _ in range(_CHAIN):
        ends = [end for window in schedule.windows for end in window.ends(moment, schedule.zone)]
        if not ends:
            break
        moment = max(ends)
    return moment if moment > at else None


def _at(day: date, clock: time, zone: tzinfo) -> float:
    """A wall-clock time on a day in `zone`, as epoch seconds. fold=0 (PEP 495) reads a time
    skipped by a DST change with the offset before it (an instant after the gap) and a
    repeated time as its first occurrence: either way the window neither vanishes nor
    doubles."""
    return datetime.combine(day, clock).replace(tzinfo=zone).timestamp()

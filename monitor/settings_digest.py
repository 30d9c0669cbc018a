"""A sink's batching and timing settings: `digest:`, `quiet:` with its `timezone`, and
`escalate:`; their one-line checks, and the pure values `wiring` builds from them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic
from pydantic import BaseModel, Field

from monitor.core import digest, quiet
from monitor.settings_types import STRICT, Seconds

__all__ = [
    "DigestSettings",
    "EscalateSettings",
    "QuietSettings",
    "SinkTiming",
    "batching_problem",
    "escalation_problem",
    "quiet_schedule",
]

HUMAN = frozenset({"slack", "teams", "email", "log"})
"""Sinks a person reads; the others (signed webhooks, Alertmanager) never batch."""


class DigestSettings(BaseModel):
    """`digest: {window: 2m, group_by: [course], max_items: 10}`."""

    model_config = STRICT
    window: Annotated[Seconds, Field(gt=0, le=86400)] = 120.0
    """Events of this long after the first one go as one message per group."""
    group_by: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    """Watch labels (or event fields) whose values split a digest, e.g. [course]."""
    max_items: Annotated[int, Field(ge=1, le=50)] = 10
    """Items listed per message, worst first; the rest are "and N more" with a link."""

    def policy(self) -> digest.Policy:
        return digest.Policy(self.window, tuple(self.group_by), self.max_items)


def _clock(value: object) -> object:
    """ "22:00"; PyYAML reads an unquoted 22:00 as the base-60 number 1320: minutes."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return time(value // 60, value % 60)
    return value


Clock = Annotated[time, pydantic.BeforeValidator(_clock)]


class QuietSettings(BaseModel):
    """One quiet window: `{days: [sat, sun]}`, `{from: "22:00", to: "07:00"}` (with days:
    only nights starting on them), or `{start: 2026-12-20, end: 2027-01-04}` (whole days,
    both inclusive)."""

    model_config = STRICT
    days: list[str] | None = None
    from_: Clock | None = Field(default=None, alias="from")
    to: Clock | None = None
    start: date | None = None
    end: date | None = None

    @pydantic.model_validator(mode="after")
    def _shape(self) -> QuietSettings:
        unknown = sorted(set(self.days or ()) - set(quiet.DAYS))
        if unknown:
            raise ValueError(f"unknown day {unknown[0]!r}; use {', '.join(quiet.DAYS)}")
        daily = self.from_ is not None or self.to is not None
        dates = self.start is not None or self.end is not None
        if daily and (self.from_ is None or self.to is None):
            raise ValueError("a daily quiet window needs both from and to")
        if dates and (self.start is None or self.end is None):
            raise ValueError("a dated quiet window needs both start and end")
        if dates and (daily or self.days):
            raise ValueError("a dated quiet window (start/end) takes no days, from or to")
        if not (daily or dates or self.days):
            raise ValueError("a quiet window needs days, from/to, or start/end")
        if self.start and self.end and self.end < self.start:
            raise ValueError("quiet window ends before it starts")
        if not (daily or dates) and set(self.days or ()) == set(quiet.DAYS):
            raise ValueError("a quiet window of every day of the week never ends")
        if daily and self.from_ == self.to:
            raise ValueError("from and to are the same time; use days for whole days")
        return self

    def window(self) -> quiet.Window:
        if self.start is not None and self.end is not None:
            return quiet.Dates(self.start, self.end)
        days = frozenset(quiet.DAYS.index(day) for day in self.days or quiet.DAYS)
        return quiet.Daily(self.from_ or time(0), self.to or time(0), days)


class EscalateSettings(BaseModel):
    """`escalate: [{after: 4h, to: oncall}]`: a review still overdue this long after its
    deadline raises `review.escalated` (level = position in the list, from 1) to that sink."""

    model_config = STRICT
    after: Annotated[Seconds, Field(gt=0)]
    to: Annotated[str, Field(min_length=1)]


class SinkTiming(BaseModel):
    """The part of a sink's settings that says when and how many at once (a base of
    `SinkSettings`, so that class stays one screen of where and how)."""

    model_config = STRICT
    digest: DigestSettings | None = None
    """Human sinks: the events of a window as one message per group (see DigestSettings)."""
    quiet: list[QuietSettings] = Field(default_factory=list)
    """Quiet hours and maintenance windows: events are held, then sent as one digest."""
    timezone: str | None = None
    """IANA zone the quiet windows are read in (default UTC)."""
    escalate: list[EscalateSettings] = Field(default_factory=list)
    """Reviews still overdue this long after their deadline also go to another sink."""

    @pydantic.field_validator("quiet")
    @classmethod
    def _ends(cls, windows: list[QuietSettings]) -> list[QuietSettings]:
        schedule = quiet.Schedule(tuple(w.window() for w in windows), UTC)  # no zone makes a gap
        if quiet.always(schedule):
            raise ValueError("covers every hour of every day, nothing would ever be sent")
        return windows


def escalation_problem(sinks: Sequence[Any]) -> None:
    names = {sink.name for sink in sinks}
    for sink in sinks:
        for level in sink.escalate:
            if level.to not in names:
                raise ValueError(f"sink {sink.name!r} escalates to unknown sink {level.to!r}")


def batching_problem(kind: str, values: Any) -> None:
    """Machine sinks refuse `digest`; escalation levels must grow. Raises ValueError."""
    if values.digest is not None and kind not in HUMAN:
        raise ValueError(
            f"digest only applies to slack, teams, email and log sinks ({kind} receivers act"
            " on each event)"
        )
    afters = [level.after for level in values.escalate]
    if afters != sorted(set(afters)):
        raise ValueError("escalate levels need increasing after durations")
    if values.timezone is not None:
        try:
            ZoneInfo(values.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {values.timezone!r}") from exc


def quiet_schedule(windows: list[QuietSettings], zone: str | None) -> quiet.Schedule | None:
    if not windows:
        return None
    return quiet.Schedule(tuple(w.window() for w in windows), ZoneInfo(zone or "UTC"))

"""How the status page says things: times in the display zone, ages in words, and what spmon
cannot see right now. Pure: `now` and the zone are arguments.

The page's one promise is that it never calls blindness good news: `blind_spots` lists every
reason the counts may be short (sessions never seen, the API refusing the token or
unreachable, a sink not delivering), and the headline says "unknown" while any holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from urllib.parse import quote

from monitor.core.events import Value
from monitor.core.timetext import duration
from monitor.core.views import Summary

__all__ = ["Blind", "Clockface", "blind_spots", "headline", "path_part", "shown", "web_link"]


@dataclass(frozen=True, slots=True)
class Clockface:
    """Times as the page prints them: in one zone, and relative to one `now`."""

    zone: tzinfo
    now: datetime

    @property
    def zone_name(self) -> str:
        return str(getattr(self.zone, "key", None) or self.now.astimezone(self.zone).tzname())

    def when(self, moment: datetime | None) -> str:
        if moment is None:
            return "unknown"
        return moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M %Z")

    def iso(self, moment: datetime) -> str:
        """For a `<time datetime>` attribute: machines and screen readers get the instant."""
        return moment.isoformat()

    def relative(self, moment: datetime | None) -> str:
        """ "3h 5m ago" or "in 2d 4h"."""
        if moment is None:
            return "unknown"
        seconds = (moment - self.now).total_seconds()
        if abs(seconds) < 1:
            return "now"
        return f"in {duration(seconds)}" if seconds > 0 else f"{duration(-seconds)} ago"

    def late(self, seconds: float | None) -> str:
        return "unknown" if seconds is None else duration(seconds)


@dataclass(frozen=True, slots=True)
class Blind:
    """One reason the page cannot be trusted to show every overdue review."""

    title: str
    detail: str
    hides_sessions: bool = True
    """False for what only delays alerts (a sink down): the counts themselves still hold."""


def blind_spots(summary: Summary) -> list[Blind]:
    spots: list[Blind] = []
    api = summary.api
    if not summary.running:
        spots.append(Blind("No running service", "Read from the state file alone."))
    if summary.unseen:
        spots.append(
            Blind(
                f"{summary.unseen} of {summary.watched} sessions not seen yet",
                "Their status and deadlines are unknown: the overdue count is only a floor.",
            )
        )
    if api.auth_failing:
        spots.append(
            Blind(
                "The SmarterProctoring API rejects spmon's credentials",
                "Sessions are not being polled: everything below is as last seen.",
            )
        )
    if api.breaker_open:
        spots.append(
            Blind(
                "The SmarterProctoring API is failing",
                "Polls are held back until it recovers: everything below is as last seen.",
            )
        )
    for sink in summary.sinks:
        if sink.state in ("down", "paused"):
            spots.append(
                Blind(
                    f"Sink {sink.name} is {sink.state}",
                    f"{sink.pending} alerts wait for it; nobody is told through it now.",
                    hides_sessions=False,
                )
            )
    return spots


def headline(summary: Summary, spots: list[Blind]) -> str:
    """The overdue count in words: "unknown" rather than a zero spmon cannot vouch for."""
    sees = summary.overdue_known and not any(spot.hides_sessions for spot in spots)
    if summary.overdue:
        count = f"{summary.overdue} review{'s' if summary.overdue != 1 else ''} overdue"
        return count if summary.overdue_known else f"At least {count}"
    return "No reviews overdue" if sees else "Overdue reviews: unknown"


def shown(value: Value, clock: Clockface) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return clock.when(value)
    return str(value)


def web_link(url: str | None) -> str | None:
    """Only a web link becomes a link (never javascript:, never data:), as in alerts."""
    if url is not None and url.startswith(("https://", "http://")) and len(url) < 3000:
        return url
    return None


def path_part(text: str) -> str:
    return quote(text, safe="")

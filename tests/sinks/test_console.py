"""Alert lines for a terminal, durations and display times: pure, properties where natural."""

from __future__ import annotations

import io
import logging
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import strategies
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.typing import EventDict

from monitor import logs
from monitor.core import console, digest, render, timetext
from monitor.core.events import Event, EventType
from monitor.sinks import LogSink
from tests.conftest import named
from tests.sinks.sinkkit import make_event

LINE = re.compile(r"\d\d:\d\d:\d\d [A-Z ]{9} \S.*")
NOW = datetime(2026, 11, 18, 23, 3, tzinfo=UTC)


@settings(deadline=None)
@given(event=strategies.events(), late=st.floats(min_value=0, max_value=10**7))
def test_every_event_is_one_line_of_at_most_100_columns(event: Event, late: float) -> None:
    shown = console.line(event, event.observed_at + timedelta(seconds=late))
    assert "\n" not in shown and len(shown) <= console.WIDTH
    assert LINE.fullmatch(shown), shown
    painted = console.painted(shown, render.severity(event))
    assert re.sub(r"\x1b\[[0-9;]*m", "", painted) == shown


UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


@given(st.floats(min_value=0, max_value=10**9, allow_nan=False))
def test_durations_never_skip_a_unit_and_never_say_zero(seconds: float) -> None:
    text = timetext.duration(seconds)
    if seconds < 1:
        assert text == "less than a second"
        return
    parts = text.split()
    assert 1 <= len(parts) <= 2
    assert all(not part.startswith("0") for part in parts)
    names = [part[-1] for part in parts]
    order = list(UNITS)
    if len(names) == 2:
        assert order.index(names[1]) == order.index(names[0]) + 1  # adjacent: no "2h 5s"
    shown = sum(int(part[:-1]) * UNITS[part[-1]] for part in parts)
    # Truncated, never rounded up, by less than the unit below the largest one shown.
    below = order[min(order.index(names[0]) + 1, len(order) - 1)]
    assert shown <= seconds < shown + UNITS[below]


def test_overdue_at_its_deadline_is_less_than_a_minute_late() -> None:
    event = make_event(
        1, 1, kind=EventType.REVIEW_OVERDUE, at=datetime(2026, 11, 18, 8, 0, 3, tzinfo=UTC)
    )
    assert "less than a minute late" in render.view(event, event.observed_at).headline
    assert "overdue just now" in console.line(event, event.observed_at)
    assert "0s" not in render.text(event, event.observed_at)


def test_times_show_in_the_display_zone_with_its_abbreviation() -> None:
    event = make_event(1, 1, kind=EventType.REVIEW_OVERDUE, at=NOW)
    chicago = ZoneInfo("America/Chicago")
    assert "due 2026-11-18 02:00 CST" in render.view(event, NOW, chicago).headline
    assert "detected 2026-11-18 17:03 CST" in str(render.slack_message(event, NOW, chicago))
    assert console.line(event, NOW, chicago).startswith("17:03:00 OVERDUE")
    assert "due 08:00 UTC" in render.view(event, NOW).headline.replace("2026-11-18 ", "")


@pytest.mark.parametrize(
    ("kind", "severity"),
    [
        (EventType.REVIEW_OVERDUE, render.Severity.CRITICAL),
        (EventType.REVIEW_OVERDUE_RESOLVED, render.Severity.RESOLVED),
        (EventType.REVIEW_DUE_SOON, render.Severity.WARNING),
        (EventType.STATUS_CHANGED, render.Severity.INFO),
    ],
)
def test_severity_by_type(kind: EventType, severity: render.Severity) -> None:
    assert render.severity(make_event(1, 1, kind=kind)) is severity


@pytest.mark.parametrize("fmt", ["console", "json"])
async def test_the_log_sink_prints_the_line_on_a_console_and_fields_in_json(fmt: str) -> None:
    out = io.StringIO()
    logs.configure(fmt, "info", stream=out)  # type: ignore[arg-type]
    try:
        event = make_event(1, 1, kind=EventType.REVIEW_OVERDUE, at=NOW)
        await LogSink(zone=ZoneInfo("America/Chicago")).deliver(event, b"", now=NOW.timestamp())
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
    printed = out.getvalue()
    if fmt == "console":
        assert printed == console.line(event, NOW, ZoneInfo("America/Chicago")) + "\n"
        assert "\x1b[" not in printed  # not a terminal: no colour codes
    else:
        assert '"line"' not in printed
        assert '"severity": "critical"' in printed and '"summary": "Review overdue' in printed


@pytest.mark.parametrize(
    ("zone", "due"),
    [(UTC, "08:00 UTC"), (ZoneInfo("America/Chicago"), "02:00 CST")],
    ids=["utc", "chicago"],
)
async def test_the_log_sinks_digest_shows_times_in_the_display_zone(
    log_events: list[EventDict], zone: ZoneInfo, due: str
) -> None:
    events = [make_event(n, 1, kind=EventType.REVIEW_OVERDUE) for n in (1, 2)]
    (found,) = digest.group(enumerate(events, start=1), digest.Policy())
    sent = datetime(2026, 11, 18, 9, 0, tzinfo=UTC).timestamp()
    await LogSink(zone=zone).deliver_digest(found, now=sent, status_url=None)
    (entry,) = named(log_events, "alert.digest")
    assert entry["summary"].count(f"was due 2026-11-18 {due}") == 2


@pytest.mark.parametrize("labels", [{" ": ""}, {"room": "A\n\nB"}, {"\t": "\n"}])
def test_a_blank_or_multi_line_label_neither_blanks_the_column_nor_breaks_the_line(
    labels: dict[str, str],
) -> None:
    shown = console.line(make_event(1, 2, labels=labels), NOW)
    assert LINE.fullmatch(shown), shown
    assert "\n" not in shown and "\t" not in shown

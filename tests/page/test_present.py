"""What the page says, as pure values: the blind spots and the headline over summaries."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from monitor.core.views import ApiHealth, SinkHealth, Summary
from monitor.web import present
from tests.clockkit import T0

SEEN = Summary(
    at=T0, running=True, watched=3, unseen=0, by_status={"Closed": 3}, by_phase=None,
    pending=1, overdue=0, due_soon=0, oldest_overdue=None,
    sinks=(SinkHealth("alerts", "up", 0, 0),),
    api=ApiHealth(auth_failing=False, breaker_open=False, last_success=T0),
)  # fmt: skip


def said(summary: Summary) -> tuple[str, list[str]]:
    spots = present.blind_spots(summary)
    return present.headline(summary, spots), [spot.title for spot in spots]


def test_zero_is_good_news_only_when_every_session_was_seen_and_the_api_answers() -> None:
    assert said(SEEN) == ("No reviews overdue", [])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"unseen": 1}, "1 of 3 sessions not seen yet"),
        ({"api": ApiHealth(auth_failing=True)}, "The SmarterProctoring API rejects spmon's credentials"),
        ({"api": ApiHealth(breaker_open=True)}, "The SmarterProctoring API is failing"),
        ({"running": False}, "No running service"),
    ],
)  # fmt: skip
def test_a_zero_spmon_cannot_vouch_for_is_unknown(change: dict[str, object], reason: str) -> None:
    headline, reasons = said(dataclasses.replace(SEEN, **change))  # type: ignore[arg-type]
    assert headline == "Overdue reviews: unknown" and reason in reasons


def test_an_overdue_count_with_sessions_unseen_is_a_floor() -> None:
    summary = dataclasses.replace(SEEN, unseen=1, overdue=2)
    assert said(summary)[0] == "At least 2 reviews overdue"
    assert said(dataclasses.replace(SEEN, overdue=1))[0] == "1 review overdue"


def test_a_sink_down_is_named_but_does_not_hide_sessions() -> None:
    summary = dataclasses.replace(SEEN, sinks=(SinkHealth("pager", "down", 4, 1),))
    assert said(summary) == ("No reviews overdue", ["Sink pager is down"])


def test_times_read_in_the_display_zone_and_relative_to_now() -> None:
    from zoneinfo import ZoneInfo

    clock = present.Clockface(ZoneInfo("America/New_York"), T0)
    assert clock.when(T0) == "2026-03-01 07:00 EST" and clock.zone_name == "America/New_York"
    assert clock.relative(T0 + timedelta(hours=2, minutes=5)) == "in 2h 5m"
    assert clock.relative(T0 - timedelta(days=3, hours=4)) == "3d 4h ago"
    assert clock.when(None) == "unknown" and clock.late(None) == "unknown"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "ftp://x", None])
def test_only_web_links_become_links(url: str | None) -> None:
    assert present.web_link(url) is None
    assert (
        present.web_link("https://proctoring.example.com/s/1")
        == "https://proctoring.example.com/s/1"
    )

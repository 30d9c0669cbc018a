"""display.timezone in what people read: a Teams card, a mail and every digest show times in
the zone with its abbreviation, UTC when none is given. Pure renderers, literal times (the
sinks' own tests send the same through real receivers)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from monitor.core import digest, digest_messages, messages
from monitor.core.events import Event, EventType
from tests.sinks.sinkkit import make_event

CHICAGO = ZoneInfo("America/Chicago")
SENT = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
"""make_event's detection time; its review was due at 08:00 UTC (02:00 CST)."""


def overdue(n: int) -> Event:
    return make_event(n, 1, kind=EventType.REVIEW_OVERDUE, at=SENT)


def group(*events: Event) -> digest.Group:
    (found,) = digest.group(enumerate(events, start=1), digest.Policy())
    return found


def read(message: dict[str, Any] | messages.Mail | str) -> str:
    """Everything a person could read of a message, as one string."""
    if isinstance(message, messages.Mail):
        return "\n".join((message.subject, message.text, message.html))
    return message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)


Single = Callable[..., dict[str, Any] | messages.Mail]
SINGLES: dict[str, Single] = {
    "teams": lambda event, **zone: messages.teams_message(event, SENT, **zone),
    "email": lambda event, **zone: messages.mail(event, SENT, prefix="[spmon]", **zone),
}
Digest = Callable[..., dict[str, Any] | messages.Mail | str]
DIGESTS: dict[str, Digest] = {
    "slack": lambda found, **zone: digest_messages.slack_message(found, SENT, None, **zone),
    "teams": lambda found, **zone: digest_messages.teams_message(found, SENT, None, **zone),
    "email": lambda found, **zone: digest_messages.mail(found, SENT, None, **zone),
    "log": lambda found, **zone: digest_messages.text(found, SENT, **zone),
}
ZONES = [
    pytest.param({}, "08:00 UTC", "09:00 UTC", id="default-utc"),
    pytest.param({"zone": CHICAGO}, "02:00 CST", "03:00 CST", id="chicago"),
]


def _other(due: str) -> str:
    return "CST" if due.endswith("UTC") else "UTC"


@pytest.mark.parametrize("kind", SINGLES)
@pytest.mark.parametrize(("zone", "due", "detected"), ZONES)
def test_a_single_alert_shows_its_times_in_the_display_zone(
    kind: str, zone: dict[str, tzinfo], due: str, detected: str
) -> None:
    shown = read(SINGLES[kind](overdue(1), **zone))
    assert f"The review was due 2026-11-18 {due} and is 1h late." in shown
    assert f"detected 2026-11-18 {detected}" in shown
    assert _other(due) not in shown


@pytest.mark.parametrize("kind", DIGESTS)
@pytest.mark.parametrize(("zone", "due", "detected"), ZONES)
def test_every_digest_shows_its_items_times_in_the_display_zone(
    kind: str, zone: dict[str, tzinfo], due: str, detected: str
) -> None:
    shown = read(DIGESTS[kind](group(overdue(1), overdue(2), overdue(3)), **zone))
    assert shown.count(f"was due 2026-11-18 {due}") >= 3, shown  # each item; mails say it twice
    assert _other(due) not in shown


def test_the_abbreviation_follows_daylight_saving_time() -> None:
    summer = datetime(2026, 7, 1, 15, 0, tzinfo=UTC)
    event = replace(overdue(1), observed_at=summer)
    shown = read(messages.teams_message(event, summer, CHICAGO))
    assert "detected 2026-07-01 10:00 CDT" in shown
    assert "due 2026-11-18 02:00 CST" in shown  # the deadline itself is in winter time

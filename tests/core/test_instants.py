"""Equal instants of many snapshots are one object; only UTC ones, and the table stays bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from monitor.core import instants
from monitor.core.instants import SHARED_INSTANTS, shared_instant
from monitor.core.keys import SessionKey
from monitor.core.parse import parse
from monitor.core.snapshot import Snapshot

T = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)


def session(n: int) -> tuple[SessionKey, str]:
    key = SessionKey("AI" + "1" * 32, "EX" + "2" * 32, f"ES{n:032x}")
    fields = (
        f'"sid": "{key.session_sid}", "status": "Closed", "reviewRequired": true,'
        ' "reviewed": false, "reviewByDate": "2026-11-18T13:00:00+01:00",'
        ' "appointmentDate": "2026-11-17T09:00:00.000Z"'
    )
    return key, "{" + fields + "}"


def test_sessions_parsed_apart_share_their_equal_deadlines_and_appointments() -> None:
    first, second = (parse(session(n)[1], session(n)[0]) for n in (1, 2))
    assert isinstance(first, Snapshot) and isinstance(second, Snapshot)
    assert first.review_by_date == T and first.review_by_date.tzinfo is UTC
    assert first.review_by_date is second.review_by_date
    assert first.appointment is second.appointment is not None


def test_an_instant_in_another_zone_is_kept_as_it_is() -> None:
    shared_instant(T)
    elsewhere = T.astimezone(timezone(timedelta(hours=2)))
    assert shared_instant(elsewhere) is elsewhere
    assert shared_instant(None) is None


def test_past_the_cap_the_table_starts_afresh() -> None:
    instants._shared.clear()
    held = [shared_instant(T + timedelta(seconds=n)) for n in range(SHARED_INSTANTS)]
    assert len(instants._shared) == SHARED_INSTANTS
    later = shared_instant(T + timedelta(days=1))
    assert len(instants._shared) == 1
    assert shared_instant(T + timedelta(days=1)) is later
    copy = datetime.fromtimestamp(held[0].timestamp(), UTC)
    assert shared_instant(copy) is copy  # forgotten: shared again from now on

"""Lifecycle phases and their poll intervals: tables with literal times, and properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import strategies
from hypothesis import given
from hypothesis import strategies as st

from monitor.core import poll, rules
from monitor.core.phase import (
    DEFAULT,
    LIVE_STATUSES,
    PROCESSING_STATUSES,
    TERMINAL_STATUSES,
    Intervals,
    Phase,
    interval_for,
    next_poll,
    phase_of,
    track_settled,
)
from monitor.core.snapshot import Snapshot

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
EPOCH = NOW.timestamp()
HOUR = timedelta(hours=1)


def snap(
    status: str | None,
    *,
    required: bool | None = False,
    reviewed: bool | None = False,
    deadline: datetime | None = None,
) -> Snapshot:
    return Snapshot(
        status=status, review_required=required, reviewed=reviewed, review_by_date=deadline
    )


def phase(
    snapshot: Snapshot | None,
    *,
    appointment: datetime | None = None,
    settled_since: datetime | None = None,
) -> Phase:
    return phase_of(snapshot, appointment=appointment, now=NOW, settled_since=settled_since)


# ── tables ───────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        (snap("Needs Proctor"), Phase.LIVE),
        (snap("Incident", required=True), Phase.LIVE),  # an incident beats a pending review
        (snap("in progress"), Phase.LIVE),
        (snap("Processing", required=True), Phase.AWAITING_REVIEW),
        (snap("Closed", required=True), Phase.AWAITING_REVIEW),
        (snap("Closed", required=True, reviewed=True), Phase.SETTLED),
        (snap("Closed", required=None, reviewed=None), Phase.SETTLED),
        (snap("Cancelled"), Phase.SETTLED),
        (snap("Approval Denied"), Phase.SETTLED),
        (snap("Scheduled"), Phase.SCHEDULED),
        (snap("Pending Approval"), Phase.SCHEDULED),
        (snap("Processing"), Phase.PROCESSING),  # a review requirement is decided next
        (snap("Something New"), Phase.SCHEDULED),  # an unknown status is data, not live
        (snap(None), Phase.SCHEDULED),
        (None, Phase.LIVE),  # never polled: its first answer decides
    ],
)
def test_phase_by_status_and_review(snapshot: Snapshot | None, expected: Phase) -> None:
    assert phase(snapshot) == expected


@pytest.mark.parametrize(
    ("appointment", "expected"),
    [
        (NOW + 3 * HOUR, Phase.LIVE),
        (NOW + 3 * HOUR + timedelta(seconds=1), Phase.SCHEDULED),
        (NOW - 2 * HOUR, Phase.LIVE),  # a late start, or the recording being processed
        (NOW - 4 * HOUR, Phase.SCHEDULED),
        (NOW + 30 * 24 * HOUR, Phase.SCHEDULED),
    ],
)
def test_an_appointment_within_the_live_window_is_live(
    appointment: datetime, expected: Phase
) -> None:
    assert phase(snap("Scheduled"), appointment=appointment) == expected
    assert phase(None, appointment=appointment) == expected


def test_a_settled_session_with_a_near_appointment_stays_settled() -> None:
    assert phase(snap("Closed"), appointment=NOW - HOUR) == Phase.SETTLED


def test_retired_only_after_retire_after_settled() -> None:
    closed = snap("Closed")
    month = timedelta(days=30)
    assert phase(closed, settled_since=None) == Phase.SETTLED
    assert phase(closed, settled_since=NOW - month) == Phase.SETTLED
    assert phase(closed, settled_since=NOW - month - timedelta(seconds=1)) == Phase.RETIRED
    # a review asked for again brings a retired session back
    assert (
        phase(snap("Closed", required=True), settled_since=NOW - 2 * month) == Phase.AWAITING_REVIEW
    )


def test_track_settled() -> None:
    earlier = NOW - HOUR
    assert track_settled(Phase.SETTLED, None, NOW) == NOW
    assert track_settled(Phase.SETTLED, earlier, NOW) == earlier
    assert track_settled(Phase.RETIRED, earlier, NOW) == earlier
    assert track_settled(Phase.LIVE, earlier, NOW) is None


def test_default_intervals() -> None:
    intervals = [interval_for(p, DEFAULT, None) for p in Phase]
    assert intervals == [30.0, 300.0, 300.0, 3600.0, 21600.0, None]
    assert (DEFAULT.retire_after, DEFAULT.live_window) == (30 * 86400.0, 3 * 3600.0)


@pytest.mark.parametrize(
    "fields",
    [
        {"live": 0.0},
        {"settled": float("inf")},
        {"live": 600.0},
        {"awaiting_review": 30_000.0},
        {"scheduled": 10.0},
        {"retire_after": 0.0},
        {"live_window": -1.0},
    ],
)
def test_intervals_that_shrink_as_a_session_settles_are_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        Intervals(**fields)


def test_the_deadline_wake_up_beats_the_awaiting_review_interval() -> None:
    """A review due in 10 s is checked at its deadline, not 300 s later."""
    deadline = NOW + timedelta(seconds=10)
    session = snap("Closed", required=True, deadline=deadline)
    wake = poll.deadline_after(session, rules.NO_REVIEW, EPOCH, poll.Rules())
    assert wake == (deadline + timedelta(milliseconds=1)).timestamp()
    interval = interval_for(phase(session), DEFAULT, None)
    assert interval == 300.0
    assert next_poll(EPOCH, interval, 0.5, jitter=0.1, deadline=wake) == wake


def test_next_poll_without_a_deadline_is_one_jittered_interval() -> None:
    assert next_poll(EPOCH, 300.0, 0.5, jitter=0.1, deadline=None) == EPOCH + 300.0
    assert next_poll(EPOCH, 300.0, 0.0, jitter=0.1, deadline=EPOCH + 600) == EPOCH + 270.0


def test_a_retired_session_is_not_polled() -> None:
    assert next_poll(EPOCH, None, 0.5, jitter=0.1, deadline=None) is None
    assert next_poll(EPOCH, None, 0.5, jitter=0.1, deadline=EPOCH + 5) == EPOCH + 5


def test_status_sets_are_casefolded_and_disjoint() -> None:
    assert all(name == name.casefold() for name in LIVE_STATUSES | TERMINAL_STATUSES)
    assert not LIVE_STATUSES & TERMINAL_STATUSES


# ── properties ───────────────────────────────────────────────────────────────────────────────

_seconds = st.floats(min_value=1.0, max_value=90 * 86400.0)


@st.composite
def intervals(draw: st.DrawFn) -> Intervals:
    """Any valid Intervals: four ordered intervals, a retirement age, a window."""
    live, review, scheduled, settled = sorted(draw(st.lists(_seconds, min_size=4, max_size=4)))
    if draw(st.booleans()):
        review, scheduled = scheduled, review
    processing = draw(st.sampled_from([review, scheduled]))
    return Intervals(
        live=live,
        awaiting_review=review,
        processing=processing,
        scheduled=scheduled,
        settled=settled,
        retire_after=draw(_seconds),
        live_window=draw(st.floats(min_value=0.0, max_value=86400.0)),
    )


_statuses = st.one_of(
    strategies.statuses,
    st.sampled_from(sorted(LIVE_STATUSES | TERMINAL_STATUSES | PROCESSING_STATUSES)),
)
_snapshots = st.one_of(
    st.none(),
    st.builds(
        Snapshot,
        status=_statuses,
        review_required=st.one_of(st.none(), st.booleans()),
        reviewed=st.one_of(st.none(), st.booleans()),
        review_by_date=st.one_of(st.none(), strategies.aware_instants),
    ),
)
_maybe_instants = st.one_of(st.none(), strategies.aware_instants)


@st.composite
def situations(draw: st.DrawFn) -> dict[str, object]:
    return {
        "snapshot": draw(_snapshots),
        "appointment": draw(_maybe_instants),
        "now": draw(strategies.aware_instants),
        "settled_since": draw(_maybe_instants),
        "intervals": draw(intervals()),
    }


@given(situations())
def test_phase_is_a_total_function_of_its_inputs(inputs: dict[str, object]) -> None:
    first = phase_of(**inputs)  # type: ignore[arg-type]
    assert isinstance(first, Phase)
    assert phase_of(**inputs) == first  # type: ignore[arg-type]


@given(situations())
def test_settled_only_with_a_terminal_status_and_no_pending_review(
    inputs: dict[str, object],
) -> None:
    result = phase_of(**inputs)  # type: ignore[arg-type]
    snapshot = inputs["snapshot"]
    if result in (Phase.SETTLED, Phase.RETIRED):
        assert isinstance(snapshot, Snapshot)
        assert (snapshot.status or "").casefold() in TERMINAL_STATUSES
        assert not snapshot.review_pending
    if isinstance(snapshot, Snapshot) and snapshot.review_pending:
        assert result in (Phase.LIVE, Phase.AWAITING_REVIEW)


@given(situations())
def test_retired_only_after_retire_after_settled_property(inputs: dict[str, object]) -> None:
    if phase_of(**inputs) is Phase.RETIRED:  # type: ignore[arg-type]
        since, now, config = inputs["settled_since"], inputs["now"], inputs["intervals"]
        assert isinstance(since, datetime) and isinstance(now, datetime)
        assert isinstance(config, Intervals)
        assert (now - since).total_seconds() > config.retire_after


@given(st.sampled_from([p for p in Phase if p is not Phase.RETIRED]), intervals(), _seconds)
def test_an_override_always_wins_while_polled(
    phase_: Phase, config: Intervals, override: float
) -> None:
    assert interval_for(phase_, config, override) == override
    assert interval_for(Phase.RETIRED, config, override) is None


@given(intervals())
def test_intervals_grow_as_a_session_settles(config: Intervals) -> None:
    live = interval_for(Phase.LIVE, config, None)
    review = interval_for(Phase.AWAITING_REVIEW, config, None)
    scheduled = interval_for(Phase.SCHEDULED, config, None)
    settled = interval_for(Phase.SETTLED, config, None)
    assert live is not None and review is not None and scheduled is not None
    assert settled is not None
    assert live <= review <= settled
    assert live <= scheduled <= settled
    processing = interval_for(Phase.PROCESSING, config, None)
    assert processing is not None and live <= processing <= settled


@given(
    st.floats(min_value=0.0, max_value=4e9),
    st.one_of(st.none(), _seconds),
    st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    st.one_of(st.none(), st.floats(min_value=0.0, max_value=4e9)),
)
def test_next_poll_is_never_after_the_deadline(
    now: float, interval: float | None, u: float, deadline: float | None
) -> None:
    due = next_poll(now, interval, u, jitter=0.1, deadline=deadline)
    if deadline is not None:
        assert due is not None and due <= deadline
    if interval is not None:
        assert due is not None and due <= now + interval * 1.1 + 1e-6
    if interval is None and deadline is None:
        assert due is None

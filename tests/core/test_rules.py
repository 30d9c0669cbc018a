"""The review-deadline state machine (invariant 4): a pure function of (snapshot, state, now, policy)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
import strategies
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core import rules
from monitor.core.events import EventType
from monitor.core.rules import Policy, ReviewState, evaluate, is_due_soon, is_overdue, next_check
from monitor.core.snapshot import Snapshot

OVERDUE = EventType.REVIEW_OVERDUE
RESOLVED = EventType.REVIEW_OVERDUE_RESOLVED
DUE_SOON = EventType.REVIEW_DUE_SOON

D = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)  # the review deadline in most tables
US = timedelta(microseconds=1)
MS = timedelta(milliseconds=1)
HOUR = timedelta(hours=1)
PENDING = Snapshot("Closed", review_required=True, reviewed=False, review_by_date=D)
FRESH = ReviewState()
NO_REPEAT = Policy(overdue_repeat=None)
HOURLY = Policy(overdue_repeat=HOUR)
WARN_2H = Policy(overdue_repeat=None, due_soon=2 * HOUR)


def run(
    steps: list[tuple[Snapshot, datetime]], policy: Policy, state: ReviewState = FRESH
) -> tuple[ReviewState, list[tuple[EventType, ...]]]:
    """Evaluate a sequence of observations, threading the state; the events of each step."""
    out = []
    for snapshot, now in steps:
        state, events = evaluate(snapshot, state, now, policy)
        out.append(events)
    return state, out


# ── is_overdue / is_due_soon: exhaustive tables ──────────────────────────────────────────────

DATES = {"none": None, "past": D - HOUR, "future": D + HOUR, "now": D}


@pytest.mark.parametrize(
    ("required", "reviewed", "date"),
    list(itertools.product((True, False, None), (True, False, None), DATES)),
)
def test_is_overdue_exhaustive(required: bool | None, reviewed: bool | None, date: str) -> None:
    snapshot = Snapshot("Closed", required, reviewed, DATES[date])
    expected = required is True and reviewed is not True and date == "past"
    assert is_overdue(snapshot, D) is expected


def test_overdue_is_strictly_after_the_deadline() -> None:
    assert not is_overdue(PENDING, D)
    assert is_overdue(PENDING, D + US)


def test_overdue_compares_instants_not_zones() -> None:
    now_in_bangkok = (D + US).astimezone(timezone(timedelta(hours=7)))
    assert is_overdue(PENDING, now_in_bangkok)
    assert not is_overdue(PENDING, D.astimezone(timezone(timedelta(hours=-5))))


@pytest.mark.parametrize(
    ("required", "reviewed", "date"),
    list(itertools.product((True, False, None), (True, False, None), DATES)),
)
@pytest.mark.parametrize("window", [None, 2 * HOUR])
def test_is_due_soon_exhaustive(
    required: bool | None, reviewed: bool | None, date: str, window: timedelta | None
) -> None:
    snapshot = Snapshot("Closed", required, reviewed, DATES[date])
    pending = required is True and reviewed is not True
    # Inside [deadline - window, deadline]: "future" (D + 1h) and "now" (D) are, "past" is not.
    expected = window is not None and pending and date in {"future", "now"}
    assert is_due_soon(snapshot, D, window) is expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (D - 2 * HOUR - US, False),
        (D - 2 * HOUR, True),
        (D - HOUR, True),
        (D, True),
        (D + US, False),
    ],
)
def test_due_soon_window_is_closed_at_both_ends(now: datetime, expected: bool) -> None:
    assert is_due_soon(PENDING, now, 2 * HOUR) is expected


# ── evaluate: overdue fires once, repeats on schedule, resolves once ─────────────────────────


def test_overdue_fires_once_on_entry() -> None:
    state, events = run([(PENDING, D - HOUR), (PENDING, D + US), (PENDING, D + HOUR)], NO_REPEAT)
    assert events == [(), (OVERDUE,), ()]
    assert state.overdue_since == D + US
    assert state.last_overdue_alert == D + US


def test_first_evaluation_already_past_the_deadline_fires() -> None:
    state, events = evaluate(PENDING, FRESH, D + 3 * HOUR, HOURLY)
    assert events == (OVERDUE,)
    assert state == ReviewState(overdue_since=D + 3 * HOUR, last_overdue_alert=D + 3 * HOUR)


def test_overdue_repeats_exactly_at_each_interval() -> None:
    entry = D + US
    steps = [
        (PENDING, entry),
        (PENDING, entry + HOUR - US),
        (PENDING, entry + HOUR),
        (PENDING, entry + HOUR + US),
        (PENDING, entry + 2 * HOUR - US),
        (PENDING, entry + 2 * HOUR),
    ]
    state, events = run(steps, HOURLY)
    assert events == [(OVERDUE,), (), (OVERDUE,), (), (), (OVERDUE,)]
    assert state.overdue_since == entry
    assert state.last_overdue_alert == entry + 2 * HOUR


def test_repeat_counts_from_the_last_alert_not_from_entry() -> None:
    # A late poll fires at 1h30; the next repeat is one interval after that, not at 2h.
    entry = D + US
    steps = [
        (PENDING, entry),
        (PENDING, entry + 90 * timedelta(minutes=1)),
        (PENDING, entry + 2 * HOUR),
        (PENDING, entry + 150 * timedelta(minutes=1)),
    ]
    _, events = run(steps, HOURLY)
    assert events == [(OVERDUE,), (OVERDUE,), (), (OVERDUE,)]


def test_repeat_none_never_repeats() -> None:
    steps = [(PENDING, D + US)] + [(PENDING, D + timedelta(days=n)) for n in range(1, 400, 7)]
    _, events = run(steps, NO_REPEAT)
    assert events[0] == (OVERDUE,)
    assert all(step == () for step in events[1:])


def test_repeat_uses_overdue_since_when_no_alert_was_recorded() -> None:
    state = ReviewState(overdue_since=D + US, last_overdue_alert=None)
    assert evaluate(PENDING, state, D + US + HOUR - US, HOURLY)[1] == ()
    assert evaluate(PENDING, state, D + US + HOUR, HOURLY)[1] == (OVERDUE,)


@pytest.mark.parametrize(
    "leaving",
    [
        replace(PENDING, reviewed=True),
        replace(PENDING, review_required=False),
        replace(PENDING, review_required=None),
        replace(PENDING, review_by_date=D + timedelta(days=3)),
        replace(PENDING, review_by_date=None),
    ],
    ids=["reviewed", "not-required", "required-null", "date-moved-to-future", "date-removed"],
)
def test_leaving_overdue_resolves_exactly_once(leaving: Snapshot) -> None:
    later = D + 2 * HOUR
    steps = [
        (PENDING, D + US),
        (leaving, later),
        (leaving, later + HOUR),
        (leaving, later + 9 * HOUR),
    ]
    state, events = run(steps, HOURLY)
    assert events == [(OVERDUE,), (RESOLVED,), (), ()]
    assert state.overdue_since is None
    assert state.last_overdue_alert is None


def test_reviewed_null_is_still_pending_and_stays_overdue() -> None:
    still = replace(PENDING, reviewed=None)
    _, events = run([(PENDING, D + US), (still, D + HOUR)], NO_REPEAT)
    assert events == [(OVERDUE,), ()]


def test_re_entering_overdue_fires_again() -> None:
    moved = replace(PENDING, review_by_date=D + 3 * HOUR)
    steps = [
        (PENDING, D + US),  # overdue
        (moved, D + HOUR),  # deadline moved out: resolved
        (moved, D + 3 * HOUR + US),  # passed again: a new overdue
    ]
    state, events = run(steps, NO_REPEAT)
    assert events == [(OVERDUE,), (RESOLVED,), (OVERDUE,)]
    assert state.overdue_since == D + 3 * HOUR + US


def test_not_pending_never_fires() -> None:
    done = replace(PENDING, reviewed=True)
    steps = [(done, D + timedelta(hours=n)) for n in range(-3, 48)]
    state, events = run(steps, Policy(overdue_repeat=HOUR, due_soon=2 * HOUR))
    assert all(step == () for step in events)
    assert state == FRESH


# ── due soon ─────────────────────────────────────────────────────────────────────────────────


def test_due_soon_fires_once_per_deadline_inside_the_window() -> None:
    steps = [
        (PENDING, D - 3 * HOUR),
        (PENDING, D - 2 * HOUR),  # window opens (inclusive)
        (PENDING, D - HOUR),
        (PENDING, D),  # at the deadline: not overdue yet, already warned
        (PENDING, D + US),  # overdue
    ]
    state, events = run(steps, WARN_2H)
    assert events == [(), (DUE_SOON,), (), (), (OVERDUE,)]
    assert state.due_soon_for == D


def test_due_soon_fires_again_when_the_deadline_moves() -> None:
    moved = replace(PENDING, review_by_date=D + 30 * timedelta(minutes=1))
    steps = [(PENDING, D - HOUR), (moved, D - 50 * timedelta(minutes=1)), (moved, D)]
    state, events = run(steps, WARN_2H)
    assert events == [(DUE_SOON,), (DUE_SOON,), ()]
    assert state.due_soon_for == moved.review_by_date


def test_due_soon_is_not_sent_when_the_window_was_skipped() -> None:
    # The first look is already past the deadline: the review is overdue, not due soon.
    _, events = run([(PENDING, D - 3 * HOUR), (PENDING, D + HOUR)], WARN_2H)
    assert events == [(), (OVERDUE,)]


def test_due_soon_off_never_warns() -> None:
    _, events = run([(PENDING, D - HOUR), (PENDING, D)], Policy(due_soon=None))
    assert events == [(), ()]


def test_resolve_and_due_soon_can_come_together() -> None:
    # Overdue, then the deadline moves 30 min ahead: resolved, and the new deadline is near.
    moved = replace(PENDING, review_by_date=D + 2 * HOUR)
    _, events = run([(PENDING, D + US), (moved, D + 90 * timedelta(minutes=1))], WARN_2H)
    assert events == [(OVERDUE,), (RESOLVED, DUE_SOON)]


# ── next_check: tables ───────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("snapshot", "state", "now", "policy", "expected"),
    [
        (replace(PENDING, review_by_date=None), FRESH, D - HOUR, HOURLY, None),
        (replace(PENDING, reviewed=True), FRESH, D - HOUR, HOURLY, None),
        (replace(PENDING, review_required=False), FRESH, D - HOUR, HOURLY, None),
        (PENDING, FRESH, D - HOUR, HOURLY, D + MS),
        (PENDING, FRESH, D - 3 * HOUR, WARN_2H, D - 2 * HOUR),
        (PENDING, ReviewState(due_soon_for=D), D - HOUR, WARN_2H, D + MS),
        (PENDING, ReviewState(due_soon_for=D - HOUR), D - 3 * HOUR, WARN_2H, D - 2 * HOUR),
        (PENDING, ReviewState(D + US, D + US), D + HOUR, HOURLY, D + US + HOUR),
        (PENDING, ReviewState(D + US, D + 5 * HOUR), D + 5 * HOUR, HOURLY, D + 6 * HOUR),
        (PENDING, ReviewState(D + US, None), D + HOUR, HOURLY, D + US + HOUR),
        (PENDING, ReviewState(D + US, D + US), D + HOUR, NO_REPEAT, None),
    ],
    ids=[
        "no-deadline",
        "reviewed",
        "not-required",
        "deadline",
        "window-opens",
        "warned-then-deadline",
        "warned-for-an-old-deadline",
        "repeat",
        "repeat-after-last-alert",
        "repeat-from-entry",
        "overdue-no-repeat",
    ],
)
def test_next_check_table(
    snapshot: Snapshot,
    state: ReviewState,
    now: datetime,
    policy: Policy,
    expected: datetime | None,
) -> None:
    assert next_check(snapshot, state, now, policy) == expected


def test_next_check_is_at_most_one_millisecond_after_the_deadline() -> None:
    """Overdue is strict, so the earliest moment that decides it is not representable; next_check
    answers one millisecond past the deadline (module comment), which evaluate already calls overdue
    from the first microsecond. This pins the slack so it cannot grow unnoticed."""
    check = next_check(PENDING, FRESH, D - HOUR, NO_REPEAT)
    assert check == D + MS
    assert evaluate(PENDING, FRESH, D, NO_REPEAT)[1] == ()
    assert evaluate(PENDING, FRESH, D + US, NO_REPEAT)[1] == (OVERDUE,)


# ── properties ───────────────────────────────────────────────────────────────────────────────

# Deadlines and states cluster around one instant so windows, deadlines and repeats interact.
_near = st.integers(min_value=-3 * 86400, max_value=3 * 86400).map(
    lambda seconds: D + timedelta(seconds=seconds)
)
_fine = st.integers(min_value=-3 * 86400 * 10**6, max_value=3 * 86400 * 10**6).map(
    lambda micros: D + timedelta(microseconds=micros)
)
_near_snapshots = strategies.snapshots(dates=st.one_of(st.none(), _near, _fine))


@settings(deadline=None)
@given(
    snapshot=_near_snapshots,
    state=strategies.review_states(_near),
    now=_fine,
    policy=strategies.policies(),
    fractions=st.lists(st.floats(min_value=0.0, max_value=1.0), max_size=5),
    after=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)),
)
def test_next_check_is_where_evaluate_would_change(
    snapshot: Snapshot,
    state: ReviewState,
    now: datetime,
    policy: Policy,
    fractions: list[float],
    after: timedelta,
) -> None:
    """After evaluating at `now`, nothing new happens on the same data before next_check (allowing
    the documented millisecond past a deadline), and something does at and after it."""
    state, _ = evaluate(snapshot, state, now, policy)
    check = next_check(snapshot, state, now, policy)
    if check is None:
        for probe in (now, now + after, now + timedelta(days=3650)):
            assert evaluate(snapshot, state, probe, policy)[1] == ()
        return
    assert check > now
    quiet_until = check - MS if check - MS >= now else now
    probes = [now, quiet_until] + [now + (quiet_until - now) * f for f in fractions]
    for probe in probes:
        assert evaluate(snapshot, state, probe, policy)[1] == (), probe
    assert evaluate(snapshot, state, check, policy)[1] != ()
    assert evaluate(snapshot, state, check + after, policy)[1] != ()


@given(
    snapshot=_near_snapshots,
    state=strategies.review_states(_near),
    now=_fine,
    policy=strategies.policies(),
)
def test_evaluate_is_pure(
    snapshot: Snapshot, state: ReviewState, now: datetime, policy: Policy
) -> None:
    assert evaluate(snapshot, state, now, policy) == evaluate(snapshot, state, now, policy)


@given(
    snapshot=_near_snapshots,
    state=strategies.review_states(_near),
    now=_fine,
    policy=strategies.policies(),
)
def test_state_after_evaluate_agrees_with_is_overdue(
    snapshot: Snapshot, state: ReviewState, now: datetime, policy: Policy
) -> None:
    after, events = evaluate(snapshot, state, now, policy)
    assert (after.overdue_since is not None) is is_overdue(snapshot, now)
    assert len(events) == len(set(events))
    assert not ({OVERDUE, RESOLVED} <= set(events))


_observations = st.lists(
    st.tuples(
        strategies.snapshots(dates=st.one_of(st.none(), _near)),
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=12)),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(
    observations=_observations,
    start=st.integers(min_value=-4 * 86400, max_value=2 * 86400).map(
        lambda seconds: D + timedelta(seconds=seconds)
    ),
    policy=strategies.policies(),
)
def test_overdue_and_resolved_alternate_over_any_sequence(
    observations: list[tuple[Snapshot, timedelta]], start: datetime, policy: Policy
) -> None:
    """For any sequence of (snapshot, now) with non-decreasing now: entries and resolutions
    alternate starting with an entry, repeats only happen while overdue, and the final state is
    overdue exactly when is_overdue says so."""
    state, now = FRESH, start
    inside = False
    entries = resolutions = 0
    for snapshot, step in observations:
        now += step
        was_overdue = state.overdue_since is not None
        state, events = evaluate(snapshot, state, now, policy)
        for event in events:
            if event is RESOLVED:
                assert inside, "resolved without being overdue"
                inside = False
                resolutions += 1
            elif event is OVERDUE:
                if not was_overdue:
                    assert not inside, "entered overdue twice without resolving"
                    entries += 1
                inside = True
        assert resolutions <= entries
        assert inside is (state.overdue_since is not None)
        if DUE_SOON in events:
            assert state.due_soon_for == snapshot.review_by_date
    assert entries - resolutions == (1 if inside else 0)
    last_snapshot = observations[-1][0]
    assert (state.overdue_since is not None) is rules.is_overdue(last_snapshot, now)


@given(
    repeat=st.timedeltas(min_value=timedelta(minutes=30), max_value=timedelta(days=2)),
    due_soon=st.one_of(
        st.none(), st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2))
    ),
    stay=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10)),
)
def test_polling_at_next_check_repeats_once_per_interval(
    repeat: timedelta, due_soon: timedelta | None, stay: timedelta
) -> None:
    """A poller that wakes exactly at next_check sends one overdue alert per repeat interval."""
    policy = Policy(overdue_repeat=repeat, due_soon=due_soon)
    start = now = D + US
    state, events = evaluate(PENDING, FRESH, now, policy)
    sent = events.count(OVERDUE)
    while (check := next_check(PENDING, state, now, policy)) is not None and check <= start + stay:
        assert check > now
        now = check
        state, events = evaluate(PENDING, state, now, policy)
        assert events == (OVERDUE,)
        sent += 1
    assert sent == 1 + stay // repeat

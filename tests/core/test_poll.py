"""One poll's decision (core/poll.py): a pure function of (state, answer, now, u, rules)."""

from __future__ import annotations

from dataclasses import replace

import strategies
from hypothesis import given
from hypothesis import strategies as st

from monitor.core import poll
from monitor.core.events import CHANGE_TYPES, EventType
from monitor.core.poll import Failed, Outcome, Rules, Throttled, Verdict, step
from monitor.watchset import Entry

CHANGES = frozenset(CHANGE_TYPES.values())
FAILURES = (Outcome.ERROR, Outcome.AUTH_FAILED, Outcome.INVALID)

units = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
nows = strategies.aware_instants.map(lambda moment: moment.timestamp())
intervals = st.floats(min_value=1.0, max_value=3600.0)
configs = st.builds(
    Rules,
    policy=strategies.policies(),
    jitter=st.floats(min_value=0.0, max_value=0.5),
    deployment=st.just("d1"),
)


@st.composite
def states(draw: st.DrawFn) -> Entry:
    """A session as the loop may hold it: never seen, or with a last good snapshot and digest."""
    seen = draw(st.booleans())
    return Entry(
        key=draw(strategies.session_keys),
        labels={"course": "c1"},
        interval=draw(intervals),
        snapshot=draw(strategies.snapshots()) if seen else None,
        review=draw(strategies.review_states()),
        version=draw(st.integers(0, 1000)),
        digest=0 if seen else None,
        failures=draw(st.integers(0, 20)),
        missing=draw(st.booleans()),
    )


def applied(state: Entry, verdict: Verdict) -> Entry:
    """The state after the loop commits `verdict` (what `PollStep.apply` does to the entry)."""
    state = replace(
        state,
        last_poll_at=verdict.polled_at,
        failures=verdict.failures,
        version=verdict.version,
        missing=verdict.missing,
        review=verdict.review or state.review,
        settled_since=verdict.life.settled_since,
    )
    if verdict.outcome is Outcome.OK:
        state = replace(state, snapshot=verdict.snapshot, digest=verdict.digest)
    return state


@given(states(), st.sampled_from(FAILURES), st.booleans(), nows, units, configs)
def test_a_failed_poll_never_changes_the_snapshot(
    state: Entry, outcome: Outcome, outage: bool, now: float, u: float, config: Rules
) -> None:
    verdict = step(state, Failed(outcome, outage=outage), now, u, config)
    after = applied(state, verdict)
    assert (after.snapshot, after.digest) == (state.snapshot, state.digest)
    assert verdict.payload is None and not verdict.touch_only
    assert verdict.failures == state.failures + (not outage)
    assert not CHANGES & {event.type for event in verdict.events}


@given(st.data(), states(), nows, units, configs)
def test_an_invalid_body_never_emits_change_events(
    data: st.DataObject, state: Entry, now: float, u: float, config: Rules
) -> None:
    bad = data.draw(strategies.malformed_payloads())
    state = replace(state, key=bad.key)
    verdict = step(state, bad.body, now, u, config)
    assert verdict.outcome is Outcome.INVALID
    assert verdict.problem is not None and verdict.problem.field == bad.field
    assert verdict.snapshot is None and verdict.digest is None
    assert not CHANGES & {event.type for event in verdict.events}


@given(st.data(), states(), nows, units, configs)
def test_next_due_is_after_now_and_within_one_jittered_interval(
    data: st.DataObject, state: Entry, now: float, u: float, config: Rules
) -> None:
    good = data.draw(strategies.valid_payloads())
    state = replace(state, key=good.key)
    verdict = step(state, good.encoded(), now, u, config)
    assert verdict.outcome is Outcome.OK
    assert now < verdict.next_due
    regular = now + state.interval * (1.0 + config.jitter)
    deadline = poll.deadline_after(verdict.snapshot, verdict.review or state.review, now, config)
    assert verdict.next_due <= regular or verdict.next_due == deadline


@given(states(), nows, units, configs)
def test_a_404_emits_session_not_found_once(
    state: Entry, now: float, u: float, config: Rules
) -> None:
    state = replace(state, missing=False)
    first = step(state, poll.MISSING, now, u, config)
    again = step(applied(state, first), poll.MISSING, now + 300.0, u, config)
    assert [event.type for event in first.events] == [EventType.SESSION_NOT_FOUND]
    assert first.version == state.version + 1 and first.missing
    assert again.events == () and again.version == first.version
    assert now < first.next_due


@given(st.data(), states(), nows, units, configs)
def test_the_same_body_again_is_touch_only_and_not_parsed_again(
    data: st.DataObject, state: Entry, now: float, u: float, config: Rules
) -> None:
    good = data.draw(strategies.valid_payloads())
    state = replace(state, key=good.key, failures=0, missing=False)
    body = good.encoded()
    first = step(state, body, now, u, config)
    second = step(applied(state, first), body, now + 1.0, u, config)
    assert second.payload is None and second.snapshot is first.snapshot
    if not second.events and second.review == first.review:
        assert second.touch_only


@given(states(), st.floats(min_value=0.0, max_value=3600.0), nows, units, configs)
def test_a_429_comes_back_after_retry_after(
    state: Entry, retry_after: float, now: float, u: float, config: Rules
) -> None:
    verdict = step(state, Throttled(retry_after), now, u, config)
    assert verdict.outcome is Outcome.RATE_LIMITED
    assert verdict.next_due == now + retry_after
    assert verdict.failures == state.failures + 1


@given(states(), nows, configs)
def test_held_changes_nothing_without_a_snapshot_and_never_the_snapshot(
    state: Entry, now: float, config: Rules
) -> None:
    verdict = poll.held(state, now, config)
    if state.snapshot is None:
        assert verdict is None
    elif verdict is not None:
        assert verdict.outcome is Outcome.HELD and verdict.snapshot is None
        assert verdict.failures == state.failures
        assert not CHANGES & {event.type for event in verdict.events}


@given(states(), nows, units, configs)
def test_first_due_is_within_one_interval(
    state: Entry, now: float, u: float, config: Rules
) -> None:
    due = poll.first_due(state, now, u, config)
    assert due <= now + state.interval

"""Delivery decisions without an event loop: breaker evidence, probe back-off, pacing, retry
delays, leases and idle sleeps, with literal times."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core import delivery
from monitor.core.backoff import DELIVERY_SCHEDULE, Schedule
from monitor.core.delivery import Action, Breaker, Evidence, Failure, Pacer, Step

units = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


# ── Breaker: evidence, not answers ──────────────────────────────────────────────────────────


def test_failures_of_deliveries_in_flight_together_count_once() -> None:
    breaker = Breaker(threshold=3, cooldown=30.0)
    verdicts = [breaker.failed(started=100.0, now=100.1 + n / 100, u=0.0) for n in range(5)]
    assert verdicts == [Failure.COUNTED] + [Failure.STALE] * 4
    assert (breaker.streak, breaker.open) == (1, False)


def test_failures_in_a_row_open_the_breaker_once_at_the_threshold() -> None:
    breaker = Breaker(threshold=3, cooldown=30.0)
    verdicts = [breaker.failed(started=t, now=t + 0.1, u=0.0) for t in (0.0, 1.0, 2.0, 3.0)]
    assert verdicts == [Failure.COUNTED, Failure.COUNTED, Failure.OPENED, Failure.COUNTED]
    assert breaker.open


def test_an_answer_ends_the_streak_and_says_the_sink_is_back() -> None:
    breaker = Breaker(threshold=2, cooldown=30.0)
    breaker.failed(started=0.0, now=0.1, u=0.0)
    breaker.failed(started=1.0, now=1.1, u=0.0)
    assert breaker.open
    assert breaker.answered(started=5.0, now=5.1) is True
    assert (breaker.streak, breaker.open, breaker.failing) == (0, False, False)
    assert breaker.answered(started=6.0, now=6.1) is False  # nothing to recover from


def test_outcomes_of_attempts_older_than_the_last_evidence_say_nothing() -> None:
    breaker = Breaker(threshold=2, cooldown=30.0)
    breaker.failed(started=0.0, now=1.0, u=0.0)
    # A 2xx of a request sent before that failure was seen: not proof the sink is back.
    assert breaker.answered(started=0.5, now=1.5) is False
    assert breaker.failing
    assert breaker.answered(started=2.0, now=2.1) is True
    # A 500 that was on the wire while the 2xx came back: not a new outage.
    assert breaker.failed(started=1.9, now=2.2, u=0.0) is Failure.STALE
    assert not breaker.failing


def test_a_failing_sink_may_be_probed_once_the_probe_is_due_and_one_at_a_time() -> None:
    breaker = Breaker(threshold=5, cooldown=30.0)
    assert not breaker.may_probe(100.0)  # nothing failed
    breaker.failed(started=10.0, now=10.0, u=0.0)
    assert breaker.probe_at == pytest.approx(11.0)
    assert not breaker.may_probe(10.5)
    assert breaker.may_probe(11.0)
    breaker.probe_started()
    assert not breaker.may_probe(12.0)
    breaker.probe_ended()
    assert breaker.may_probe(12.0)


@pytest.mark.parametrize(
    ("cooldown", "elapsed", "u", "gap"),
    [
        (30.0, 0.0, 0.0, 1.0),  # about a second after the first failure
        (30.0, 2.0, 0.0, 1.0),
        (30.0, 8.0, 0.0, 2.0),  # a quarter of the outage so far
        (30.0, 40.0, 0.0, 10.0),
        (30.0, 40.0, 0.5, 9.0),  # jitter only shortens
        (30.0, 600.0, 0.0, 30.0),  # capped at the cooldown
        (30.0, 600.0, 0.999, 24.006),
        (0.2, 0.0, 0.0, 0.2),  # a cooldown under a second caps the first probe too
    ],
)
def test_probe_gap_table(cooldown: float, elapsed: float, u: float, gap: float) -> None:
    breaker = Breaker(threshold=5, cooldown=cooldown, since=1000.0)
    assert breaker.probe_gap(1000.0 + elapsed, u) == pytest.approx(gap)


def _first_probe_after(outage: float, cooldown: float, us: list[float]) -> float:
    """Probe a receiver that is down for `outage` s from t=0 (each probe answered at once);
    the time of the first probe at or after it came back."""
    breaker = Breaker(threshold=1, cooldown=cooldown)
    breaker.failed(started=0.0, now=0.0, u=us[0])
    n = 1
    while breaker.probe_at < outage:
        moment = breaker.probe_at
        breaker.failed(started=moment, now=moment, u=us[n % len(us)])
        n += 1
    return breaker.probe_at


@settings(deadline=None)  # a long outage at a short cooldown walks thousands of probes
@given(
    outage=st.floats(min_value=0.0, max_value=7200.0),
    cooldown=st.floats(min_value=0.5, max_value=300.0),
    us=st.lists(units, min_size=1, max_size=20),
)
def test_the_first_probe_after_any_outage_is_at_most_a_quarter_of_it_or_the_cooldown_away(
    outage: float, cooldown: float, us: list[float]
) -> None:
    late = _first_probe_after(outage, cooldown, us) - outage
    assert 0.0 <= late <= min(cooldown, max(1.0, outage / 4)) + 1e-9


@pytest.mark.parametrize(("outage", "bound"), [(3.0, 1.0), (40.0, 10.0), (600.0, 30.0)])
def test_the_issue_targets_hold_with_the_default_cooldown(outage: float, bound: float) -> None:
    for u in (0.0, 0.3, 0.999):
        assert _first_probe_after(outage, 30.0, [u]) - outage <= bound


attempts = st.lists(
    st.tuples(st.floats(min_value=0, max_value=100), st.floats(min_value=0.001, max_value=50)),
    min_size=1,
    max_size=8,
)


@given(attempts=attempts, threshold=st.integers(min_value=1, max_value=10))
def test_a_streak_counts_the_most_failures_that_did_not_overlap_in_time(
    attempts: list[tuple[float, float]], threshold: int
) -> None:
    """Failed attempts (start, duration) answered in the order they end: the streak is the
    largest set of them that were not in flight together — one outage seen by many
    concurrent deliveries is one failure, sequential failures are each one more."""
    breaker = Breaker(threshold=threshold, cooldown=30.0)
    spans = sorted(((start, start + length) for start, length in attempts), key=lambda s: s[1])
    for start, end in spans:
        breaker.failed(started=start, now=end, u=0.5)
    disjoint = max(
        size
        for size in range(1, len(spans) + 1)
        for chosen in itertools.combinations(spans, size)
        if all(a[1] <= b[0] for a, b in itertools.pairwise(sorted(chosen)))
    )
    assert breaker.streak == disjoint
    assert breaker.open == (disjoint >= threshold)


# ── Pacer ───────────────────────────────────────────────────────────────────────────────────


def test_pacer_hands_out_one_slot_per_interval_and_none_during_a_pause() -> None:
    pacer = Pacer(1.0)
    assert [pacer.reserve(100.0) for _ in range(3)] == [0.0, 1.0, 2.0]
    pacer.pause(110.0)
    assert pacer.paused(105.0) and not pacer.paused(110.0)
    assert pacer.reserve(105.0) == 5.0


def test_a_shared_pacer_keeps_the_stricter_rate() -> None:
    pacer = Pacer(0.0)
    pacer.slow_to(1.0)
    pacer.slow_to(0.5)
    assert pacer.interval == 1.0


# ── Retry delay, leases, idle sleep ─────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("attempts", "retry_after", "expected"),
    [
        (1, None, 5.0),
        (1, 60.0, 60.0),  # the receiver asked for longer
        (2, 60.0, 300.0),  # the schedule is longer
        (len(DELIVERY_SCHEDULE.steps), None, None),  # spent: dead letter
    ],
)
def test_retry_delay_table(attempts: int, retry_after: float | None, expected: float) -> None:
    schedule = Schedule(DELIVERY_SCHEDULE.steps, jitter=0.0)
    assert delivery.retry_delay(schedule, attempts, 0.5, retry_after=retry_after) == expected


def test_a_failed_probe_row_waits_for_the_next_probe_or_its_own_time() -> None:
    breaker = Breaker(threshold=1, cooldown=30.0, probe_at=50.0)
    assert delivery.probe_retry_at(10.0, breaker) == 50.0
    assert delivery.probe_retry_at(3600.0, breaker) == 3600.0


@given(timeout=st.floats(min_value=0.001, max_value=120.0))
def test_the_lease_covers_the_configured_timeout_a_paced_wait_and_marking(timeout: float) -> None:
    lease = delivery.lease_for(timeout)
    assert delivery.attempt_bound(lease) >= timeout + delivery.LEASE_MARGIN / 2
    assert lease / 4 + delivery.attempt_bound(lease) + 5.0 <= lease  # pace, attempt, mark
    assert delivery.lease_for(15.0) == 60.0


@pytest.mark.parametrize(
    ("moments", "due", "expected"),
    [
        ([], None, 1.0),  # nothing known: the idle tick
        ([], 100.3, 0.3),  # a retry falls due: wake then, not at the tick
        ([], 99.0, 0.01),  # already due
        ([0.0, 100.2], 100.5, 0.2),  # a pause ends or a probe falls due first
        ([99.0], None, 1.0),  # past moments are no reason to wake
        ([], 200.0, 1.0),
    ],
)
def test_wake_in_table(moments: list[float], due: float | None, expected: float) -> None:
    assert delivery.wake_in(100.0, moments, due=due, idle=1.0) == pytest.approx(expected)


def test_evidence_starts_empty() -> None:
    assert Breaker(threshold=1, cooldown=1.0).evidence == -math.inf


# ── decide: outcome → action ────────────────────────────────────────────────────────────────

SCHED = Schedule((0.0, 5.0, 300.0), jitter=0.0)


@pytest.mark.parametrize(
    ("outcome", "attempts", "probe_due", "expected"),
    [
        (delivery.Delivered(), 1, None, Action(Step.DELIVERED, Evidence.ANSWERED)),
        (delivery.Delivered(), 1, 50.0, Action(Step.DELIVERED, Evidence.ANSWERED)),
        (delivery.Rejected("400"), 1, None, Action(Step.DEAD, Evidence.ANSWERED, reason="400")),
        (delivery.Gone("410"), 2, None, Action(Step.DISABLE, reason="410")),
        (delivery.RetryLater("500"), 1, None, Action(Step.RETRY, Evidence.FAILED, 105.0, "500")),
        (delivery.RetryLater("429", after=60.0), 1, None,
         Action(Step.RETRY, Evidence.THROTTLED, 160.0, "429", 160.0)),
        (delivery.RetryLater("500"), 9, None,
         Action(Step.DEAD, Evidence.FAILED, reason="retries exhausted; last: 500")),
        (delivery.RetryLater("500"), 9, 40.0, Action(Step.PROBE_FAILED, Evidence.FAILED, 100.0, "500")),
        (delivery.RetryLater("500"), 1, 150.0, Action(Step.PROBE_FAILED, Evidence.FAILED, 150.0, "500")),
    ],
)  # fmt: skip
def test_decide_table(
    outcome: delivery.Outcome, attempts: int, probe_due: float | None, expected: Action
) -> None:
    action = delivery.decide(
        outcome, attempts=attempts, schedule=SCHED, now=100.0, u=0.5, probe_due=probe_due
    )
    assert action == expected


outcomes = st.one_of(
    st.just(delivery.Delivered()),
    st.builds(delivery.Rejected, st.text(max_size=5)),
    st.builds(delivery.Gone, st.text(max_size=5)),
    st.builds(
        delivery.RetryLater,
        st.text(max_size=5),
        st.none() | st.floats(min_value=0.0, max_value=1e5),
    ),
)


@given(
    outcome=outcomes,
    attempts=st.integers(min_value=1, max_value=12),
    now=st.floats(min_value=0.0, max_value=1e9),
    u=units,
    probe_due=st.none() | st.floats(min_value=0.0, max_value=1e9),
)
def test_a_row_is_never_rescheduled_into_the_past_and_a_probe_never_spends_its_schedule(
    outcome: delivery.Outcome, attempts: int, now: float, u: float, probe_due: float | None
) -> None:
    action = delivery.decide(
        outcome, attempts=attempts, schedule=DELIVERY_SCHEDULE, now=now, u=u, probe_due=probe_due
    )
    if action.at is not None:
        assert action.at >= now
    if isinstance(outcome, delivery.RetryLater):
        assert action.step in {Step.RETRY, Step.DEAD, Step.PROBE_FAILED}
        assert (action.step is Step.PROBE_FAILED) == (probe_due is not None)
        if outcome.after is not None:
            assert action.pause_until == now + outcome.after
            assert action.at is None or action.at >= now + outcome.after or probe_due is not None
    else:
        assert action.step is not Step.RETRY and action.pause_until is None


@pytest.mark.parametrize(
    ("wait", "expected"),
    [(0.0, None), (15.0, None), (15.1, Action(Step.UNCLAIM, at=115.1))],
)
def test_a_long_paced_wait_gives_the_row_back_untried(wait: float, expected: Action | None) -> None:
    assert delivery.pace(wait, now=100.0, lease=60.0) == expected


def test_the_breaker_says_when_the_next_probe_may_go() -> None:
    breaker = Breaker(threshold=3, cooldown=30.0)
    assert breaker.next_probe_at() is None
    breaker.failed(started=0.0, now=10.0, u=0.0)
    assert breaker.next_probe_at() == 11.0 and breaker.probe_in(10.5) == 0.5
    breaker.probe_started()
    assert breaker.next_probe_at() is None

"""The API breaker's decisions: tables and properties with literal times, no event loop."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.breaker import Breaker, Policy, Transition, Verdict

UP, DOWN, UNKNOWN = Verdict.UP, Verdict.DOWN, Verdict.UNKNOWN
T0 = 1_709_294_400.0

units = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


def opened(threshold: int = 3, **kw: float) -> Breaker:
    breaker = Breaker(Policy(threshold=threshold, **kw))
    for _ in range(threshold):
        breaker.record(DOWN, T0, 0.0)
    assert breaker.is_open
    return breaker


# ── tables ───────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("verdicts", "is_open"),
    [
        ([DOWN, DOWN], False),
        ([DOWN, DOWN, DOWN], True),
        ([DOWN, DOWN, UP, DOWN, DOWN], False),  # a success in between resets the streak
        ([DOWN, UNKNOWN, DOWN, UNKNOWN, DOWN], True),  # bad bodies and 429s neither count nor reset
        ([UNKNOWN] * 10, False),
        ([UP] * 10, False),
    ],
)
def test_opens_after_threshold_down_results_in_a_row(verdicts, is_open: bool) -> None:
    breaker = Breaker(Policy(threshold=3))
    for verdict in verdicts:
        breaker.record(verdict, T0, 0.5)
    assert breaker.is_open is is_open


def test_the_result_that_opens_it_says_so_and_the_first_probe_waits_base() -> None:
    breaker = Breaker(Policy(threshold=2, base=1.0, cap=30.0))
    assert breaker.record(DOWN, T0, 0.0) is None
    assert breaker.record(DOWN, T0 + 0.1, 0.0) == Transition(opened=True, outage=0.0)
    assert breaker.opened_at == T0 + 0.1
    assert breaker.next_probe() == T0 + 1.1
    assert not breaker.may_probe(T0 + 1.0)
    assert breaker.may_probe(T0 + 1.1)


def test_cooldown_doubles_from_base_to_cap_with_u_zero() -> None:
    breaker = opened(base=1.0, cap=30.0)
    now, gaps = T0 + 1.0, []
    for _ in range(8):
        assert breaker.may_probe(now)
        breaker.start_probe(now)
        assert breaker.next_probe() is None  # one probe at a time
        assert not breaker.may_probe(now + 1000)
        breaker.record(DOWN, now, 0.0)
        probe_at = breaker.next_probe()
        assert probe_at is not None
        gaps.append(probe_at - now)
        now = probe_at
    assert gaps == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]


def test_full_jitter_draws_below_the_ceiling_and_never_zero() -> None:
    policy = Policy(base=1.0, cap=30.0)
    assert policy.cooldown(3, 0.0) == 8.0
    assert policy.cooldown(3, 0.5) == 4.0
    assert 0.0 < policy.cooldown(3, 0.999999) < 0.001
    assert Policy(base=60.0, cap=60.0, jitter=0.0).cooldown(9, 0.7) == 60.0


def test_stragglers_of_the_same_outage_do_not_lengthen_it() -> None:
    breaker = opened(base=1.0, cap=30.0)
    for _ in range(20):  # polls that were in flight when it opened
        assert breaker.record(DOWN, T0 + 0.5, 0.0) is None
    assert breaker.next_probe() == T0 + 1.0


def test_an_inconclusive_probe_frees_the_slot_without_growing_the_cooldown() -> None:
    breaker = opened(base=1.0, cap=30.0)
    breaker.start_probe(T0 + 1.0)
    breaker.record(UNKNOWN, T0 + 1.2, 0.0)
    assert breaker.is_open and breaker.next_probe() == T0 + 2.2


def test_first_success_closes_and_reports_the_outage() -> None:
    breaker = opened()
    breaker.start_probe(T0 + 1.0)
    assert breaker.record(UP, T0 + 42.0, 0.3) == Transition(opened=False, outage=42.0)
    assert not breaker.is_open
    assert breaker.next_probe() is None and not breaker.may_probe(T0 + 100)
    assert breaker.record(UP, T0 + 43.0, 0.3) is None  # closing is reported once


def test_a_straggler_success_closes_it_too() -> None:
    breaker = opened()
    assert breaker.record(UP, T0 + 0.5, 0.0) == Transition(opened=False, outage=0.5)


def test_after_closing_it_needs_a_full_streak_again() -> None:
    breaker = opened(threshold=3)
    breaker.record(UP, T0 + 5, 0.0)
    breaker.record(DOWN, T0 + 6, 0.0)
    breaker.record(DOWN, T0 + 6, 0.0)
    assert not breaker.is_open


def test_trip_opens_with_a_probe_due_now() -> None:
    breaker = Breaker(Policy(threshold=1, base=60.0, cap=60.0, jitter=0.0))
    assert breaker.trip(T0)
    assert breaker.may_probe(T0)
    assert not breaker.trip(T0 + 1)


def test_starting_a_probe_that_is_not_due_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        Breaker(Policy()).start_probe(T0)


@pytest.mark.parametrize(
    "kw", [{"threshold": 0}, {"base": 0.0}, {"base": 5.0, "cap": 1.0}, {"jitter": 1.5}]
)
def test_bad_policies_are_refused(kw) -> None:
    with pytest.raises(ValueError, match="must"):
        Policy(**kw)


# ── properties ───────────────────────────────────────────────────────────────────────────────

steps = st.lists(
    st.tuples(
        st.sampled_from(["probe", UP, DOWN, UNKNOWN]),
        st.floats(min_value=0.0, max_value=100.0),
        units,
    ),
    max_size=80,
)
policies = st.builds(
    Policy,
    threshold=st.integers(1, 6),
    base=st.floats(0.1, 5.0),
    cap=st.floats(5.0, 60.0),
    jitter=st.sampled_from([0.0, 0.5, 1.0]),
)


@given(policy=policies, script=steps)
def test_probes_are_one_at_a_time_never_early_and_cooldowns_stay_within_cap(
    policy: Policy, script
) -> None:
    breaker = Breaker(policy)
    now = T0
    open_since: float | None = None
    transitions: list[Transition] = []
    for action, dt, u in script:
        now += dt
        if action == "probe":
            if breaker.may_probe(now):
                probe_at = breaker.next_probe()
                assert probe_at is not None and probe_at <= now
                breaker.start_probe(now)
                assert breaker.probing and not breaker.may_probe(now)
            continue
        was_probing = breaker.probing
        change = breaker.record(action, now, u)
        if change is not None:
            transitions.append(change)
            if change.opened:
                open_since = now
            else:
                assert open_since is not None and change.outage == pytest.approx(now - open_since)
        if breaker.is_open and (was_probing or (change is not None and change.opened)):
            probe_at = breaker.next_probe()
            assert probe_at is not None and now < probe_at <= now + policy.cap
        assert breaker.is_open is (
            open_since is not None and (not transitions or transitions[-1].opened)
        )
        if action is UP:
            assert not breaker.is_open
    # Opened and closed strictly alternate, starting with opened.
    assert [t.opened for t in transitions] == [i % 2 == 0 for i in range(len(transitions))]


@given(threshold=st.integers(1, 8), downs=st.integers(0, 20), u=units)
def test_opens_exactly_at_the_threshold(threshold: int, downs: int, u: float) -> None:
    breaker = Breaker(Policy(threshold=threshold))
    changes = [breaker.record(DOWN, T0 + i, u) for i in range(downs)]
    opened_at = [i for i, change in enumerate(changes) if change is not None]
    assert opened_at == ([threshold - 1] if downs >= threshold else [])
    assert breaker.is_open is (downs >= threshold)


def test_the_smallest_jittered_gap_still_moves_an_epoch_time() -> None:
    # Found by the property test above: u just below 1 gave a 2e-16 s gap, so a probe was due
    # at the very instant of the failure that scheduled it.
    gap = Policy(threshold=2, base=1.0, cap=5.0, jitter=1.0).cooldown(0, 0.9999999999999998)
    assert 0.0 < gap <= 5.0
    assert T0 + gap > T0

"""DueHeap and poll timing: which key is due and when, with the clock and randomness passed in."""

from __future__ import annotations

import math

import pytest
import strategies
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from monitor.core.keys import SessionKey
from monitor.core.schedule import DueHeap, first_due, next_due, retry_due

EPOCH = 1_709_294_400.0  # 2024-03-01T12:00:00Z: realistic magnitudes for float rounding

units = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
intervals = st.floats(min_value=1.0, max_value=86_400.0)
epochs = st.floats(min_value=0.0, max_value=4e9)


def heap_of(*entries: tuple[str, float]) -> DueHeap[str]:
    heap: DueHeap[str] = DueHeap()
    for key, due in entries:
        heap.push(key, due)
    return heap


# ── DueHeap: tables ──────────────────────────────────────────────────────────────────────────


def test_empty_heap() -> None:
    heap: DueHeap[str] = DueHeap()
    assert len(heap) == 0
    assert heap.peek() is None
    assert heap.pop_due(math.inf, 10) == []


def test_pops_in_due_order_and_only_what_is_due() -> None:
    heap = heap_of(("c", 30.0), ("a", 10.0), ("d", 40.0), ("b", 20.0))
    assert heap.peek() == 10.0
    assert heap.pop_due(25.0, 10) == [("a", 10.0), ("b", 20.0)]
    assert len(heap) == 2
    assert "a" not in heap
    assert "c" in heap
    assert heap.peek() == 30.0


def test_due_exactly_now_is_due() -> None:
    heap = heap_of(("a", 10.0))
    assert heap.pop_due(9.999, 10) == []
    assert heap.pop_due(10.0, 10) == [("a", 10.0)]


def test_ties_pop_in_key_order() -> None:
    heap = heap_of(("b", 5.0), ("c", 5.0), ("a", 5.0))
    assert heap.pop_due(5.0, 10) == [("a", 5.0), ("b", 5.0), ("c", 5.0)]


def test_re_push_supersedes_the_old_time() -> None:
    heap = heap_of(("a", 10.0), ("b", 20.0))
    heap.push("a", 30.0)
    assert len(heap) == 2
    assert heap.peek() == 20.0
    assert heap.pop_due(25.0, 10) == [("b", 20.0)]
    assert heap.pop_due(35.0, 10) == [("a", 30.0)]
    assert len(heap) == 0
    assert heap.peek() is None


def test_re_push_earlier_then_back_leaves_one_live_entry() -> None:
    heap = heap_of(("a", 10.0))
    heap.push("a", 5.0)
    heap.push("a", 10.0)
    assert heap.pop_due(100.0, 10) == [("a", 10.0)]
    assert heap.pop_due(100.0, 10) == []


def test_pushing_the_same_time_twice_pops_once() -> None:
    heap = heap_of(("a", 10.0), ("a", 10.0))
    assert len(heap) == 1
    assert heap.pop_due(100.0, 10) == [("a", 10.0)]
    assert heap.pop_due(100.0, 10) == []


def test_pull_earlier_moves_only_forward_in_time() -> None:
    heap = heap_of(("a", 100.0))
    heap.pull_earlier("a", 150.0)
    assert heap.peek() == 100.0
    heap.pull_earlier("a", 50.0)
    assert heap.peek() == 50.0
    heap.pull_earlier("a", 50.0)
    assert heap.pop_due(60.0, 10) == [("a", 50.0)]
    assert heap.pop_due(1000.0, 10) == []


def test_pull_earlier_ignores_keys_not_in_the_heap() -> None:
    # A key being polled right now is out of the heap; its next push decides its time.
    heap = heap_of(("a", 100.0))
    heap.pull_earlier("b", 1.0)
    assert "b" not in heap
    assert heap.pop_due(1000.0, 10) == [("a", 100.0)]


def test_discard_removes_a_key_and_ignores_unknown_ones() -> None:
    heap = heap_of(("a", 10.0), ("b", 20.0))
    heap.discard("a")
    heap.discard("zzz")
    assert "a" not in heap
    assert len(heap) == 1
    assert heap.peek() == 20.0
    assert heap.pop_due(100.0, 10) == [("b", 20.0)]


def test_discard_then_push_again() -> None:
    heap = heap_of(("a", 10.0))
    heap.discard("a")
    heap.push("a", 40.0)
    assert heap.pop_due(20.0, 10) == []
    assert heap.pop_due(40.0, 10) == [("a", 40.0)]


@pytest.mark.parametrize(
    ("limit", "expected"), [(0, []), (1, ["a"]), (2, ["a", "b"]), (9, ["a", "b", "c"])]
)
def test_pop_due_respects_the_limit(limit: int, expected: list[str]) -> None:
    heap = heap_of(("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 99.0))
    assert [key for key, _ in heap.pop_due(10.0, limit)] == expected
    assert len(heap) == 4 - len(expected)
    assert heap.peek() == ({0: 1.0, 1: 2.0, 2: 3.0}.get(limit, 99.0))


def test_session_keys_are_heap_keys() -> None:
    first = SessionKey("AI" + "a" * 32, "EX" + "a" * 32, "ES" + "a" * 32)
    second = SessionKey("AI" + "b" * 32, "EX" + "b" * 32, "ES" + "b" * 32)
    heap: DueHeap[SessionKey] = DueHeap()
    heap.push(second, EPOCH)
    heap.push(first, EPOCH)
    assert heap.pop_due(EPOCH, 10) == [(first, EPOCH), (second, EPOCH)]


# ── DueHeap: model-based properties ──────────────────────────────────────────────────────────

_keys = st.sampled_from("abcdefgh")
_times = st.integers(min_value=0, max_value=100).map(float)
_operations = st.lists(
    st.tuples(st.sampled_from(("push", "pull_earlier", "discard")), _keys, _times), max_size=40
)


def _replay(operations: list[tuple[str, str, float]]) -> tuple[DueHeap[str], dict[str, float]]:
    heap: DueHeap[str] = DueHeap()
    model: dict[str, float] = {}
    for operation, key, due in operations:
        if operation == "push":
            heap.push(key, due)
            model[key] = due
        elif operation == "pull_earlier":
            heap.pull_earlier(key, due)
            if key in model:
                model[key] = min(model[key], due)
        else:
            heap.discard(key)
            model.pop(key, None)
    return heap, model


@settings(deadline=None)
@given(operations=_operations, now=_times)
def test_pop_due_returns_exactly_the_keys_whose_latest_due_has_come(
    operations: list[tuple[str, str, float]], now: float
) -> None:
    heap, model = _replay(operations)
    expected = sorted(((k, d) for k, d in model.items() if d <= now), key=lambda kd: (kd[1], kd[0]))
    assert heap.pop_due(now, len(model) + 1) == expected
    remaining = {k: d for k, d in model.items() if d > now}
    assert len(heap) == len(remaining)
    assert heap.peek() == (min(remaining.values()) if remaining else None)


@settings(deadline=None)
@given(operations=_operations, now=_times, limit=st.integers(min_value=0, max_value=10))
def test_pop_due_with_a_limit_returns_a_prefix(
    operations: list[tuple[str, str, float]], now: float, limit: int
) -> None:
    heap, model = _replay(operations)
    due = sorted(((k, d) for k, d in model.items() if d <= now), key=lambda kd: (kd[1], kd[0]))
    assert heap.pop_due(now, limit) == due[:limit]
    assert heap.pop_due(now, len(model) + 1) == due[limit:]


class DueHeapMachine(RuleBasedStateMachine):
    """The heap against a dict of key → due, under any interleaving of its operations."""

    def __init__(self) -> None:
        super().__init__()
        self.heap: DueHeap[str] = DueHeap()
        self.model: dict[str, float] = {}

    @rule(key=_keys, due=_times)
    def push(self, key: str, due: float) -> None:
        self.heap.push(key, due)
        self.model[key] = due

    @rule(key=_keys, due=_times)
    def pull_earlier(self, key: str, due: float) -> None:
        self.heap.pull_earlier(key, due)
        if key in self.model:
            self.model[key] = min(self.model[key], due)

    @rule(key=_keys)
    def discard(self, key: str) -> None:
        self.heap.discard(key)
        self.model.pop(key, None)

    @precondition(lambda self: self.model)
    @rule(now=_times, limit=st.integers(min_value=0, max_value=4))
    def pop_due(self, now: float, limit: int) -> None:
        due = sorted(
            ((k, d) for k, d in self.model.items() if d <= now), key=lambda kd: (kd[1], kd[0])
        )
        popped = self.heap.pop_due(now, limit)
        assert popped == due[:limit]
        for key, _ in popped:
            del self.model[key]

    @invariant()
    def agrees_with_the_model(self) -> None:
        assert len(self.heap) == len(self.model)
        assert self.heap.peek() == (min(self.model.values()) if self.model else None)
        assert all(key in self.heap for key in self.model)


TestDueHeapMachine = DueHeapMachine.TestCase
TestDueHeapMachine.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)


# ── first_due / next_due / retry_due ─────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("u", "expected"), [(0.0, EPOCH), (0.25, EPOCH + 15.0), (0.5, EPOCH + 30.0)]
)
def test_first_due_table(u: float, expected: float) -> None:
    assert first_due(EPOCH, 60.0, u) == expected


@given(interval=intervals, u=units)
def test_first_due_offset_is_within_one_interval(interval: float, u: float) -> None:
    offset = first_due(0.0, interval, u)
    assert 0.0 <= offset < interval


@given(now=epochs, interval=intervals, u=units)
def test_first_due_is_within_one_interval_of_now(now: float, interval: float, u: float) -> None:
    due = first_due(now, interval, u)
    # [now, now + interval) in real arithmetic; the float sum can round onto the upper end.
    assert now <= due <= now + interval


@pytest.mark.parametrize(
    ("u", "expected"), [(0.0, EPOCH + 54.0), (0.5, EPOCH + 60.0), (0.75, EPOCH + 63.0)]
)
def test_next_due_table(u: float, expected: float) -> None:
    assert next_due(EPOCH, 60.0, u, jitter=0.1) == pytest.approx(expected)


def test_next_due_without_jitter_is_exactly_one_interval() -> None:
    assert next_due(EPOCH, 60.0, 0.9, jitter=0.0) == EPOCH + 60.0


@given(
    now=epochs,
    interval=intervals,
    u=units,
    jitter=st.floats(min_value=0.0, max_value=0.5),
)
def test_next_due_is_within_jitter_of_one_interval(
    now: float, interval: float, u: float, jitter: float
) -> None:
    offset = next_due(now, interval, u, jitter=jitter) - now
    slack = 1e-6 * max(1.0, now)  # float rounding of the sum at epoch magnitudes
    assert interval * (1 - jitter) - slack <= offset <= interval * (1 + jitter) + slack
    assert offset > 0


@pytest.mark.parametrize(
    ("failures", "u", "expected"),
    [
        (1, 0.0, 30.0),  # never below half an interval
        (1, 0.1, 30.0),  # 12 s of jitter, floored
        (1, 0.5, 60.0),  # ceiling 2 × 60
        (2, 0.5, 120.0),  # ceiling 4 × 60
        (3, 0.5, 150.0),  # ceiling 300 (cap)
        (50, 0.5, 150.0),  # failures beyond 16 do not overflow
        (10_000, 0.99, 297.0),
    ],
)
def test_retry_due_table(failures: int, u: float, expected: float) -> None:
    assert retry_due(EPOCH, 60.0, failures, u) - EPOCH == pytest.approx(expected)


@given(
    now=epochs,
    interval=st.floats(min_value=0.0, max_value=86_400.0),
    failures=st.integers(min_value=0, max_value=10_000),
    u=units,
    cap=st.floats(min_value=1.0, max_value=3600.0),
)
def test_retry_due_bounds(now: float, interval: float, failures: int, u: float, cap: float) -> None:
    delay = retry_due(now, interval, failures, u, cap=cap) - now
    slack = 1e-6 * max(1.0, now)
    assert delay >= interval / 2.0 - slack
    # At most `cap`, except that the half-interval floor wins when the interval exceeds 2 × cap.
    assert delay <= max(cap, interval / 2.0) + slack


@given(
    interval=intervals,
    failures=st.integers(min_value=0, max_value=40),
    u=units,
)
def test_retry_delay_never_shrinks_with_more_failures(
    interval: float, failures: int, u: float
) -> None:
    assert retry_due(0.0, interval, failures, u) <= retry_due(0.0, interval, failures + 1, u)


def test_retry_due_for_a_long_interval_keeps_the_half_interval_floor() -> None:
    # An hourly watch retries after 30 min even though cap is 5 min: the floor beats the cap.
    assert retry_due(EPOCH, 3600.0, 1, 0.0) == EPOCH + 1800.0
    assert retry_due(EPOCH, 3600.0, 5, 0.99) == EPOCH + 1800.0


@given(key=strategies.session_keys, due=epochs)
def test_any_session_key_round_trips_through_the_heap(key: SessionKey, due: float) -> None:
    heap: DueHeap[SessionKey] = DueHeap()
    heap.push(key, due)
    assert key in heap
    assert heap.pop_due(due, 1) == [(key, due)]
    assert key not in heap


def test_superseded_entries_do_not_pile_up() -> None:
    # Every key re-pushed and some discarded, far past the rebuild threshold: what pops is
    # still exactly the live times, and the dead tuples were dropped on the way.
    heap: DueHeap[int] = DueHeap()
    for key in range(5000):
        heap.push(key, float(key))
    for key in range(5000):
        heap.push(key, 10_000.0 - key)
    for key in range(0, 5000, 7):
        heap.discard(key)
    live = {key: 10_000.0 - key for key in range(5000) if key % 7}
    assert len(heap._heap) <= len(live) * 5 // 4 + 1025
    expected = sorted(((k, d) for k, d in live.items()), key=lambda kd: (kd[1], kd[0]))
    assert heap.pop_due(math.inf, len(live) + 1) == expected

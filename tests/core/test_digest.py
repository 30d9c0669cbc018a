"""core.digest: grouping, counts, the worst items, and when a digest batch is due."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitor.core import digest
from monitor.core.events import EventType
from tests.digestkit import overdue
from tests.sinks.sinkkit import make_event


def test_counts_and_worst_first() -> None:
    rows = list(enumerate(overdue(4)))
    rows.append((10, make_event(7, 1, kind=EventType.REVIEW_OVERDUE_RESOLVED)))
    rows.append((11, make_event(8, 1)))
    (found,) = digest.group(rows, digest.Policy(max_items=2))
    assert (found.overdue, found.resolved, found.changes, found.other) == (4, 1, 1, 0)
    assert found.worst == (rows[3][1], rows[2][1]) and found.more == 4
    assert digest.group_title(found) == "4 new overdue, 1 resolved, 1 change"


def test_group_by_a_label_and_a_missing_one() -> None:
    a = make_event(1, 1, labels={"course": "A"})
    b = make_event(2, 1, labels={"room": "9"})
    groups = digest.group([(1, a), (2, b)], digest.Policy(group_by=("course",)))
    assert [g.key for g in groups] == [(("course", "A"),), (("course", digest.UNGROUPED),)]
    assert [g.row_ids for g in groups] == [(1,), (2,)]


@given(n=st.integers(1, 60), cap=st.integers(1, 12), groups=st.integers(1, 4))
def test_every_row_is_in_exactly_one_group(n: int, cap: int, groups: int) -> None:
    rows = [(i, make_event(i, 1, labels={"course": str(i % groups)})) for i in range(n)]
    found = digest.group(rows, digest.Policy(group_by=("course",), max_items=cap))
    ids = sorted(i for g in found for i in g.row_ids)
    assert ids == list(range(n))
    assert all(len(g.worst) == min(cap, len(g.events)) for g in found)


def test_due_at_waits_out_the_window_for_fresh_rows_only() -> None:
    assert digest.due_at(created_at=100, next_attempt_at=100, window=120) == 220
    assert digest.due_at(created_at=100, next_attempt_at=900, window=120) == 900  # a retry

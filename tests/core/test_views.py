"""The read model's pure parts: views follow the alert rule, filters and sorts, pages, summary.
No event loop, literal and generated instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core import rules, views
from monitor.core.keys import SessionKey
from monitor.core.phase import Phase
from monitor.core.snapshot import Snapshot
from monitor.core.views import ApiHealth, SessionQuery, SessionRow, SessionView, Sort
from tests.strategies import session_keys

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)

_deadlines = st.one_of(
    st.none(), st.integers(-72, 72).map(lambda hours: NOW + timedelta(hours=hours, minutes=7))
)
_snapshots = st.builds(
    Snapshot,
    status=st.sampled_from([None, "Closed", "Scheduled", "Incident"]),
    review_required=st.one_of(st.none(), st.booleans()),
    reviewed=st.one_of(st.none(), st.booleans()),
    review_by_date=_deadlines,
)
_labels = st.dictionaries(st.sampled_from(["course", "term"]), st.sampled_from(["BIO", "CHEM"]))
_rows = st.builds(
    SessionRow,
    key=session_keys,
    labels=_labels,
    source=st.just("cli"),
    snapshot=st.one_of(st.none(), _snapshots),
)
_phases = st.one_of(st.none(), st.sampled_from(list(Phase)))


@st.composite
def view_sets(draw: st.DrawFn) -> list[SessionView]:
    rows = draw(st.lists(_rows, max_size=25, unique_by=lambda row: row.key.session_sid))
    return [views.view_of(row, now=NOW, phase=draw(_phases)) for row in rows]


_queries = st.builds(
    SessionQuery,
    phase=_phases,
    overdue=st.one_of(st.none(), st.booleans()),
    due_within=st.one_of(st.none(), st.sampled_from([0.0, 3600.0, 86400.0])),
    status=st.sampled_from([None, "closed", "Scheduled"]),
    labels=st.one_of(st.just({}), _labels),
    text=st.sampled_from([None, "es", "bio", "zzz"]),
    sort=st.sampled_from(list(Sort)),
    limit=st.integers(0, 10),
    offset=st.integers(0, 30),
)


@given(_rows)
def test_a_view_is_overdue_exactly_when_the_alert_rule_says(row: SessionRow) -> None:
    view = views.view_of(row, now=NOW, phase=None)
    if row.snapshot is None:
        assert (view.seen, view.overdue, view.status) == (False, None, None)
    else:
        assert view.overdue is rules.is_overdue(row.snapshot, NOW)
        assert (view.lateness is not None) is view.overdue


@given(view_sets(), _queries)
def test_a_page_holds_only_matches_in_order_and_counts_them_all(
    found: list[SessionView], query: SessionQuery
) -> None:
    page = views.select(found, query, NOW)
    matching = [v for v in found if views.matches(v, query, NOW)]
    assert page.total == len(matching)
    assert len(page.items) == max(0, min(query.limit, len(matching) - query.offset))
    keys = [views.sort_key(v, query.sort) for v in page.items]
    assert keys == sorted(keys)
    assert all(views.matches(v, query, NOW) for v in page.items)


@given(view_sets(), _queries, st.integers(1, 7))
def test_pages_cover_every_match_once(
    found: list[SessionView], query: SessionQuery, size: int
) -> None:
    seen: list[str] = []
    offset = 0
    while True:
        page = views.select(
            found, SessionQuery(**{**_fields(query), "limit": size, "offset": offset}), NOW
        )
        seen.extend(v.sid for v in page.items)
        offset += size
        if offset >= page.total:
            break
    assert len(seen) == len(set(seen)) == views.select(found, query, NOW).total


@given(view_sets())
def test_lateness_sort_puts_the_most_overdue_first(found: list[SessionView]) -> None:
    items = views.select(found, SessionQuery(limit=100), NOW).items
    late = [v.lateness for v in items if v.lateness is not None]
    assert late == sorted(late, reverse=True)
    assert all(v.lateness is not None for v in items[: len(late)])


@given(view_sets())
def test_the_summary_never_calls_the_unseen_good_news(found: list[SessionView]) -> None:
    s = views.summarise(found, now=NOW, running=True, sinks=[], api=ApiHealth())
    assert s.overdue == sum(1 for v in found if v.overdue)
    assert s.unseen == sum(1 for v in found if not v.seen)
    assert s.overdue_known is (s.unseen == 0)
    assert s.watched == len(found) == s.unseen + sum(s.by_status.values())


def _fields(query: SessionQuery) -> dict[str, object]:
    return {name: getattr(query, name) for name in SessionQuery.__dataclass_fields__}


def _view(sid: int, *, deadline: timedelta | None, **labels: str) -> SessionView:
    row = SessionRow(
        key=_key(sid),
        labels=labels,
        source="cli",
        snapshot=Snapshot("Closed", True, False, None if deadline is None else NOW + deadline),
    )
    return views.view_of(row, now=NOW, phase=Phase.AWAITING_REVIEW)


def _key(n: int) -> SessionKey:
    return SessionKey("AI" + "a" * 32, "EX" + "b" * 32, f"ES{n:032x}")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (SessionQuery(), [2, 1, 3, 4, 5]),
        (SessionQuery(sort=Sort.DEADLINE), [2, 1, 3, 4, 5]),
        (SessionQuery(overdue=True), [2, 1]),
        (SessionQuery(due_within=3 * 3600), [3]),
        (SessionQuery(due_within=86400), [3, 4]),
        (SessionQuery(labels={"course": "BIO101"}), [2]),
        (SessionQuery(text="bio1"), [2, 3]),
        (SessionQuery(text=f"{5:032x}"), [5]),
        (SessionQuery(status="CLOSED", limit=2, offset=1), [1, 3]),
    ],
)
def test_filters_and_sorts(query: SessionQuery, expected: list[int]) -> None:
    found = [
        _view(1, deadline=-HOUR),
        _view(2, deadline=-5 * HOUR, course="BIO101"),
        _view(3, deadline=2 * HOUR, course="bio101"),
        _view(4, deadline=20 * HOUR),
        _view(5, deadline=None),
    ]
    assert [v.sid for v in views.select(found, query, NOW).items] == [
        _key(n).session_sid for n in expected
    ]


def test_a_bad_query_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        SessionQuery(limit=-1)
    with pytest.raises(ValueError, match="due_within"):
        SessionQuery(due_within=-1)


@pytest.mark.parametrize(
    ("seconds", "fresh"),
    [(0.0, True), (1.999, True), (2.0, False), (60.0, False), (-0.001, False)],
)
def test_built_views_answer_again_within_keep_and_never_from_the_future(
    seconds: float, fresh: bool
) -> None:
    built = datetime(2026, 3, 1, 12, tzinfo=UTC)
    now = built + timedelta(seconds=seconds)
    assert views.still_fresh(built, now, keep=timedelta(seconds=2)) is fresh

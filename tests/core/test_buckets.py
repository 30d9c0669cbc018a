"""Per-label review buckets: the cap, `other`, `none`, and series that never flap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hypothesis import given
from hypothesis import strategies as st

from monitor.core.buckets import CACHE_CAPPED, NONE, OTHER, LabelBuckets
from monitor.core.watches import shared_labels

Row = tuple[Mapping[str, str], bool, bool]


def scrape(buckets: LabelBuckets, rows: Sequence[Row]) -> dict[tuple[str, ...], tuple[int, int]]:
    tally = buckets.tally()
    for labels, pending, overdue in rows:
        tally.add(labels, pending, overdue=overdue)
    return tally.result()


def course(name: str) -> dict[str, str]:
    return shared_labels({"course": name})


def test_counts_pending_and_overdue_per_value() -> None:
    rows = [
        (course("BIO101"), True, True),
        (course("BIO101"), True, False),
        (course("BIO101"), False, False),
        (course("CHEM201"), True, True),
        ({}, True, True),
        ({"course": ""}, True, False),
    ]
    assert scrape(LabelBuckets(["course"], cap=50), rows) == {
        ("BIO101",): (2, 1),
        ("CHEM201",): (1, 1),
        (NONE,): (2, 1),
    }


def test_values_past_the_cap_count_as_other_in_watch_order() -> None:
    rows = [(course(name), True, name == "D") for name in "ABCDEA"]
    assert scrape(LabelBuckets(["course"], cap=3), rows) == {
        ("A",): (2, 0),
        ("B",): (1, 0),
        ("C",): (1, 0),
        (OTHER,): (2, 1),
    }


def test_a_value_keeps_its_series_whatever_the_counts_do() -> None:
    buckets = LabelBuckets(["course"], cap=2)
    scrape(buckets, [(course("A"), True, False), (course("B"), True, False)])
    # B's sessions went and C has many more: B keeps its series at 0, C stays under other.
    later = scrape(buckets, [(course("A"), False, False)] + [(course("C"), True, True)] * 5)
    assert later == {("A",): (0, 0), ("B",): (0, 0), (OTHER,): (5, 5)}


def test_several_labels_are_capped_each() -> None:
    rows = [
        ({"course": "A", "campus": "north"}, True, True),
        ({"course": "B", "campus": "south"}, True, False),
        ({"course": "C", "campus": "north"}, True, False),
        ({"campus": "east"}, True, True),
    ]
    assert scrape(LabelBuckets(["course", "campus"], cap=2), rows) == {
        ("A", "north"): (1, 1),
        ("B", "south"): (1, 0),
        (OTHER, "north"): (1, 0),
        (NONE, OTHER): (1, 1),
    }


def test_labels_other_than_the_configured_ones_do_not_split() -> None:
    rows = [({"course": "A", "student": str(i)}, True, False) for i in range(100)]
    assert scrape(LabelBuckets(["course"], cap=5), rows) == {("A",): (100, 0)}


def test_more_values_past_the_cap_than_the_cache_holds_still_count_as_other() -> None:
    rows = [({"student": f"S{i}"}, True, i % 2 == 0) for i in range(CACHE_CAPPED * 2)]
    buckets = LabelBuckets(["student"], cap=1)
    for _ in range(2):
        assert scrape(buckets, rows) == {
            ("S0",): (1, 1),
            (OTHER,): (CACHE_CAPPED * 2 - 1, CACHE_CAPPED - 1),
        }


values = st.sampled_from(["A", "B", "C", "D", "E", "F", ""])
rows = st.lists(
    st.tuples(
        st.one_of(st.just({}), values.map(lambda v: {"course": v})), st.booleans(), st.booleans()
    ).map(lambda r: (r[0], r[1], r[1] and r[2])),
    max_size=60,
)


@given(st.lists(rows, min_size=1, max_size=5), st.integers(min_value=1, max_value=4))
def test_bounded_stable_and_summing_to_the_totals(scrapes: list[list[Row]], cap: int) -> None:
    buckets = LabelBuckets(["course"], cap=cap)
    before: dict[tuple[str, ...], tuple[int, int]] = {}
    for scraped in scrapes:
        result = scrape(buckets, scraped)
        assert len(result) <= cap + 2  # own values, other, none
        assert list(result)[: len(before)] == list(before)  # no series ever disappears
        assert sum(p for p, _ in result.values()) == sum(p for _, p, _ in scraped)
        assert sum(o for _, o in result.values()) == sum(o for _, _, o in scraped)
        own = {b[0] for b in before} - {OTHER, NONE}
        for labels, _, _ in scraped:
            if labels.get("course") in own:
                assert (labels["course"],) in result  # an own value never falls to other
        before = result

"""reconcile: what a reload changes in the stored watch set, as tables and properties."""

from __future__ import annotations

from collections.abc import Mapping

import strategies
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.keys import SessionKey
from monitor.core.watches import NO_CHANGES, Changes, Watch, apply, kind_of, reconcile

Desired = dict[str, dict[SessionKey, Watch]]

A = SessionKey("AI" + "a" * 32, "EX" + "a" * 32, "ES" + "1" * 32)
B = SessionKey("AI" + "a" * 32, "EX" + "a" * 32, "ES" + "2" * 32)
C = SessionKey("AI" + "a" * 32, "EX" + "a" * 32, "ES" + "3" * 32)

FILE = "file:lms.csv"
URL = "url:https://lms.example/export.csv"
DISCOVERY = "discovery:appointments:AI" + "a" * 32


def w(key: SessionKey, source: str, **labels: str) -> Watch:
    return Watch(key, labels, None, source)


def listing(source: str, *watches: Watch) -> dict[SessionKey, Watch]:
    return {watch.key: watch for watch in watches if watch.source == source}


# ── tables ───────────────────────────────────────────────────────────────────────────────────


def test_new_watches_are_added_sorted_by_key() -> None:
    desired = {FILE: {C: w(C, FILE), A: w(A, FILE)}}
    assert reconcile({}, desired, {FILE}) == Changes(added=(w(A, FILE), w(C, FILE)))


def test_a_source_dropping_a_watch_removes_it() -> None:
    stored = {A: w(A, FILE), B: w(B, FILE)}
    assert reconcile(stored, {FILE: {A: w(A, FILE)}}, {FILE}) == Changes(removed=(w(B, FILE),))


def test_labels_and_interval_changes_are_changes() -> None:
    stored = {A: w(A, FILE, course="BIO101"), B: w(B, FILE)}
    desired = {FILE: {A: w(A, FILE, course="BIO102"), B: Watch(B, {}, 30.0, FILE)}}
    changes = reconcile(stored, desired, {FILE})
    assert changes.changed == (w(A, FILE, course="BIO102"), Watch(B, {}, 30.0, FILE))
    assert not changes.added and not changes.removed


def test_unchanged_is_no_change_and_false() -> None:
    stored = {A: w(A, FILE, course="BIO101")}
    changes = reconcile(stored, {FILE: dict(stored)}, {FILE})
    assert changes == NO_CHANGES
    assert not changes


def test_a_failed_source_removes_nothing_anywhere() -> None:
    """The failed URL may be what still lists B; a watch kept one reload too long is cheap."""
    stored = {A: w(A, FILE), B: w(B, FILE)}
    desired: Desired = {FILE: {A: w(A, FILE)}, URL: {}}
    assert reconcile(stored, desired, {FILE}) == NO_CHANGES
    assert reconcile(stored, desired, {FILE, URL}).removed == (w(B, FILE),)


def test_discovery_never_removes() -> None:
    stored = {A: w(A, DISCOVERY)}
    assert reconcile(stored, {DISCOVERY: {}}, {DISCOVERY}) == NO_CHANGES


def test_a_watch_added_by_hand_is_not_removed_by_a_reload() -> None:
    stored = {A: w(A, "cli")}
    assert reconcile(stored, {FILE: {}}, {FILE}) == NO_CHANGES


def test_a_source_taken_out_of_the_config_takes_its_watches() -> None:
    stored = {A: w(A, URL), B: w(B, FILE)}
    assert reconcile(stored, {FILE: {B: w(B, FILE)}}, {FILE}).removed == (w(A, URL),)


def test_two_sources_the_first_wins_and_the_watch_stays_until_both_drop_it() -> None:
    both: Desired = {FILE: {A: w(A, FILE, course="x")}, URL: {A: w(A, URL, course="y")}}
    stored = apply({}, reconcile({}, both, {FILE, URL}))
    assert stored == {A: w(A, FILE, course="x")}

    url_only: Desired = {FILE: {}, URL: {A: w(A, URL, course="y")}}
    changes = reconcile(stored, url_only, {FILE, URL})
    assert changes == Changes(changed=(w(A, URL, course="y"),))
    stored = apply(stored, changes)

    assert reconcile(stored, {FILE: {}, URL: {}}, {FILE, URL}).removed == (w(A, URL, course="y"),)


def test_an_earlier_source_takes_over_from_a_later_one() -> None:
    stored = {A: w(A, DISCOVERY, exam_title="Final")}
    desired: Desired = {FILE: {A: w(A, FILE, course="BIO")}, DISCOVERY: {}}
    assert reconcile(stored, desired, {FILE}).changed == (w(A, FILE, course="BIO"),)


def test_a_partly_read_owner_keeps_its_watch_as_it_is() -> None:
    """Discovery read only its first pages: handing A to the file now would flip it back."""
    stored = {A: w(A, DISCOVERY, exam_title="Final")}
    desired: Desired = {DISCOVERY: {}, FILE: {A: w(A, FILE, course="BIO")}}
    assert reconcile(stored, desired, {FILE}) == NO_CHANGES
    assert reconcile(stored, desired, {FILE, DISCOVERY}).changed == (w(A, FILE, course="BIO"),)


def test_the_record_names_the_source_that_listed_it() -> None:
    desired = {FILE: {A: Watch(A, {}, None, "inline")}}
    assert reconcile({}, desired, {FILE}).added == (w(A, FILE),)


def test_kind_of() -> None:
    assert kind_of("file:a:b.csv") == "file"
    assert kind_of("inline") == "inline"


# ── properties ───────────────────────────────────────────────────────────────────────────────

SOURCES = ("inline", FILE, URL, DISCOVERY, "dir:/exports")
_labels = st.dictionaries(st.sampled_from(["course", "term"]), st.sampled_from(["A", "B"]))
_intervals = st.one_of(st.none(), st.sampled_from([30.0, 60.0]))


@st.composite
def worlds(draw: st.DrawFn) -> tuple[dict[SessionKey, Watch], Desired, set[str]]:
    """A stored set, what each configured source lists (in config order), which were read."""
    keys = draw(st.lists(strategies.session_keys, min_size=1, max_size=5, unique=True))

    def watches(sources: tuple[str, ...] | list[str]) -> dict[SessionKey, Watch]:
        chosen = draw(st.lists(st.sampled_from(keys), unique=True))
        return {
            key: Watch(key, draw(_labels), draw(_intervals), draw(st.sampled_from(sources)))
            for key in chosen
        }

    config = draw(st.lists(st.sampled_from(SOURCES), unique=True))
    desired = {name: watches([name]) for name in config}
    stored = watches([*SOURCES, "cli"])
    complete = set(draw(st.lists(st.sampled_from(config))) if config else [])
    return stored, desired, complete


def listed(desired: Mapping[str, Mapping[SessionKey, Watch]]) -> set[SessionKey]:
    return {key for watches in desired.values() for key in watches}


@given(worlds())
def test_reconciling_twice_changes_nothing_the_second_time(
    world: tuple[dict[SessionKey, Watch], Desired, set[str]],
) -> None:
    stored, desired, complete = world
    after = apply(stored, reconcile(stored, desired, complete))
    assert reconcile(after, desired, complete) == NO_CHANGES


@given(worlds())
def test_removals_need_every_source_read_and_a_removing_kind(
    world: tuple[dict[SessionKey, Watch], Desired, set[str]],
) -> None:
    stored, desired, complete = world
    removed = reconcile(stored, desired, complete).removed
    if not set(desired) <= complete:
        assert removed == ()
    assert all(kind_of(watch.source) not in ("discovery", "cli") for watch in removed)
    assert all(stored[watch.key] == watch for watch in removed)


@given(worlds())
def test_a_listed_watch_is_never_removed(
    world: tuple[dict[SessionKey, Watch], Desired, set[str]],
) -> None:
    stored, desired, complete = world
    changes = reconcile(stored, desired, complete)
    assert not {watch.key for watch in changes.removed} & listed(desired)
    assert listed(desired) <= set(apply(stored, changes))


@given(worlds())
def test_with_every_source_read_the_first_source_in_order_wins(
    world: tuple[dict[SessionKey, Watch], Desired, set[str]],
) -> None:
    stored, desired, _ = world
    after = apply(stored, reconcile(stored, desired, set(desired)))
    for key in listed(desired):
        first = next(name for name, watches in desired.items() if key in watches)
        expected = desired[first][key]
        assert after[key] == Watch(key, expected.labels, expected.interval, first)


@given(worlds())
def test_changes_are_sorted_and_disjoint(
    world: tuple[dict[SessionKey, Watch], Desired, set[str]],
) -> None:
    stored, desired, complete = world
    changes = reconcile(stored, desired, complete)
    groups = (changes.added, changes.removed, changes.changed)
    for group in groups:
        assert [watch.key for watch in group] == sorted(watch.key for watch in group)
    keys = [watch.key for group in groups for watch in group]
    assert len(keys) == len(set(keys))
    assert {watch.key for watch in changes.added}.isdisjoint(stored)


def test_watches_listing_one_label_set_share_one_mapping_in_its_order() -> None:
    from monitor.core import watches
    from monitor.core.watches import shared_labels

    watches._shared.clear()  # the property tests above may have filled the bounded table
    first = shared_labels({"course": "BIO101", "term": "fall"})
    again = shared_labels(dict([("course", "BIO101"), ("term", "fall")]))
    assert first is again and first == {"course": "BIO101", "term": "fall"}
    reordered = shared_labels({"term": "fall", "course": "BIO101"})
    assert list(reordered) == ["term", "course"]


def test_label_sets_past_the_cap_are_kept_whole_but_not_shared() -> None:
    from monitor.core.watches import SHARED_LABEL_SETS, shared_labels

    for n in range(SHARED_LABEL_SETS):  # a label per student: more sets than are worth sharing
        shared_labels({"student": f"S{n}"})
    late = {"student": "a late one"}
    assert shared_labels(late) == late and shared_labels(late) is not shared_labels(late)

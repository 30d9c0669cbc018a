"""The watch set as data: what each source wants watched, reconciled with what the store holds.

Sources (inline YAML, watch files, CSV directories, a URL, API discovery) are read into
*desired* sets; `reconcile` says what that changes in the store. It is pure so a reload can be
previewed (`check-config`) exactly as it would be applied.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final

from monitor.core.keys import SessionKey

__all__ = [
    "DISCOVERY",
    "NO_CHANGES",
    "NO_LABELS",
    "REMOVING_KINDS",
    "Changes",
    "Watch",
    "apply",
    "kind_of",
    "reconcile",
    "shared_labels",
]

NO_LABELS: Final[Mapping[str, str]] = MappingProxyType({})
"""One shared empty mapping: most of 100,000 watches carry no labels."""

SHARED_LABEL_SETS: Final = 4096
"""Distinct label sets kept for sharing; past it (a label per student) each watch has its own."""
_shared: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}


def shared_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """One dict per distinct label set, each string interned: 100,000 watches carry a few
    sets ({course: BIO101}), and a dict of its own per watch is most of a watch's memory.
    Never mutate the result. Order is part of the set: labels render in the order listed."""
    items = tuple(labels.items())
    found = _shared.get(items)
    if found is None:
        found = {sys.intern(k): sys.intern(v) for k, v in items}
        if len(_shared) < SHARED_LABEL_SETS:
            _shared[items] = found
    return found


DISCOVERY: Final = "discovery"
"""Kind of the API discovery sources, which list sessions but never unlist them."""

REMOVING_KINDS: Final = frozenset({"inline", "file", "dir", "url"})
"""Source kinds whose list is the whole truth: a watch they stop listing goes.

Discovery is not one (completed sessions leave the appointments report while their review
may still be pending; they retire by phase instead), nor are kinds no configuration names
(a watch added by hand is removed by hand)."""


@dataclass(frozen=True, slots=True)
class Watch:
    """One watched session, as a source lists it (and the store keeps it)."""

    key: SessionKey
    labels: Mapping[str, str] = field(default_factory=lambda: NO_LABELS)
    """Carried on every alert, e.g. {course: BIO101}."""
    interval: float | None = None
    """This session's poll interval, overriding its phase's; None follows the phase."""
    source: str = "inline"
    """Where it came from: "inline", "file:watches.csv", "dir:/exports", "url:https://…",
    "discovery:appointments:AI…". The part before the first colon is its kind."""


@dataclass(frozen=True, slots=True)
class Changes:
    """What a reconcile changes in the store; each tuple sorted by key, so runs compare equal."""

    added: tuple[Watch, ...] = ()
    removed: tuple[Watch, ...] = ()
    """As the store held them (their source is the one that dropped them)."""
    changed: tuple[Watch, ...] = ()
    """The new record: other labels, interval, or another source now listing it first."""

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


NO_CHANGES: Final = Changes()


def kind_of(source: str) -> str:
    """The part before the first colon: "file" for "file:watches.csv", "inline" for "inline"."""
    return source.partition(":")[0]


def reconcile(
    stored: Mapping[SessionKey, Watch],
    desired: Mapping[str, Mapping[SessionKey, Watch]],
    complete: Collection[str],
) -> Changes:
    """What makes `stored` follow `desired`.

    `desired` maps each configured source, in config order, to the watches it listed this time
    (a source that failed to read maps to what it got, maybe nothing); `complete` names the
    sources read in full. A session listed by several sources takes its labels and interval
    from the first in config order, and stays while any of them lists it.

    A watch no source lists is removed only when its source is of a removing kind and every
    configured source was read in full (a source no longer configured lists nothing): a source
    that failed may be the one still listing it, and a watch kept one reload too long costs a
    few polls, while one dropped wrongly can miss a review.
    """
    winners = _winners(desired)
    all_read = all(name in complete for name in desired)
    added: list[Watch] = []
    changed: list[Watch] = []
    for key, watch in winners.items():
        held = stored.get(key)
        if held is None:
            added.append(watch)
        elif held != watch and not _owner_unsure(held, watch, desired, complete):
            changed.append(watch)
    removed = [
        held
        for key, held in stored.items()
        if all_read and key not in winners and kind_of(held.source) in REMOVING_KINDS
    ]
    return Changes(added=_sorted(added), removed=_sorted(removed), changed=_sorted(changed))


def apply(stored: Mapping[SessionKey, Watch], changes: Changes) -> dict[SessionKey, Watch]:
    """`stored` after `changes`: what the store holds once a reconcile is written."""
    after = dict(stored)
    for watch in (*changes.added, *changes.changed):
        after[watch.key] = watch
    for watch in changes.removed:
        after.pop(watch.key, None)
    return after


def _winners(desired: Mapping[str, Mapping[SessionKey, Watch]]) -> dict[SessionKey, Watch]:
    winners: dict[SessionKey, Watch] = {}
    for name, watches in desired.items():
        for key, watch in watches.items():
            # The record names the source it was listed by, whatever the reader put there.
            winners.setdefault(key, watch if watch.source == name else replace(watch, source=name))
    return winners


def _owner_unsure(
    held: Watch,
    winner: Watch,
    desired: Mapping[str, Mapping[SessionKey, Watch]],
    complete: Collection[str],
) -> bool:
    """The stored owner was only partly read and did not list the session this time.

    Handing the watch to a later source now would flip its labels back on the next full read;
    an earlier source listing it wins either way."""
    owner = held.source
    if owner not in desired or owner in complete:
        return False
    return _order(desired, winner.source) > _order(desired, owner)


def _order(desired: Mapping[str, object], name: str) -> int:
    return next(i for i, source in enumerate(desired) if source == name)


def _sorted(watches: list[Watch]) -> tuple[Watch, ...]:
    return tuple(sorted(watches, key=lambda watch: watch.key))

"""The watch set's way into the store: read every source, reconcile, write the changes.

At start-up (and, once reload exists, at every reload) each configured source is read into
what it wants watched; `core.watches.reconcile` says what that changes in the store, and the
store's active watches are then what the poller watches. Watches added by hand (`spmon watch
add`, source "cli"; the admin API, source "api") take part as the first source, read in full: no file or URL takes them
over, and no reconcile removes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import structlog

from monitor.core.keys import SessionKey
from monitor.core.watches import Changes, Watch, apply, kind_of, reconcile
from monitor.sources import SourceError, UrlReader
from monitor.store import WatchStore

__all__ = ["API", "BY_HAND", "CLI", "Desired", "Synced", "plan", "read", "sync"]

log = structlog.get_logger("spmon.sources")

CLI = "cli"
"""The source of watches added with `spmon watch add` / `import`."""
API = "api"
"""The source of watches added through the admin API (`POST /api/v1/watches`)."""
BY_HAND: Final = (CLI, API)
"""Source kinds of watches added by hand: no configured source lists them, so a reconcile
keeps them, first, and only a hand (the CLI or the API) removes them."""


@dataclass(frozen=True, slots=True)
class Desired:
    """What every configured source listed this time, in config order, and which were read
    in full (a source that failed, or whose answer had problems, removes nothing)."""

    listed: Mapping[str, Mapping[SessionKey, Watch]]
    complete: frozenset[str]

    def find(self, key: SessionKey) -> Watch | None:
        """The watch the first source listing `key` gives it."""
        return next((listed[key] for listed in self.listed.values() if key in listed), None)


@dataclass(frozen=True, slots=True)
class Synced:
    changes: Changes
    active: Mapping[SessionKey, Watch]
    """The store's watches in force after the changes: what the poller watches."""


async def read(
    names: Sequence[str],
    local: Mapping[str, Mapping[SessionKey, Watch]],
    readers: Mapping[str, UrlReader],
) -> Desired:
    """Every source in `names`: local ones as loaded with the settings, URL ones fetched now.
    A URL that fails is logged and listed as empty and incomplete."""
    listed: dict[str, Mapping[SessionKey, Watch]] = {}
    complete: set[str] = set()
    for name in names:
        reader = readers.get(name)
        if reader is None:
            listed[name] = local.get(name, {})
            complete.add(name)
            continue
        try:
            listing = await reader.read()
        except SourceError as exc:
            log.warning("source.unreadable", source=name, reason=str(exc), kept="stored watches")
            listed[name] = {}
            continue
        listed[name] = listing.watches
        if listing.problems:
            log.warning("source.problems", source=name, problems=list(listing.problems))
        else:
            complete.add(name)
    return Desired(listed, frozenset(complete))


def plan(stored: Mapping[SessionKey, Watch], desired: Desired) -> Changes:
    """What a reconcile of `desired` into `stored` changes, hand-added watches kept."""
    listed: dict[str, Mapping[SessionKey, Watch]] = {
        kind: {key: w for key, w in stored.items() if kind_of(w.source) == kind} for kind in BY_HAND
    }
    listed |= {n: w for n, w in desired.listed.items() if n not in BY_HAND}
    return reconcile(stored, listed, {*BY_HAND, *desired.complete})


async def sync(store: WatchStore, desired: Desired, *, now: float) -> Synced:
    """Reconcile `desired` into the store, in one transaction; the watches then in force."""
    stored = await store.active_watches(like=desired.find)
    changes = plan(stored, desired)
    if not changes:
        return Synced(changes, _in_order(stored, desired))
    await store.apply_watches(changes, now=now)
    log.info(
        "watches.reconciled",
        added=len(changes.added),
        removed=len(changes.removed),
        changed=len(changes.changed),
    )
    active = apply(stored, changes)
    if len({key.session_sid for key in active}) < len(active):
        # One session sid listed under two exams is one row in the store, and the store is
        # what a restart resumes from. Otherwise the copy in hand is the same, and reading
        # 100,000 rows again would only raise the start's peak memory.
        active = await store.active_watches()
    return Synced(changes, _in_order(active, desired))


def _in_order(active: Mapping[SessionKey, Watch], desired: Desired) -> dict[SessionKey, Watch]:
    """`active` in config order (sources, then rows), the rest after in the store's order:
    `once` reports and first polls follow the order people listed their sessions in."""
    ordered = {
        key: active[key] for listed in desired.listed.values() for key in listed if key in active
    }
    return ordered | {key: watch for key, watch in active.items() if key not in ordered}

"""Which tracked fields changed between two snapshots."""

from __future__ import annotations

from monitor.core.events import Change, Field, Value
from monitor.core.snapshot import Snapshot

__all__ = ["Change", "diff"]


def diff(previous: Snapshot | None, current: Snapshot) -> tuple[Change, ...]:
    """Changes from `previous` to `current`; the first sighting (None) is a baseline: no changes.

    Dates are datetimes, so equality is between instants, never between spellings.
    """
    if previous is None:
        return ()
    pairs: tuple[tuple[Field, Value, Value], ...] = (
        (Field.STATUS, previous.status, current.status),
        (Field.REVIEW_REQUIRED, previous.review_required, current.review_required),
        (Field.REVIEW_BY_DATE, previous.review_by_date, current.review_by_date),
    )
    return tuple(Change(name, old, new) for name, old, new in pairs if old != new)

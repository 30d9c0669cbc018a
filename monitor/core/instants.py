"""One datetime object per distinct instant the watch set's snapshots hold.

Deadlines and appointments come in slots (an exam's sessions booked on the hour, reviews due
by the same evening): 100,000 snapshots name a few thousand instants, and a datetime is 48
bytes. A snapshot keeps the shared object from a bounded table instead of one of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final, overload

__all__ = ["SHARED_INSTANTS", "shared_instant"]

SHARED_INSTANTS: Final = 16384
"""Distinct instants kept for sharing. Past it the table starts afresh: the objects already
shared stay where they are, and instants seen from then on are shared again, so a long run's
stale deadlines do not keep new ones from sharing."""
_shared: dict[datetime, datetime] = {}


@overload
def shared_instant(value: datetime) -> datetime: ...
@overload
def shared_instant(value: None) -> None: ...
def shared_instant(value: datetime | None) -> datetime | None:
    """`value`, or the equal instant already held. Only UTC values are shared: an equal
    instant in another zone would print differently."""
    if value is None or value.tzinfo is not UTC:
        return value
    found = _shared.get(value)
    if found is None:
        if len(_shared) >= SHARED_INSTANTS:
            _shared.clear()
        found = _shared[value] = value
    return found

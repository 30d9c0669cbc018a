"""What we remember of a session between polls: the tracked fields only, as typed values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Snapshot"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The fields spmon diffs and evaluates, parsed from one API response.

    Instants are aware UTC datetimes, so two spellings of one instant compare equal
    (invariant 8). `url` is carried for links in alerts and `appointment` (the API's
    `appointmentDate`) for the session's lifecycle phase; neither is diffed.
    """

    status: str | None
    review_required: bool | None
    reviewed: bool | None
    review_by_date: datetime | None
    url: str | None = None
    appointment: datetime | None = None

    @property
    def review_pending(self) -> bool:
        """A review is asked for and not done yet."""
        return self.review_required is True and self.reviewed is not True

"""What we remember of a session between polls: the tracked fields only, as typed values."""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from monitor.core.context import Context
from monitor.core.keys import SessionKey

__all__ = ["Snapshot", "compact_url"]

_SID: Final = "\x00"
"""Stands for the session SID in a kept URL: never part of a URL, so never ambiguous."""


def compact_url(url: str | None, session_sid: str) -> str | None:
    """`url` as a snapshot keeps it: with the session's SID taken out, a session URL is one
    string shared by 100,000 sessions instead of 100 bytes each. `Snapshot.link` undoes it."""
    if url is None or session_sid not in url or _SID in url:
        return url
    return sys.intern(url.replace(session_sid, _SID))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The fields spmon diffs and evaluates, parsed from one API response.

    Instants are aware UTC datetimes, so two spellings of one instant compare equal
    (invariant 8). `url` is carried for links in alerts, `appointment` (the API's
    `appointmentDate`) for the session's lifecycle phase and `context` (exam, course, install,
    status reason: a shared record) for what alerts say; none is diffed.
    """

    status: str | None
    review_required: bool | None
    reviewed: bool | None
    review_by_date: datetime | None
    url: str | None = None
    appointment: datetime | None = None
    context: Context | None = None

    @property
    def review_pending(self) -> bool:
        """A review is asked for and not done yet."""
        return self.review_required is True and self.reviewed is not True

    def kept(self) -> Snapshot:
        """This snapshot as memory keeps it between polls: its context shared (no reviewer)."""
        context = self.context
        if context is None or context.reviewer_sid is None:
            return self
        return replace(self, context=context.kept())

    def link(self, key: SessionKey | None) -> str | None:
        """The session's URL as the API gave it (`url` may be kept compact: `compact_url`)."""
        url = self.url
        if url is None or key is None or _SID not in url:
            return url
        return url.replace(_SID, key.session_sid)

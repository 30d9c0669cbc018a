"""What an alert says about a session besides its SIDs: the exam, the course, the install.

Every value here is shared by many sessions (an exam's title by all its sessions), so a
snapshot keeps one pointer to a record from a bounded table, not strings of its own: 100,000
watched sessions carry a few hundred records. The reviewer's SID is the exception: it is kept
only on the snapshot an event is made from (`Context.kept` drops it), because only events read
it and it would make most records distinct.

No student data: the student's name, e-mail and user SID are never read into a record.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Final

__all__ = ["NO_CONTEXT", "SHARED_CONTEXTS", "Context", "shared_context"]


@dataclass(frozen=True, slots=True)
class Context:
    """The session's names as the API gave them; any may be None (absent, or of a wrong type)."""

    exam_title: str | None = None
    course: str | None = None
    install_name: str | None = None
    status_reason: str | None = None
    reviewer_sid: str | None = None
    """Who completed the review (a staff user's SID), on events only."""

    def kept(self) -> Context | None:
        """The record a snapshot keeps between polls: shared, without the reviewer."""
        if self.reviewer_sid is None:
            return self
        return shared_context(self.exam_title, self.course, self.install_name, self.status_reason)


NO_CONTEXT: Final = Context()

SHARED_CONTEXTS: Final = 4096
"""Distinct records kept for sharing; past it (a title per session) each session has its own."""
_shared: dict[tuple[str | None, ...], Context] = {}


def shared_context(
    exam_title: str | None,
    course: str | None,
    install_name: str | None,
    status_reason: str | None,
    reviewer_sid: str | None = None,
) -> Context | None:
    """One record per distinct set of names (None when there are none); with a reviewer, a
    record of its own that `kept` turns back into the shared one."""
    names = (exam_title, course, install_name, status_reason)
    if reviewer_sid is not None:
        base = shared_context(*names) or NO_CONTEXT
        return replace(base, reviewer_sid=reviewer_sid)
    if names == (None, None, None, None):
        return None
    found = _shared.get(names)
    if found is None:
        found = Context(*(None if n is None else sys.intern(n) for n in names))
        if len(_shared) < SHARED_CONTEXTS:
            _shared[names] = found
    return found

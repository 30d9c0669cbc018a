"""What `spmon once` saw, and the exit status a monitoring system reads from it. Pure.

The monitoring-plugins convention, with spmon's own meaning for 2 (it already means a bad
configuration everywhere in the CLI):

    0 OK        every watch was polled OK in this run and no review is overdue
    1 OVERDUE   a review is overdue in what spmon knows: this run's answer, or, when this
                run's poll failed, the last good snapshot (nothing newer contradicts it, and
                staying silent about a known overdue review is the worse mistake)
    2 CONFIG    the configuration (or the state file) is unusable; nothing was polled
    3 UNKNOWN   no review is known to be overdue, but some watch could not be polled OK in
                this run (token rejected, 5xx, timeout, invalid body, not found, not polled)

Overdue wins over unknown, as the worst state wins in Nagios: either way `spmon once || page`
pages, and the more specific news is the overdue review.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any, Final

from monitor.core import rules
from monitor.core.events import isoformat
from monitor.core.keys import SessionKey
from monitor.core.poll import Outcome
from monitor.core.snapshot import Snapshot

__all__ = ["NOT_POLLED", "OK", "Exit", "Report", "Row", "human"]

OK: Final = Outcome.OK
NOT_POLLED: Final = "not_polled"
"""The outcome of a watch this run never reached (one probe at a time while auth fails)."""


class Exit(IntEnum):
    OK = 0
    OVERDUE = 1
    CONFIG = 2
    UNKNOWN = 3


@dataclass(frozen=True, slots=True)
class Row:
    """One watch: this run's poll outcome and the latest snapshot spmon has of it."""

    key: SessionKey
    labels: Mapping[str, str]
    outcome: str
    """`ok`, `not_polled`, or a failure label of spmon_polls_total (`error`, `invalid`, …)."""
    snapshot: Snapshot | None
    """From this run when `outcome` is ok, else the last good one (None if never seen)."""

    @property
    def polled(self) -> bool:
        return self.outcome == OK

    def overdue(self, now: datetime) -> bool:
        return self.snapshot is not None and rules.is_overdue(self.snapshot, now)

    def lateness(self, now: datetime) -> float:
        """Seconds past the deadline while overdue, else 0."""
        if not self.overdue(now) or self.snapshot is None or self.snapshot.review_by_date is None:
            return 0.0
        return (now - self.snapshot.review_by_date).total_seconds()


@dataclass(frozen=True, slots=True)
class Report:
    rows: Sequence[Row]
    now: datetime

    @property
    def failed(self) -> int:
        return sum(1 for row in self.rows if not row.polled)

    @property
    def overdue(self) -> int:
        return sum(1 for row in self.rows if row.overdue(self.now))

    @property
    def overdue_stale(self) -> int:
        """Overdue reviews known only from an earlier poll (this run's poll failed)."""
        return sum(1 for row in self.rows if row.overdue(self.now) and not row.polled)

    @property
    def exit(self) -> Exit:
        if self.overdue:
            return Exit.OVERDUE
        # No watches is no check at all: "all clear" about nothing is the failure to avoid.
        if self.failed or not self.rows:
            return Exit.UNKNOWN
        return Exit.OK

    def summary(self) -> str:
        total, failed, overdue = len(self.rows), self.failed, self.overdue
        if not total:
            return "UNKNOWN: no sessions are watched"
        unpolled = f"{failed} of {total} sessions could not be polled"
        if overdue:
            stale = f" ({self.overdue_stale} from an earlier poll)" if self.overdue_stale else ""
            text = f"OVERDUE: {overdue} overdue {_reviews(overdue)}{stale} among {total} sessions"
            return f"{text}; {unpolled}" if failed else text
        if failed:
            return f"UNKNOWN: {unpolled}; 0 overdue among the {total - failed} polled"
        return f"OK: {total} sessions polled, 0 overdue reviews"

    def document(self) -> dict[str, Any]:
        """The `--json` document: every watch and a summary with counts and the exit status."""
        return {
            "status": self.exit.name,
            "exit_code": int(self.exit),
            "checked_at": isoformat(self.now),
            "summary": {
                "text": self.summary(),
                "sessions": len(self.rows),
                "polled": len(self.rows) - self.failed,
                "failed": self.failed,
                "overdue": self.overdue,
                "overdue_from_earlier_poll": self.overdue_stale,
                "outcomes": dict(sorted(Counter(row.outcome for row in self.rows).items())),
            },
            "sessions": [self._session(row) for row in self.rows],
        }

    def _session(self, row: Row) -> dict[str, Any]:
        snap = row.snapshot
        deadline = snap.review_by_date if snap is not None else None
        return {
            "install_sid": row.key.install_sid,
            "exam_sid": row.key.exam_sid,
            "session_sid": row.key.session_sid,
            "labels": dict(row.labels),
            "outcome": row.outcome,
            "from_earlier_poll": snap is not None and not row.polled,
            "status": snap.status if snap is not None else None,
            "review": review_state(snap),
            "review_required": snap.review_required if snap is not None else None,
            "reviewed": snap.reviewed if snap is not None else None,
            "review_by_date": isoformat(deadline) if deadline is not None else None,
            "overdue": row.overdue(self.now),
            "overdue_seconds": round(row.lateness(self.now), 3),
        }

    def table(self) -> list[str]:
        header = ("SESSION", "LABELS", "STATUS", "REVIEW", "REVIEW BY", "OVERDUE", "POLL")
        rows = [header, *(self._cells(row) for row in self.rows)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        return [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows
        ]

    def _cells(self, row: Row) -> tuple[str, ...]:
        snap = row.snapshot
        labels = ",".join(f"{k}={v}" for k, v in sorted(row.labels.items())) or "-"
        # A failed poll shows what spmon last knew, marked so nobody takes it for news.
        poll = row.outcome if row.polled or snap is None else f"{row.outcome} (showing last good)"
        if snap is None:
            return (row.key.session_sid, labels, "-", "-", "-", "-", poll)
        late = human(row.lateness(self.now)) + " late" if row.overdue(self.now) else "no"
        deadline = isoformat(snap.review_by_date) if snap.review_by_date else "-"
        review = review_state(snap) or "-"
        return (row.key.session_sid, labels, snap.status or "-", review, deadline, late, poll)


def review_state(snap: Snapshot | None) -> str | None:
    if snap is None:
        return None
    if snap.reviewed:
        return "done"
    return "required" if snap.review_required else "not required"


def human(seconds: float) -> str:
    """A duration for people: 3.0h, 2.5d, 40s."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _reviews(count: int) -> str:
    return "review" if count == 1 else "reviews"

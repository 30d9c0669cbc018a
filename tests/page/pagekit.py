"""A running spmon with its HTTP server up, over the simulator on loopback and a FakeClock:
the status page's tests (fast and in the browser) read it as a person would."""

from __future__ import annotations

from datetime import datetime, timedelta

from monitor.core.events import isoformat
from monitor.core.keys import SessionKey
from monitor.simulator import Simulator
from tests.clockkit import T0


def overdue_by(sim: Simulator, key: SessionKey, late: timedelta, now: datetime = T0) -> None:
    sim.set(key, status="Closed", reviewRequired=True, reviewed=False,
            reviewByDate=isoformat(now - late))  # fmt: skip


def calm(sim: Simulator, key: SessionKey) -> None:
    sim.set(key, status="Scheduled", reviewRequired=False, reviewed=False, reviewByDate=None)


def truth_overdue(sim: Simulator, now: datetime) -> list[str]:
    """The simulator's own answer: unreviewed required reviews past their deadline, most
    overdue first (the sids break ties, as the page's order does)."""
    late: list[tuple[float, str]] = []
    for key in sim.keys:
        body = sim.payload(key)
        deadline = body.get("reviewByDate")
        if body.get("reviewRequired") is True and body.get("reviewed") is not True and deadline:
            seconds = (now - datetime.fromisoformat(str(deadline))).total_seconds()
            if seconds > 0:
                late.append((-seconds, key.session_sid))
    return [sid for _, sid in sorted(late)]

"""Quiet hours and maintenance windows applied to a lane: while one is on, the sink's pending
rows are held (they stay pending, their next attempt at the window's end) and counted in
`spmon_notifications_held`; when it ends, what was held goes as one digest (`digesting`).
The schedule itself is pure (`core.quiet`); one-off windows are read from the store, where
`spmon quiet add` writes them beside a running service."""

from __future__ import annotations

from datetime import UTC

import structlog

from monitor.core import quiet
from monitor.lanes import Lane
from monitor.metrics import Metrics
from monitor.store import OutboxStore, QuietWindow

__all__ = ["QuietHours"]

log = structlog.get_logger("spmon.dispatcher")

_WINDOWS_EVERY = 1.0
"""Seconds between reads of the one-off quiet windows (`spmon quiet add` beside a service)."""
_FOREVER_HOLD = 3600.0
"""A schedule quiet for ever (settings refuse one; core.quiet still answers for it) holds rows
this far ahead, again at each look: they stay pending and counted, with a finite time the
store, `spmon outbox list` and the API can show."""


class QuietHours:
    def __init__(self, store: OutboxStore, metrics: Metrics) -> None:
        self.store, self.metrics = store, metrics
        self._windows: list[QuietWindow] = []
        self._windows_at = -1e18

    def has_oneoff(self, sink: str) -> bool:
        return any(w.sink == sink for w in self._windows)

    async def holding(self, lane: Lane, now: float) -> bool:
        """Is the lane in a quiet window? If so its pending rows are held until the end."""
        extra = [quiet.Absolute(w.start, w.end) for w in await self._oneoff(now, lane.name)]
        schedule = lane.plan.quiet
        end = None
        if schedule is not None or extra:
            schedule = schedule or quiet.Schedule((), UTC)
            end = quiet.until(schedule.with_windows(extra), now)
        if end is None:
            if lane.quiet_until is not None:
                log.info("sink.quiet_ended", sink=lane.name, release="one digest")
                lane.quiet_until, lane.released = None, True
                self.metrics.notifications_held.labels(lane.name).set(0)
            return False
        if lane.quiet_until != end:
            said = "never" if end == quiet.FOREVER else round(end, 1)
            log.info("sink.quiet", sink=lane.name, until=said)
        lane.quiet_until = end
        hold = now + _FOREVER_HOLD if end == quiet.FOREVER else end
        held = await self.store.hold(lane.name, until=hold)
        self.metrics.notifications_held.labels(lane.name).set(held)
        return True

    async def _oneoff(self, now: float, sink: str) -> list[QuietWindow]:
        if now - self._windows_at >= _WINDOWS_EVERY:
            self._windows = await self.store.quiet_windows(now=now)
            self._windows_at = now
        return [w for w in self._windows if w.sink == sink and w.end > now]

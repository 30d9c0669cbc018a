"""Re-posts every firing alert to the sinks whose receiver forgets what is not repeated
(Alertmanager), each `resend_interval`, first thing after a start too: a restart must not
leave Alertmanager to expire alerts that are still true.

A root task of its own beside the dispatcher. It shares the dispatcher's lanes: a resend
holds the lane's lock, which the lane's deliveries hold too, so a stale "firing" re-post
never lands after a resolve; a disabled lane is skipped; an answer ends the lane's failure
streak like any delivery's. Alerts of sessions no longer watched are ended, once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence

import structlog

from monitor import aio
from monitor.core.events import ALERT_TYPES, Event, EventType
from monitor.core.keys import SessionKey
from monitor.lanes import Lane
from monitor.sinks import Delivered, Resending
from monitor.store import OutboxRow, OutboxStore

__all__ = ["Resender"]

log = structlog.get_logger("spmon.dispatcher")

_OVERDUE, _RESOLVED = str(EventType.REVIEW_OVERDUE), str(EventType.REVIEW_OVERDUE_RESOLVED)


class Resender:
    def __init__(
        self,
        *,
        store: OutboxStore,
        lanes: Sequence[Lane],
        ready: asyncio.Event,
        clock: aio.Clock,
        watched: Callable[[SessionKey], bool] | None = None,
    ) -> None:
        self.store, self.lanes, self.clock = store, list(lanes), clock
        self.ready = ready
        """Set once the dispatcher restored the lanes' disabled states from earlier runs."""
        self.watched = watched
        self._retired: set[tuple[str, str]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        await self.ready.wait()
        async with asyncio.TaskGroup() as group:
            for lane in self.lanes:
                if isinstance(lane.sink, Resending):
                    resend = self._loop(lane, lane.sink, stop)
                    group.create_task(resend, name=f"resend-{lane.name}")
            group.create_task(stop.wait(), name="resender-stop")

    async def _loop(self, lane: Lane, sink: Resending, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._resend(lane, sink)
            except Exception:
                log.exception("alerts.resend_failed", sink=lane.name)
            await self.clock.sleep(sink.resend_interval, stop)

    async def _resend(self, lane: Lane, sink: Resending) -> None:
        if lane.disabled is not None:
            return
        async with lane.lock:
            rows = await self.store.firing(lane.name, fire=_OVERDUE, resolve=_RESOLVED)
            found = [event for event in map(_event, rows) if event]
            events = [event for event in found if self._watched(event)]
            gone = [event for event in found if not self._watched(event)]
            retired = [event for event in gone if (lane.name, event.id) not in self._retired]
            if not events and not retired:
                return
            now = self.clock.now()
            outcome = await sink.resend(events, now=now, retired=retired)
        if isinstance(outcome, Delivered):
            self._retired.update((lane.name, event.id) for event in retired)
            log.debug("alerts.resent", sink=lane.name, alerts=len(events), ended=len(retired))
            await lane.answered(self.store, started=now, now=self.clock.now())
        else:
            reason = getattr(outcome, "reason", "?")
            log.warning("alerts.resend_failed", sink=lane.name, alerts=len(events), reason=reason)

    def _watched(self, event: Event) -> bool:
        if event.key is None:
            return False
        return self.watched is None or self.watched(event.key)


def _event(row: OutboxRow) -> Event | None:
    try:
        event = Event.from_wire(json.loads(row.payload))
    except (ValueError, KeyError, TypeError):
        return None
    return event if str(event.type) in ALERT_TYPES else None

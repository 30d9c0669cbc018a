"""Drains the outbox to the sinks: claim → deliver → mark, per sink, at least once.

Each sink has its own loop, so a slow or dead receiver delays nobody else. Rows keep their
event id across every retry and restart; a sink's rows of one session go out in order.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable, Sequence

import structlog

from monitor import aio
from monitor.core.backoff import DELIVERY_SCHEDULE, Schedule
from monitor.core.events import Event
from monitor.metrics import Metrics
from monitor.sinks import Delivered, Outcome, Rejected, RetryLater, Sink
from monitor.store import OutboxRow, SqliteStore

__all__ = ["Dispatcher"]

log = structlog.get_logger("spmon.dispatcher")


class Dispatcher:
    def __init__(
        self,
        *,
        store: SqliteStore,
        sinks: Sequence[Sink],
        metrics: Metrics,
        schedule: Schedule = DELIVERY_SCHEDULE,
        lease: float = 60.0,
        batch: int = 64,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.store, self.sinks, self.metrics = store, list(sinks), metrics
        self.schedule = schedule
        self.lease = lease
        self.batch = batch
        self.clock = clock
        self.rng = rng or random.Random()
        self.owner = f"spmon-{uuid.uuid4().hex[:12]}"
        self.heartbeat = 0.0
        self._wake = {sink.name: asyncio.Event() for sink in self.sinks}

    def notify(self) -> None:
        """New rows were committed: look now instead of at the next tick."""
        for event in self._wake.values():
            event.set()

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            for sink in self.sinks:
                group.create_task(self._sink_loop(sink, stop), name=f"sink-{sink.name}")
            group.create_task(self._stats_loop(stop), name="outbox-stats")
            group.create_task(self._wake_on(stop), name="dispatcher-stop")

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.notify()

    async def drain(self, deadline: float) -> None:
        """At shutdown: one last pass over due rows, bounded by `deadline` seconds; then give
        back every lease so the next start resends at once. Nothing is lost either way."""
        try:
            async with asyncio.timeout(deadline):
                await asyncio.gather(*(self._pass(sink) for sink in self.sinks))
        except TimeoutError:
            log.warning("dispatcher.drain_timeout", deadline=deadline)
        finally:
            await asyncio.shield(self.store.release(self.owner))
            await self._refresh_stats()

    async def _sink_loop(self, sink: Sink, stop: asyncio.Event) -> None:
        wake = self._wake[sink.name]
        while not stop.is_set():
            self.heartbeat = self.clock()
            wake.clear()
            try:
                busy = await self._pass(sink)
            except Exception:
                log.exception("dispatcher.pass_failed", sink=sink.name)
                busy = False
            if not busy:
                await aio.sleep(1.0, wake)

    async def _pass(self, sink: Sink) -> bool:
        """Claim and deliver one batch; True when there may be more due right now."""
        rows = await self.store.claim(
            sink.name, now=self.clock(), limit=self.batch, owner=self.owner, lease=self.lease
        )
        if not rows:
            return False
        limit = asyncio.Semaphore(sink.concurrency)

        async def one(row: OutboxRow) -> None:
            async with limit:
                await self._deliver(sink, row)

        await asyncio.gather(*(one(row) for row in rows))
        return True

    async def _deliver(self, sink: Sink, row: OutboxRow) -> None:
        with structlog.contextvars.bound_contextvars(
            sink=sink.name, event_id=row.event_id, attempt=row.attempts
        ):
            outcome = await self._attempt(sink, row)
            now = self.clock()
            if isinstance(outcome, Delivered):
                await self._delivered(sink, row, now)
            elif isinstance(outcome, RetryLater):
                await self._retry(sink, row, outcome, now)
            else:
                await self._dead(sink, row, outcome.reason)

    async def _attempt(self, sink: Sink, row: OutboxRow) -> Outcome:
        try:
            event = Event.from_wire(json.loads(row.payload))
        except (ValueError, KeyError, TypeError) as exc:
            return Rejected(f"unreadable outbox row ({type(exc).__name__})")
        try:
            # Sinks time out on their own; this bound only guards against a sink that forgets.
            async with asyncio.timeout(self.lease / 2):
                return await sink.deliver(event, row.payload, now=self.clock())
        except TimeoutError:
            return RetryLater("delivery timed out")
        except Exception as exc:
            log.exception("sink.crashed")
            return RetryLater(f"sink raised {type(exc).__name__}")

    async def _delivered(self, sink: Sink, row: OutboxRow, now: float) -> None:
        if await self.store.mark_delivered(row.id, owner=self.owner, now=now):
            self.metrics.notifications.labels(sink.name, "delivered").inc()
            self.metrics.notification_latency.labels(sink.name).observe(
                max(0.0, now - row.created_at)
            )
            log.debug("delivery.delivered")
            self.notify_sink(sink)

    async def _retry(self, sink: Sink, row: OutboxRow, outcome: RetryLater, now: float) -> None:
        delay = self.schedule.delay(row.attempts, self.rng.random())
        if delay is None:
            await self._dead(sink, row, f"retries exhausted; last: {outcome.reason}")
            return
        if outcome.after is not None:
            delay = max(delay, outcome.after)
        self.metrics.notifications.labels(sink.name, "failed").inc()
        log.warning(
            "delivery.failed",
            reason=outcome.reason,
            attempt=f"{row.attempts}/{len(self.schedule.steps)}",
            retry_in=round(delay, 1),
        )
        await self.store.mark_retry(
            row.id, owner=self.owner, next_attempt_at=now + delay, error=outcome.reason
        )

    async def _dead(self, sink: Sink, row: OutboxRow, reason: str) -> None:
        if await self.store.mark_dead(row.id, owner=self.owner, error=reason):
            self.metrics.notifications.labels(sink.name, "dead").inc()
            log.error("delivery.dead_lettered", reason=reason)
            self.notify_sink(sink)

    def notify_sink(self, sink: Sink) -> None:
        # The session's next row (held back for ordering) may be deliverable now.
        self._wake[sink.name].set()

    async def _stats_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._refresh_stats()
            except Exception:
                log.exception("dispatcher.stats_failed")
            await aio.sleep(2.0, stop)

    async def _refresh_stats(self) -> None:
        stats = await self.store.stats()
        names = {sink.name for sink in self.sinks} | set(stats.pending) | set(stats.dead)
        for name in names:
            self.metrics.outbox_pending.labels(name).set(stats.pending.get(name, 0))
            self.metrics.outbox_dead.labels(name).set(stats.dead.get(name, 0))
        oldest = stats.oldest_pending_at
        self.metrics.outbox_oldest_age.set(max(0.0, self.clock() - oldest) if oldest else 0.0)

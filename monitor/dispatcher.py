"""Drains the outbox to the sinks: claim → deliver → mark, per sink, at least once.

Each sink is a *lane* with its own loop, concurrency slots, pace (shared with the sinks that
post to the same URL), circuit breaker and HTTP pool, so a slow or dead receiver delays nobody
else and never the poller. Rows keep their event id
across every retry and restart; a sink's rows of one session go out in order (the store only
hands out a session's oldest pending row).

Failure handling, in order of scope:
- one delivery fails → that row is retried on the sink's schedule (Svix: 0, 5 s, 5 min, 30 min,
  2 h, 5 h, 10 h, 10 h ± jitter), later if the receiver sent Retry-After; then dead-lettered;
- a 4xx other than 408/429 → that row is dead at once, with the reason;
- Retry-After (429/503) → the whole sink pauses until then (the limit is the receiver's);
- a failure streak → the sink is probed (one request at a time, from about 1 s apart up to
  `breaker_cooldown`); at `breaker_failures` failures in a row the sink is down: its rows wait
  (their schedules are not burnt) and only probes go out. Deliveries that were in flight
  together count once (core.delivery.Breaker). The first answer brings every backed-off row
  forward, so a receiver that comes back gets its backlog at once, not minutes later;
- 410 Gone → the sink is disabled, loudly, until its configuration changes (state persisted).

What follows an attempt is decided by `core.delivery.decide` and carried out by
`monitor.actions`; Alertmanager resends are their own root task (`monitor.resender`).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Mapping, Sequence

import structlog

from monitor import aio
from monitor.actions import Actions, attempt, paced
from monitor.core import delivery, digest
from monitor.digesting import Digests
from monitor.lanes import Lane, build_lanes
from monitor.metrics import Metrics
from monitor.sinks import Sink
from monitor.store import OutboxRow, OutboxStore

__all__ = ["Dispatcher"]

log = structlog.get_logger("spmon.dispatcher")

_IDLE = 1.0
"""Longest sleep of an idle lane: rows another process made due (`spmon outbox retry`) are
picked up this late. Rows whose retry time arrives wake the lane on time (`store.next_due`)."""


class Dispatcher:
    def __init__(
        self,
        *,
        store: OutboxStore,
        sinks: Sequence[Sink],
        metrics: Metrics,
        lease: float = 60.0,
        batch: int = 64,
        settle: float = 5.0,
        clock: aio.Clock = aio.SYSTEM,
        rng: random.Random | None = None,
        plans: Mapping[str, digest.Plan] | None = None,
        first_cycle: Callable[[], bool] | None = None,
        leading: Callable[[], bool] = lambda: True,
    ) -> None:
        self.store, self.sinks, self.metrics = store, list(sinks), metrics
        self.lease = lease
        self.batch = batch
        self.settle = settle
        """At stop, in-flight deliveries get this long to finish before they are cancelled."""
        self.clock = clock
        self.rng = rng or random.Random()
        self.owner = f"spmon-{uuid.uuid4().hex[:12]}"
        self.heartbeat = 0.0
        self.actions = Actions(store=store, metrics=metrics, owner=self.owner, rng=self.rng)
        self.lanes = build_lanes(self.sinks, plans)
        self.digests = Digests(
            self.actions, clock=self.clock, lease=lease, first_cycle=first_cycle, leading=leading
        )
        self.restored = asyncio.Event()
        """Set once disabled states from earlier runs are applied (the resender waits)."""

    def notify(self) -> None:
        """New rows were committed: look now instead of at the next tick."""
        for lane in self.lanes:
            lane.wake.set()

    # -- lifecycle -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        await self._restore()
        async with asyncio.TaskGroup() as group:
            for lane in self.lanes:
                group.create_task(self._lane_loop(lane, stop), name=f"sink-{lane.name}")
            group.create_task(
                self.actions.stats_loop(self.sinks, self.clock, stop), name="outbox-stats"
            )
            group.create_task(self._wake_on(stop), name="dispatcher-stop")

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.notify()

    async def drain(self, deadline: float) -> None:
        """At shutdown (or `spmon once`): deliver what is due, bounded by `deadline` seconds;
        then give back every lease so the next start resends at once. Nothing is lost."""
        try:
            async with asyncio.timeout(deadline):
                self.digests.draining = (
                    True  # a digest window not yet over goes now, not at restart
                )
                await self._restore()
                await asyncio.gather(*(self._drain_lane(lane) for lane in self.lanes))
        except TimeoutError:
            log.warning("dispatcher.drain_timeout", deadline=deadline)
        finally:
            await asyncio.shield(self._abandon())
            await self.actions.refresh_stats(self.sinks, self.clock.now())

    async def _drain_lane(self, lane: Lane) -> None:
        while True:
            claimed = await self._fill(lane)
            if lane.inflight:
                await asyncio.wait(set(lane.inflight), return_when=asyncio.FIRST_COMPLETED)
            elif not claimed:
                return

    async def _abandon(self) -> None:
        """Cancel what is still in flight and release our leases (attempts refunded)."""
        tasks = [task for lane in self.lanes for task in lane.inflight]
        for task in tasks:
            task.cancel(msg="dispatcher stopping")
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.store.release(self.owner)

    async def _restore(self) -> None:
        """Apply disabled states from earlier runs (once): same config → still disabled."""
        if not self.restored.is_set():
            self.restored.set()
            await self.actions.restore_disabled(self.lanes)

    # -- one lane ------------------------------------------------------------------------

    async def _lane_loop(self, lane: Lane, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.heartbeat = self.clock.now()
            lane.wake.clear()
            try:
                pause = 0.0 if await self._fill(lane) else await self._idle(lane)
            except Exception:
                log.exception("dispatcher.pass_failed", sink=lane.name)
                pause = _IDLE
            if pause:
                await self.clock.sleep(pause, lane.wake)
        await self._settle(lane)

    async def _idle(self, lane: Lane) -> float:
        """Sleep until the next thing that could change: a row falling due (a retry is on
        time, not up to a tick late), a pause ending, a probe falling due."""
        now = self.clock.now()
        due = await self.digests.due(lane, now) if self._may_claim(lane, now) else None
        probe = lane.breaker.next_probe_at() or 0.0
        return delivery.wake_in(now, [lane.pacer.paused_until, probe], due=due, idle=_IDLE)

    def _may_claim(self, lane: Lane, now: float) -> bool:
        """Could a due row be claimed now (enabled, not paused, not down, a slot free)?"""
        if lane.disabled is not None or lane.pacer.paused(now) or lane.breaker.open:
            return False
        return len(lane.inflight) < lane.sink.limits.concurrency

    async def _settle(self, lane: Lane) -> None:
        if lane.inflight:
            _, late = await asyncio.wait(set(lane.inflight), timeout=self.settle)
            for task in late:
                task.cancel(msg="shutdown: delivery took longer than the settle time")
            await asyncio.gather(*late, return_exceptions=True)

    async def _fill(self, lane: Lane) -> int:
        """Claim as many due rows as the lane has free slots; start a delivery for each."""
        now = self.clock.now()
        if lane.disabled is not None or lane.pacer.paused(now):
            return 0
        taken = await self.digests.take(lane, now, drain=self.digests.draining)  # quiet, digests
        if taken is not None:
            return taken
        if lane.breaker.open:
            return await self._probe(lane, now)
        free = lane.sink.limits.concurrency - len(lane.inflight)
        if free <= 0:
            return 0
        rows = await self.store.claim(
            lane.name, now=now, limit=min(free, self.batch), owner=self.owner, lease=self.lease,
            max_attempts=len(lane.sink.limits.schedule.steps),  # as _retry counts: one per step
            on_dead=self.metrics.notifications.labels(lane.name, delivery.Notified.DEAD).inc,
        )  # fmt: skip
        for row in rows:
            self._spawn(lane, row, None)
        # A sink that failed is probed below the threshold too: after a short outage its
        # backed-off rows must not wait out their schedule (5 min) for the news.
        return len(rows) or await self._probe(lane, now)

    async def _probe(self, lane: Lane, now: float) -> int:
        if not lane.breaker.may_probe(now) or lane.inflight:
            return 0
        found = await self.store.claim_probe(lane.name, now=now, owner=self.owner, lease=self.lease)
        if found is None:
            return 0  # nothing waits: the next row that arrives is the probe
        lane.breaker.probe_started()
        self._spawn(lane, *found)
        return 1

    def _spawn(self, lane: Lane, row: OutboxRow, probe_due: float | None) -> None:
        task = asyncio.create_task(
            self._deliver(lane, row, probe_due), name=f"deliver-{lane.name}-{row.id}"
        )
        lane.inflight.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            lane.inflight.discard(finished)
            lane.wake.set()

        task.add_done_callback(done)

    async def _deliver(self, lane: Lane, row: OutboxRow, probe_due: float | None) -> None:
        with structlog.contextvars.bound_contextvars(
            sink=lane.name, event_id=row.event_id, attempt=row.attempts
        ):
            try:
                if not await paced(self.actions, lane, row, clock=self.clock, lease=self.lease):
                    return
                async with lane.serial():
                    started = self.clock.now()
                    bound = delivery.attempt_bound(self.lease)
                    outcome = await attempt(lane, row, bound=bound, now=started)
                    await self.actions.apply(
                        lane,
                        row,
                        outcome,
                        started=started,
                        probe_due=probe_due,
                        now=self.clock.now(),
                    )
            except Exception:
                # The row stays leased: release at shutdown or lease expiry brings it back.
                log.exception("delivery.crashed")
            finally:
                if probe_due is not None:
                    lane.breaker.probe_ended()  # whatever happened, the next probe may go

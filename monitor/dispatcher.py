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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from monitor import aio
from monitor.core import delivery, render
from monitor.core.events import Event, EventType
from monitor.metrics import Metrics
from monitor.sinks import Delivered, Gone, Outcome, Rejected, Resending, RetryLater, Sink
from monitor.store import OutboxRow, OutboxStore

__all__ = ["Dispatcher"]

log = structlog.get_logger("spmon.dispatcher")

_IDLE = 1.0
"""Longest sleep of an idle lane: rows another process made due (`spmon outbox retry`) are
picked up this late. Rows whose retry time arrives wake the lane on time (`store.next_due`)."""
_OVERDUE, _RESOLVED = str(EventType.REVIEW_OVERDUE), str(EventType.REVIEW_OVERDUE_RESOLVED)


@dataclass(eq=False)
class _Lane:
    sink: Sink
    pacer: delivery.Pacer
    """Shared with every other lane that posts to the same destination."""
    breaker: delivery.Breaker
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    inflight: set[asyncio.Task[None]] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Alertmanager: a resend never interleaves with a delivery (a stale "firing" re-post
    landing after a resolve would re-open the alert)."""
    disabled: str | None = None
    resending: bool = False
    """The sink is a Resending one (checked once: runtime Protocol checks are slow)."""

    @property
    def name(self) -> str:
        return self.sink.name

    @property
    def host(self) -> str:
        return str(getattr(self.sink, "host", "?"))

    def serial(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self.lock if self.resending else contextlib.nullcontext()


def _lanes(sinks: Sequence[Sink]) -> list[_Lane]:
    """One lane per sink; sinks with the same destination (two routes to one Slack webhook)
    share a pacer, so the receiver's rate limit holds across them. Destinations are secrets
    (a Slack URL is the credential): they are compared here and never kept or logged."""
    pacers: dict[str, delivery.Pacer] = {}
    lanes = []
    for sink in sinks:
        limits = sink.limits
        interval = 1.0 / limits.rate if limits.rate else 0.0
        destination = getattr(sink, "destination", None)
        pacer = pacers.get(destination) if isinstance(destination, str) else None
        if pacer is None:
            pacer = delivery.Pacer(interval)
            if isinstance(destination, str):
                pacers[destination] = pacer
        pacer.slow_to(interval)
        breaker = delivery.Breaker(limits.breaker_failures, limits.breaker_cooldown)
        lanes.append(_Lane(sink, pacer, breaker, resending=isinstance(sink, Resending)))
    return lanes


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
        watched: Callable[[str], bool] | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.store, self.sinks, self.metrics = store, list(sinks), metrics
        self.lease = lease
        self.batch = batch
        self.settle = settle
        """At stop, in-flight deliveries get this long to finish before they are cancelled."""
        self.watched = watched
        """Alertmanager resends resolve, once, the alerts of sessions no longer watched."""
        self._retired: set[tuple[str, str]] = set()
        self.clock = clock
        self.rng = rng or random.Random()
        self.owner = f"spmon-{uuid.uuid4().hex[:12]}"
        self.heartbeat = 0.0
        self._lanes = _lanes(self.sinks)
        self._restored = False

    def notify(self) -> None:
        """New rows were committed: look now instead of at the next tick."""
        for lane in self._lanes:
            lane.wake.set()

    def status(self) -> dict[str, str]:
        """Each sink's state: up, paused (Retry-After), down (breaker open) or disabled."""
        now = self.clock()
        return {lane.name: _status(lane, now) for lane in self._lanes}

    # -- lifecycle -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        await self._restore()
        async with asyncio.TaskGroup() as group:
            for lane in self._lanes:
                group.create_task(self._lane_loop(lane, stop), name=f"sink-{lane.name}")
                if isinstance(lane.sink, Resending):
                    resend = self._resend_loop(lane, lane.sink, stop)
                    group.create_task(resend, name=f"resend-{lane.name}")
            group.create_task(self._stats_loop(stop), name="outbox-stats")
            group.create_task(self._wake_on(stop), name="dispatcher-stop")

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.notify()

    async def drain(self, deadline: float) -> None:
        """At shutdown (or `spmon once`): deliver what is due, bounded by `deadline` seconds;
        then give back every lease so the next start resends at once. Nothing is lost."""
        try:
            async with asyncio.timeout(deadline):
                await self._restore()
                await asyncio.gather(*(self._drain_lane(lane) for lane in self._lanes))
        except TimeoutError:
            log.warning("dispatcher.drain_timeout", deadline=deadline)
        finally:
            await asyncio.shield(self._abandon())
            await self._refresh_stats()

    async def _drain_lane(self, lane: _Lane) -> None:
        while True:
            claimed = await self._fill(lane)
            if lane.inflight:
                await asyncio.wait(set(lane.inflight), return_when=asyncio.FIRST_COMPLETED)
            elif not claimed:
                return

    async def _abandon(self) -> None:
        """Cancel what is still in flight and release our leases (attempts refunded)."""
        tasks = [task for lane in self._lanes for task in lane.inflight]
        for task in tasks:
            task.cancel(msg="dispatcher stopping")
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.store.release(self.owner)

    async def _restore(self) -> None:
        """Apply disabled states from earlier runs: same config → still disabled."""
        if self._restored:
            return
        self._restored = True
        states = await self.store.sink_states()
        for lane in self._lanes:
            state = states.get(lane.name)
            if state is not None and state.fingerprint == lane.sink.fingerprint:
                self._announce_disabled(lane, state.reason)
            elif state is not None:
                await self.store.enable_sink(lane.name)
                log.warning("sink.reenabled", sink=lane.name, why="its configuration changed")
            self.metrics.sink_disabled.labels(lane.name).set(int(lane.disabled is not None))

    # -- one lane ------------------------------------------------------------------------

    async def _lane_loop(self, lane: _Lane, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.heartbeat = self.clock()
            lane.wake.clear()
            try:
                pause = 0.0 if await self._fill(lane) else await self._idle(lane)
            except Exception:
                log.exception("dispatcher.pass_failed", sink=lane.name)
                pause = _IDLE
            if pause:
                await aio.sleep(pause, lane.wake)
        await self._settle(lane)

    async def _idle(self, lane: _Lane) -> float:
        """Sleep until the next thing that could change: a row falling due (a retry is on
        time, not up to a tick late), a pause ending, a probe falling due."""
        now, breaker = self.clock(), lane.breaker
        due = await self.store.next_due(lane.name, now=now) if self._may_claim(lane, now) else None
        probe = breaker.probe_at if breaker.failing and not breaker.probing else 0.0
        return delivery.wake_in(now, [lane.pacer.paused_until, probe], due=due, idle=_IDLE)

    def _may_claim(self, lane: _Lane, now: float) -> bool:
        """Could a due row be claimed now (enabled, not paused, not down, a slot free)?"""
        if lane.disabled is not None or lane.pacer.paused(now) or lane.breaker.open:
            return False
        return len(lane.inflight) < lane.sink.limits.concurrency

    async def _settle(self, lane: _Lane) -> None:
        if lane.inflight:
            _, late = await asyncio.wait(set(lane.inflight), timeout=self.settle)
            for task in late:
                task.cancel(msg="shutdown: delivery took longer than the settle time")
            await asyncio.gather(*late, return_exceptions=True)

    async def _fill(self, lane: _Lane) -> int:
        """Claim as many due rows as the lane has free slots; start a delivery for each."""
        now = self.clock()
        if lane.disabled is not None or lane.pacer.paused(now):
            return 0
        if lane.breaker.open:
            return await self._probe(lane, now)
        free = lane.sink.limits.concurrency - len(lane.inflight)
        if free <= 0:
            return 0
        rows = await self.store.claim(
            lane.name, now=now, limit=min(free, self.batch), owner=self.owner, lease=self.lease,
            max_attempts=len(lane.sink.limits.schedule.steps),  # as _retry counts: one per step
            on_dead=self.metrics.notifications.labels(lane.name, "dead").inc,
        )  # fmt: skip
        for row in rows:
            self._spawn(lane, row, None)
        # A sink that failed is probed below the threshold too: after a short outage its
        # backed-off rows must not wait out their schedule (5 min) for the news.
        return len(rows) or await self._probe(lane, now)

    async def _probe(self, lane: _Lane, now: float) -> int:
        if not lane.breaker.may_probe(now) or lane.inflight:
            return 0
        found = await self.store.claim_probe(lane.name, now=now, owner=self.owner, lease=self.lease)
        if found is None:
            return 0  # nothing waits: the next row that arrives is the probe
        lane.breaker.probe_started()
        self._spawn(lane, *found)
        return 1

    def _spawn(self, lane: _Lane, row: OutboxRow, probe_due: float | None) -> None:
        task = asyncio.create_task(
            self._deliver(lane, row, probe_due), name=f"deliver-{lane.name}-{row.id}"
        )
        lane.inflight.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            lane.inflight.discard(finished)
            lane.wake.set()

        task.add_done_callback(done)

    async def _deliver(self, lane: _Lane, row: OutboxRow, probe_due: float | None) -> None:
        with structlog.contextvars.bound_contextvars(
            sink=lane.name, event_id=row.event_id, attempt=row.attempts
        ):
            try:
                if not await self._paced(lane, row):
                    return
                async with lane.serial():
                    started = self.clock()
                    outcome = await self._attempt(lane, row)
                    await self._outcome(lane, row, outcome, started=started, probe_due=probe_due)
            except Exception:
                # The row stays leased: release at shutdown or lease expiry brings it back.
                log.exception("delivery.crashed")
            finally:
                if probe_due is not None:
                    lane.breaker.probe_ended()  # whatever happened, the next probe may go

    async def _paced(self, lane: _Lane, row: OutboxRow) -> bool:
        """Wait for the lane's next start slot; a long wait (a Retry-After pause) gives the
        row back untried instead of holding its lease."""
        now = self.clock()
        wait = lane.pacer.reserve(now)
        if wait > self.lease / 4:
            await self.store.unclaim(row.id, owner=self.owner, next_attempt_at=now + wait)
            return False
        if wait > 0:
            await asyncio.sleep(wait)
        return True

    async def _attempt(self, lane: _Lane, row: OutboxRow) -> Outcome:
        try:
            event = Event.from_wire(json.loads(row.payload))
        except (ValueError, KeyError, TypeError) as exc:
            return Rejected(f"unreadable outbox row ({type(exc).__name__})")
        try:
            # Sinks time out on their own; this bound only guards against a sink that forgets
            # (the lease is derived from the longest configured timeout, so it never cuts one).
            async with asyncio.timeout(delivery.attempt_bound(self.lease)):
                return await lane.sink.deliver(event, row.payload, now=self.clock())
        except TimeoutError:
            return RetryLater("delivery timed out")
        except Exception as exc:
            log.exception("sink.crashed")
            return RetryLater(f"sink raised {type(exc).__name__}")

    async def _outcome(
        self,
        lane: _Lane,
        row: OutboxRow,
        outcome: Outcome,
        *,
        started: float,
        probe_due: float | None,
    ) -> None:
        now = self.clock()
        if isinstance(outcome, Delivered):
            await self._delivered(lane, row, started=started, now=now)
        elif isinstance(outcome, RetryLater) and probe_due is not None:
            await self._probe_failed(lane, row, outcome, started=started, now=now, due=probe_due)
        elif isinstance(outcome, RetryLater):
            await self._retry(lane, row, outcome, started=started, now=now)
        elif isinstance(outcome, Rejected):
            await self._answered(lane, started=started, now=now)
            await self._dead(lane, row, outcome.reason)
        else:
            await self._dead(lane, row, outcome.reason)
            await self._disable(lane, outcome, now)

    # -- outcomes ------------------------------------------------------------------------

    async def _delivered(self, lane: _Lane, row: OutboxRow, *, started: float, now: float) -> None:
        if await self.store.mark_delivered(row.id, owner=self.owner, now=now):
            self.metrics.notifications.labels(lane.name, "delivered").inc()
            self.metrics.notification_latency.labels(lane.name).observe(
                max(0.0, now - row.created_at)
            )
            log.debug("delivery.delivered")
        await self._answered(lane, started=started, now=now)

    async def _answered(
        self, lane: _Lane, *, started: float, now: float, due: float | None = None
    ) -> None:
        """The receiver is up (it answered): end the failure streak; after an outage, every
        row that backed off meanwhile is due now (or when a Retry-After pause ends), and
        the store still hands out only each session's oldest row, so order holds."""
        if lane.breaker.answered(started=started, now=now):
            moved = await self.store.expedite(lane.name, now=max(now, due or now))
            log.info("sink.recovered", sink=lane.name, host=lane.host, expedited=moved)
            lane.wake.set()

    async def _retry(
        self, lane: _Lane, row: OutboxRow, outcome: RetryLater, *, started: float, now: float
    ) -> None:
        await self._failed(lane, outcome, started=started, now=now)
        schedule = lane.sink.limits.schedule
        u = self.rng.random()
        delay = delivery.retry_delay(schedule, row.attempts, u, retry_after=outcome.after)
        if delay is None:
            await self._dead(lane, row, f"retries exhausted; last: {outcome.reason}")
            return
        self.metrics.notifications.labels(lane.name, "failed").inc()
        log.warning(
            "delivery.failed",
            reason=outcome.reason,
            attempt=f"{row.attempts}/{len(schedule.steps)}",
            retry_in=round(delay, 1),
        )
        await self.store.mark_retry(
            row.id, owner=self.owner, next_attempt_at=now + delay, error=outcome.reason
        )

    async def _probe_failed(
        self,
        lane: _Lane,
        row: OutboxRow,
        outcome: RetryLater,
        *,
        started: float,
        now: float,
        due: float,
    ) -> None:
        """Still down: the probe does not count against the row's schedule (it was early)."""
        await self._failed(lane, outcome, started=started, now=now)
        self.metrics.notifications.labels(lane.name, "failed").inc()
        next_probe = max(0.0, lane.breaker.probe_at - now)
        log.info("sink.still_down", reason=outcome.reason, next_probe_in=round(next_probe, 1))
        retry_at = delivery.probe_retry_at(max(due, now), lane.breaker)
        await self.store.unclaim(row.id, owner=self.owner, next_attempt_at=retry_at)

    async def _failed(
        self, lane: _Lane, outcome: RetryLater, *, started: float, now: float
    ) -> None:
        if outcome.after is not None:
            # Throttled: the receiver is alive and asked the whole sink (and every sink that
            # posts to the same destination) to wait.
            lane.pacer.pause(now + outcome.after)
            await self._answered(lane, started=started, now=now, due=now + outcome.after)
            return
        verdict = lane.breaker.failed(started=started, now=now, u=self.rng.random())
        if verdict is delivery.Failure.OPENED:
            log.error(
                "sink.down",
                sink=lane.name,
                host=lane.host,
                failures=lane.breaker.streak,
                reason=outcome.reason,
                hint="deliveries wait (nothing is dropped); probes back off from about 1 s to"
                " the cooldown until it answers, then the backlog goes at once",
                cooldown=lane.breaker.cooldown,
            )

    async def _dead(self, lane: _Lane, row: OutboxRow, reason: str) -> None:
        if await self.store.mark_dead(row.id, owner=self.owner, error=reason):
            self.metrics.notifications.labels(lane.name, "dead").inc()
            log.error(
                "delivery.dead_lettered",
                reason=reason,
                hint=f"kept in the store; `spmon outbox retry --sink {lane.name}` re-sends it",
            )

    async def _disable(self, lane: _Lane, outcome: Gone, now: float) -> None:
        await self.store.disable_sink(
            lane.name, fingerprint=lane.sink.fingerprint, reason=outcome.reason, now=now
        )
        self._announce_disabled(lane, outcome.reason)

    def _announce_disabled(self, lane: _Lane, reason: str) -> None:
        lane.disabled = reason
        self.metrics.sink_disabled.labels(lane.name).set(1)
        log.error(
            "sink.disabled", sink=lane.name, host=lane.host, reason=reason, hint=_DISABLED_HINT
        )

    # -- Alertmanager resends --------------------------------------------------------------

    async def _resend_loop(self, lane: _Lane, sink: Resending, stop: asyncio.Event) -> None:
        """Re-post every firing alert each resend_interval, first thing after a start too:
        a restart must not leave Alertmanager to expire alerts that are still true."""
        while not stop.is_set():
            try:
                await self._resend(lane, sink)
            except Exception:
                log.exception("alerts.resend_failed", sink=lane.name)
            await aio.sleep(sink.resend_interval, stop)

    async def _resend(self, lane: _Lane, sink: Resending) -> None:
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
            now = self.clock()
            outcome = await sink.resend(events, now=now, retired=retired)
        if isinstance(outcome, Delivered):
            self._retired.update((lane.name, event.id) for event in retired)
            log.debug("alerts.resent", sink=lane.name, alerts=len(events), ended=len(retired))
            await self._answered(lane, started=now, now=self.clock())
        else:
            reason = getattr(outcome, "reason", "?")
            log.warning("alerts.resend_failed", sink=lane.name, alerts=len(events), reason=reason)

    def _watched(self, event: Event) -> bool:
        if event.key is None:
            return False
        return self.watched is None or self.watched(event.key.session_sid)

    # -- gauges --------------------------------------------------------------------------

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


_DISABLED_HINT = (
    "the receiver answered 410 Gone, so nothing more is sent to this sink; its pending "
    "deliveries are kept. Fix the sink's configuration (a changed url or secret re-enables "
    "it at the next start), then `spmon outbox retry --sink NAME` re-sends dead-lettered ones"
)


def _status(lane: _Lane, now: float) -> str:
    if lane.disabled is not None:
        return "disabled"
    if lane.breaker.open:
        return "down"
    return "paused" if lane.pacer.paused(now) else "up"


def _event(row: OutboxRow) -> Event | None:
    try:
        event = Event.from_wire(json.loads(row.payload))
    except (ValueError, KeyError, TypeError):
        return None
    return event if str(event.type) in render.ALERT_TYPES else None

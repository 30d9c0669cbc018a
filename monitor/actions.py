"""Executes what `core.delivery.decide` says becomes of a row: marks it in the store, feeds
the receiver's answer to the lane's breaker and pacer, counts and logs it. The dispatcher
owns lanes and claims; this owns the consequences of one attempt."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence

import structlog

from monitor import aio
from monitor.core import delivery
from monitor.core.delivery import Action, Evidence, Outcome, Rejected, RetryLater, Step
from monitor.core.events import Event
from monitor.lanes import Lane
from monitor.metrics import Metrics
from monitor.sinks import Sink
from monitor.store import OutboxRow, OutboxStore

__all__ = ["Actions", "attempt", "paced"]

log = structlog.get_logger("spmon.dispatcher")


class Actions:
    def __init__(
        self, *, store: OutboxStore, metrics: Metrics, owner: str, rng: random.Random
    ) -> None:
        self.store, self.metrics, self.owner, self.rng = store, metrics, owner, rng

    async def restore_disabled(self, lanes: Sequence[Lane]) -> None:
        """Disabled states from earlier runs: same config → still disabled, else re-enabled."""
        states = await self.store.sink_states()
        for lane in lanes:
            state = states.get(lane.name)
            if state is not None and state.fingerprint == lane.sink.fingerprint:
                self.announce_disabled(lane, state.reason)
            elif state is not None:
                await self.store.enable_sink(lane.name)
                log.warning("sink.reenabled", sink=lane.name, why="its configuration changed")
            self.metrics.sink_disabled.labels(lane.name).set(int(lane.disabled is not None))

    async def stats_loop(
        self, sinks: Sequence[Sink], clock: aio.Clock, stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            try:
                await self.refresh_stats(sinks, clock.now())
            except Exception:
                log.exception("dispatcher.stats_failed")
            await clock.sleep(2.0, stop)

    async def refresh_stats(self, sinks: Sequence[Sink], now: float) -> None:
        """The outbox gauges: backlog and dead letters per sink, age of the oldest pending."""
        stats = await self.store.stats()
        names = {sink.name for sink in sinks} | set(stats.pending) | set(stats.dead)
        for name in names:
            self.metrics.outbox_pending.labels(name).set(stats.pending.get(name, 0))
            self.metrics.outbox_dead.labels(name).set(stats.dead.get(name, 0))
        oldest = stats.oldest_pending_at
        self.metrics.outbox_oldest_age.set(max(0.0, now - oldest) if oldest else 0.0)

    async def apply(
        self,
        lane: Lane,
        row: OutboxRow,
        outcome: Outcome,
        *,
        started: float,
        probe_due: float | None,
        now: float,
    ) -> None:
        """A delivered row is marked before its answer counts; otherwise the answer counts
        first (a failed probe's row waits for the next probe, set by counting the failure)."""
        u = self.rng.random() if isinstance(outcome, RetryLater) and probe_due is None else 0.0
        action = delivery.decide(
            outcome, attempts=row.attempts, schedule=lane.sink.limits.schedule, now=now, u=u,
            probe_due=probe_due,
        )  # fmt: skip
        if action.step is not Step.DELIVERED:
            await self.evidence(lane, action, started=started, now=now)
        await self.act(lane, row, action, now=now)
        if action.step is Step.DELIVERED:
            await self.evidence(lane, action, started=started, now=now)

    async def act(self, lane: Lane, row: OutboxRow, action: Action, *, now: float = 0.0) -> None:
        step, owner = action.step, self.owner
        if step is Step.DELIVERED:
            await self._delivered(lane, row, now=now)
        elif step is Step.RETRY:
            await self._retry(lane, row, action, now=now)
        elif step is Step.PROBE_FAILED:
            await self._probe_failed(lane, row, action, now=now)
        elif step is Step.UNCLAIM:
            await self.store.unclaim(row.id, owner=owner, next_attempt_at=action.at or 0.0)
        else:
            await self._dead(lane, row, action.reason)
            if step is Step.DISABLE:
                await self.disable(lane, action.reason, now)

    async def evidence(self, lane: Lane, action: Action, *, started: float, now: float) -> None:
        if action.evidence is Evidence.ANSWERED:
            await lane.answered(self.store, started=started, now=now)
        elif action.evidence is Evidence.THROTTLED and action.pause_until is not None:
            # Throttled: the receiver is alive and asked the whole sink (and every sink that
            # posts to the same destination) to wait.
            lane.pacer.pause(action.pause_until)
            await lane.answered(self.store, started=started, now=now, due=action.pause_until)
        elif action.evidence is Evidence.FAILED:
            self._failed(lane, action.reason, started=started, now=now)

    async def _delivered(self, lane: Lane, row: OutboxRow, *, now: float) -> None:
        if await self.store.mark_delivered(row.id, owner=self.owner, now=now):
            self.metrics.notifications.labels(lane.name, delivery.Notified.DELIVERED).inc()
            self.metrics.notification_latency.labels(lane.name).observe(
                max(0.0, now - row.created_at)
            )
            log.debug("delivery.delivered")

    async def _retry(self, lane: Lane, row: OutboxRow, action: Action, *, now: float) -> None:
        at = action.at or now
        self.metrics.notifications.labels(lane.name, delivery.Notified.FAILED).inc()
        log.warning(
            "delivery.failed",
            reason=action.reason,
            attempt=f"{row.attempts}/{len(lane.sink.limits.schedule.steps)}",
            retry_in=round(at - now, 1),
        )
        await self.store.mark_retry(
            row.id, owner=self.owner, next_attempt_at=at, error=action.reason
        )

    async def _probe_failed(
        self, lane: Lane, row: OutboxRow, action: Action, *, now: float
    ) -> None:
        """Still down: the probe does not count against the row's schedule (it was early)."""
        self.metrics.notifications.labels(lane.name, delivery.Notified.FAILED).inc()
        next_probe = round(lane.breaker.probe_in(now), 1)
        log.info("sink.still_down", reason=action.reason, next_probe_in=next_probe)
        retry_at = delivery.probe_retry_at(action.at or now, lane.breaker)
        await self.store.unclaim(row.id, owner=self.owner, next_attempt_at=retry_at)

    def _failed(self, lane: Lane, reason: str, *, started: float, now: float) -> None:
        verdict = lane.breaker.failed(started=started, now=now, u=self.rng.random())
        if verdict is delivery.Failure.OPENED:
            log.error(
                "sink.down",
                sink=lane.name,
                host=lane.host,
                failures=lane.breaker.streak,
                reason=reason,
                hint="deliveries wait (nothing is dropped); probes back off from about 1 s to"
                " the cooldown until it answers, then the backlog goes at once",
                cooldown=lane.breaker.cooldown,
            )

    async def _dead(self, lane: Lane, row: OutboxRow, reason: str) -> None:
        if await self.store.mark_dead(row.id, owner=self.owner, error=reason):
            self.metrics.notifications.labels(lane.name, delivery.Notified.DEAD).inc()
            log.error(
                "delivery.dead_lettered",
                session_sid=row.session_sid,  # whose alert will not arrive (sink, event id are bound)
                reason=reason,
                hint=f"kept in the store; `spmon outbox retry --sink {lane.name}` re-sends it",
            )

    async def disable(self, lane: Lane, reason: str, now: float) -> None:
        await self.store.disable_sink(
            lane.name, fingerprint=lane.sink.fingerprint, reason=reason, now=now
        )
        self.announce_disabled(lane, reason)

    def announce_disabled(self, lane: Lane, reason: str) -> None:
        lane.disabled = reason
        self.metrics.sink_disabled.labels(lane.name).set(1)
        log.error(
            "sink.disabled", sink=lane.name, host=lane.host, reason=reason, hint=_DISABLED_HINT
        )


_DISABLED_HINT = (
    "the receiver answered 410 Gone, so nothing more is sent to this sink; its pending "
    "deliveries are kept. Fix the sink's configuration (a changed url or secret re-enables "
    "it at the next start), then `spmon outbox retry --sink NAME` re-sends dead-lettered ones"
)


async def attempt(lane: Lane, row: OutboxRow, *, bound: float, now: float) -> Outcome:
    """One delivery attempt of one row; whatever goes wrong becomes an Outcome."""
    try:
        event = Event.from_wire(json.loads(row.payload))
    except (ValueError, KeyError, TypeError) as exc:
        return Rejected(f"unreadable outbox row ({type(exc).__name__})")
    try:
        # Sinks time out on their own; this bound only guards against a sink that forgets
        # (the lease is derived from the longest configured timeout, so it never cuts one).
        async with asyncio.timeout(bound):
            return await lane.sink.deliver(event, row.payload, now=now)
    except TimeoutError:
        return RetryLater("delivery timed out")
    except Exception as exc:
        log.exception("sink.crashed")
        return RetryLater(f"sink raised {type(exc).__name__}")


async def paced(
    actions: Actions, lane: Lane, row: OutboxRow, *, clock: aio.Clock, lease: float
) -> bool:
    """Wait for the lane's next start slot; a long wait (a Retry-After pause) gives the
    row back untried instead of holding its lease."""
    now = clock.now()
    wait = lane.pacer.reserve(now)
    action = delivery.pace(wait, now=now, lease=lease)
    if action is not None:
        await actions.act(lane, row, action)
        return False
    if wait > 0:
        await clock.sleep(wait)
    return True

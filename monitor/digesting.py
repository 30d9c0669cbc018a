"""The dispatcher's digest and quiet side: a lane whose sink is digested claims every due row
of its window at once and sends them as one message per group; a lane in a quiet window
holds its rows (pending, next attempt at the window's end) and sends them as one digest when
it ends.

Outbox invariants are the single-row ones, per digest message: the rows a message covers are
leased together, marked delivered together only once the receiver accepted it (one
transaction), retried together on the sink's schedule (the oldest row's attempts count), or
given back untried. A SIGKILL anywhere leaves them pending or leased by a dead owner: the
next start sends the digest again (at least once), nothing is lost.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence

import structlog

from monitor import aio
from monitor.actions import Actions
from monitor.core import delivery, digest
from monitor.core.delivery import Action, Outcome, RetryLater, Step
from monitor.core.events import Event
from monitor.lanes import Lane
from monitor.metrics import Metrics
from monitor.quieting import QuietHours
from monitor.sinks import Digesting
from monitor.store import OutboxRow, OutboxStore

__all__ = ["Digests"]

log = structlog.get_logger("spmon.dispatcher")

BATCH_ROWS = 5000
"""Rows one digest pass claims at most (a first start on 100,000 sessions: a few passes)."""
LEADER_CHECK = 5.0
"""How often a replica that does not lead looks again whether it leads (a lease round)."""
FIRST_WAIT = 900.0
"""Longest a digest sink waits at start for every watch's first poll, so a first start with
reviews already overdue sends one summary, not one per window of the first sweep."""


class Digests:
    def __init__(
        self,
        actions: Actions,
        *,
        clock: aio.Clock,
        lease: float,
        first_cycle: Callable[[], bool] | None = None,
        leading: Callable[[], bool] = lambda: True,
    ) -> None:
        self.store: OutboxStore = actions.store
        self.metrics: Metrics = actions.metrics
        self.actions, self.rng = actions, actions.rng
        self.clock, self.lease = clock, lease
        self.draining = False
        """At shutdown or `spmon once`: a window not yet over goes now, not after a restart."""
        self.first_cycle = first_cycle
        self.leading = leading
        """Digests are one fleet's: only the leader batches a window (replicas on PostgreSQL
        would otherwise each send their part of it as a digest of its own)."""
        self.started = clock.now()
        self.hours = QuietHours(self.store, self.metrics)

    def policy(self, lane: Lane) -> digest.Policy | None:
        """How the lane batches now: its `digest:`, or (quiet sinks, a window just ended)
        what is due together as one message; None sends per event."""
        if not lane.digesting:
            return None
        if lane.plan.digest is not None:
            return lane.plan.digest
        held = lane.plan.quiet is not None or lane.released
        oneoff = self.hours.has_oneoff(lane.name)
        return digest.Policy(window=0.0) if held or oneoff else None

    # -- batches ---------------------------------------------------------------------------

    async def take(self, lane: Lane, now: float, *, drain: bool) -> int | None:
        """The dispatcher's claim for a quiet or digest lane: 0 while quiet (held), the rows
        of a batch; None for a lane that sends per event (the dispatcher claims)."""
        if await self.hours.holding(lane, now):
            return 0
        policy = self.policy(lane)
        return None if policy is None else await self.fill(lane, policy, now, drain=drain)

    async def due(self, lane: Lane, now: float) -> float | None:
        """When the lane has something to claim next (its next batch, or its next row)."""
        policy = self.policy(lane)
        if policy is None:
            return await self.store.next_due(lane.name, now=now)
        if not self.leading():
            return now + LEADER_CHECK  # not this replica's to send; it may lead later
        return await self.next_due(lane, policy, now)

    async def fill(self, lane: Lane, policy: digest.Policy, now: float, *, drain: bool) -> int:
        """Claim the lane's due window as one batch (a sink that is down: one probe batch)."""
        if lane.inflight or not self.leading():
            return 0
        probe = lane.breaker.open
        if probe and not lane.breaker.may_probe(now):
            return 0
        if not (drain or probe) and lane.plan.digest is not None and not self._swept(now):
            return 0
        rows, dead = await self.store.claim_batch(
            lane.name, now=now, window=0.0 if drain or probe else policy.window,
            owner=self.actions.owner, lease=self.lease, limit=BATCH_ROWS,
            max_attempts=len(lane.sink.limits.schedule.steps), force=probe,
        )  # fmt: skip
        if dead:
            self.metrics.notifications.labels(lane.name, delivery.Notified.DEAD).inc(dead)
            log.error("delivery.dead_lettered", sink=lane.name, rows=dead, reason="crashed")
        if not rows:
            lane.released = lane.released and probe
            return 0
        if probe:
            lane.breaker.probe_started()
        task = asyncio.create_task(
            self._deliver(lane, rows, policy, now if probe else None),
            name=f"digest-{lane.name}-{rows[0].id}",
        )
        lane.inflight.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            lane.inflight.discard(finished)
            lane.wake.set()

        task.add_done_callback(done)
        return len(rows)

    async def next_due(self, lane: Lane, policy: digest.Policy, now: float) -> float | None:
        due = await self.store.next_batch_due(lane.name, now=now, window=policy.window)
        if due is not None and lane.plan.digest is not None and not self._swept(now):
            due = max(due, min(now + 1.0, self.started + FIRST_WAIT))
        return due

    def _swept(self, now: float) -> bool:
        first = self.first_cycle
        return first is None or first() or now >= self.started + FIRST_WAIT

    async def _deliver(
        self, lane: Lane, rows: Sequence[OutboxRow], policy: digest.Policy, probe: float | None
    ) -> None:
        with structlog.contextvars.bound_contextvars(sink=lane.name, rows=len(rows)):
            try:
                await self._send_groups(lane, rows, policy, probe)
            except Exception:
                # The rows stay leased: release at shutdown or lease expiry brings them back.
                log.exception("delivery.crashed")
            finally:
                if probe is not None:
                    lane.breaker.probe_ended()

    async def _send_groups(
        self, lane: Lane, rows: Sequence[OutboxRow], policy: digest.Policy, probe: float | None
    ) -> None:
        pairs, unreadable = _events(rows)
        if unreadable:
            await self._settle(lane, unreadable, Action(Step.DEAD, reason=_UNREADABLE), 0.0)
        groups = digest.group(pairs, policy)
        tries = {row.id: row.attempts for row in rows}
        bodies = {row.id: row.payload for row in rows}
        for index, found in enumerate(groups):
            now = self.clock.now()
            wait = lane.pacer.reserve(now)
            paused = delivery.pace(wait, now=now, lease=self.lease)
            if paused is not None:  # a Retry-After pause: give the rest back untried
                await self._unclaim(groups[index:], paused.at or now)
                return
            if wait > 0:
                await self.clock.sleep(wait)
            async with lane.serial():
                started = self.clock.now()
                bound = delivery.attempt_bound(self.lease)
                outcome = await _attempt(lane, found, bodies, bound=bound, now=started)
                action = await self._decide(lane, found, outcome, tries, started, probe)
            if action.step is not Step.DELIVERED:
                await self._unclaim(groups[index + 1 :], action.at or self.clock.now())
                return

    async def _decide(
        self,
        lane: Lane,
        found: digest.Group,
        outcome: Outcome,
        tries: dict[int, int],
        started: float,
        probe: float | None,
    ) -> Action:
        now = self.clock.now()
        u = self.rng.random() if isinstance(outcome, RetryLater) and probe is None else 0.0
        attempts = max(tries[row_id] for row_id in found.row_ids)
        action = delivery.decide(
            outcome, attempts=attempts, schedule=lane.sink.limits.schedule, now=now, u=u,
            probe_due=probe,
        )  # fmt: skip
        if action.step is not Step.DELIVERED:
            await self.actions.evidence(lane, action, started=started, now=now)
        await self._settle(lane, found.row_ids, action, now)
        if action.step is Step.DELIVERED:
            await self.actions.evidence(lane, action, started=started, now=now)
        return action

    async def _settle(self, lane: Lane, ids: Sequence[int], action: Action, now: float) -> None:
        step, owner, store = action.step, self.actions.owner, self.store
        name = lane.name
        if step is Step.DELIVERED:
            marked = await store.settle_batch(ids, owner=owner, how="delivered", at=now)
            self.metrics.notifications.labels(name, delivery.Notified.DELIVERED).inc(marked)
            if len(ids) > 1:
                self.metrics.digests.labels(name).inc()
                log.info("digest.delivered", rows=marked)
        elif step in (Step.RETRY, Step.PROBE_FAILED, Step.UNCLAIM):
            at = action.at or now
            if step is Step.PROBE_FAILED:
                at = delivery.probe_retry_at(at, lane.breaker)
            how = "retry" if step is Step.RETRY else "unclaim"
            await store.settle_batch(ids, owner=owner, how=how, at=at, error=action.reason)
            if step is not Step.UNCLAIM:
                self.metrics.notifications.labels(name, delivery.Notified.FAILED).inc()
                log.warning("digest.failed", reason=action.reason, retry_in=round(at - now, 1))
        else:
            marked = await store.settle_batch(ids, owner=owner, how="dead", error=action.reason)
            self.metrics.notifications.labels(name, delivery.Notified.DEAD).inc(marked)
            log.error("digest.dead_lettered", reason=action.reason, rows=marked)
            if step is Step.DISABLE:
                await self.actions.disable(lane, action.reason, now)

    async def _unclaim(self, groups: Sequence[digest.Group], at: float) -> None:
        ids = [row_id for found in groups for row_id in found.row_ids]
        if ids:
            await self.store.settle_batch(ids, owner=self.actions.owner, how="unclaim", at=at)


_UNREADABLE = "unreadable outbox row"


async def _attempt(
    lane: Lane,
    found: digest.Group,
    bodies: dict[int, bytes],
    *,
    bound: float,
    now: float,
) -> Outcome:
    sink = lane.sink
    try:
        async with asyncio.timeout(bound):
            if len(found.events) == 1:  # a digest of one is the alert itself
                return await sink.deliver(found.events[0], bodies[found.row_ids[0]], now=now)
            assert isinstance(sink, Digesting)  # policy() batches Digesting sinks only
            url = lane.plan.status_url
            return await sink.deliver_digest(found, now=now, status_url=url)
    except TimeoutError:
        return RetryLater("delivery timed out")
    except Exception as exc:
        log.exception("sink.crashed")
        return RetryLater(f"sink raised {type(exc).__name__}")


def _events(rows: Sequence[OutboxRow]) -> tuple[list[tuple[int, Event]], list[int]]:
    pairs, bad = [], []
    for row in rows:
        try:
            pairs.append((row.id, Event.from_wire(json.loads(row.payload))))
        except (ValueError, KeyError, TypeError):
            bad.append(row.id)
    return pairs, bad

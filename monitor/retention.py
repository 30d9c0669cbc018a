"""Retention: one loop that, at start and then hourly, deletes settled deliveries past their
retention and transitions past `history.retention`, a batch per transaction, and keeps the
age of the oldest kept transition for its gauge."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

import structlog

from monitor import aio
from monitor.core.events import ALERT_TYPES
from monitor.core.outbox import SETTLED, OutboxState
from monitor.metrics import Metrics
from monitor.store import HistoryRetention, OutboxAdmin

__all__ = ["PURGE_BATCH", "RETENTION_EVERY", "Retention", "purge_expired", "purge_history"]

log = structlog.get_logger("spmon.retention")

RETENTION_EVERY = 3600.0
"""Old rows are deleted this often, and once at start."""
PURGE_BATCH = 5000
DAY = 86400.0


class Purgeable(OutboxAdmin, HistoryRetention, Protocol):
    """What retention needs of a store: both purges and the oldest transition."""


class Retention:
    """`outbox` and `history` are retentions in seconds; 0 keeps those rows forever."""

    def __init__(
        self,
        store: Purgeable,
        metrics: Metrics,
        *,
        outbox: float,
        history: float,
        clock: aio.Clock = aio.SYSTEM,
        leading: Callable[[], bool] = lambda: True,
    ) -> None:
        self.store, self.metrics, self.clock = store, metrics, clock
        self.leading = leading
        """Purge only while this is true: with replicas, only the leader purges."""
        self.outbox, self.history = outbox, history
        self.oldest: float | None = None
        """When the oldest kept transition was observed, as of the last pass."""
        metrics.history_oldest_age.set_function(self.oldest_age)

    def oldest_age(self) -> float:
        """Read at scrape time: the oldest transition keeps ageing between passes."""
        return 0.0 if self.oldest is None else max(0.0, self.clock.now() - self.oldest)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if self.leading():
                    await self.once()
            except Exception:
                log.exception("retention.failed")
            await self.clock.sleep(RETENTION_EVERY, stop)

    async def once(self) -> None:
        now = self.clock.now()
        if self.outbox > 0:
            await purge_expired(self.store, self.metrics, retention=self.outbox, now=now)
        if self.history > 0:
            await purge_history(self.store, self.metrics, retention=self.history, now=now)
        self.oldest = await self.store.oldest_transition()


async def purge_expired(
    store: OutboxAdmin, metrics: Metrics, *, retention: float, now: float
) -> dict[OutboxState, int]:
    """Delete delivered and dead rows created more than `retention` seconds ago, a batch per
    transaction; never pending ones, nor the alert rows a resend loop still reads."""
    keep = sorted(ALERT_TYPES)
    purged = dict.fromkeys(SETTLED, 0)
    for state in SETTLED:
        while True:
            batch = await store.purge_settled(
                state=state, sink=None, before=now - retention, keep=keep, limit=PURGE_BATCH
            )
            metrics.outbox_purged.labels(state).inc(batch)
            purged[state] += batch
            if batch < PURGE_BATCH:
                break
    if any(purged.values()):
        log.info("outbox.purged", retention_days=round(retention / DAY, 2), **purged)
    return purged


async def purge_history(
    store: HistoryRetention, metrics: Metrics, *, retention: float, now: float
) -> int:
    """Delete transitions observed more than `retention` seconds ago, a batch per transaction
    (polls commit in between); how many went."""
    purged = 0
    while True:
        batch = await store.purge_transitions(before=now - retention, limit=PURGE_BATCH)
        metrics.history_purged.inc(batch)
        purged += batch
        if batch < PURGE_BATCH:
            break
    if purged:
        log.info("history.purged", retention_days=round(retention / DAY, 2), transitions=purged)
    return purged

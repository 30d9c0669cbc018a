"""One lane per sink: what the dispatcher and the resender share about it.

A lane holds the sink's pacer (shared with the sinks that post to the same destination), its
breaker, its in-flight deliveries and the lock that keeps an Alertmanager resend from
interleaving with a delivery. The breaker and pacer are pure (`core.delivery`); this module
applies the receiver's answers to them and says what the lane's state is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from monitor.core import delivery, digest
from monitor.sinks import Digesting, Resending, Sink
from monitor.store import OutboxStore

__all__ = ["Lane", "build_lanes", "statuses"]

log = structlog.get_logger("spmon.dispatcher")


@dataclass(eq=False)
class Lane:
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
    plan: digest.Plan = digest.NO_PLAN
    digesting: bool = False
    """The sink can say many events in one message (a `Digesting` one)."""
    quiet_until: float | None = None
    """While a quiet window holds the sink's rows, when it ends."""
    released: bool = False
    """A quiet window ended: what it held goes as one digest, even without `digest:`."""

    @property
    def name(self) -> str:
        return self.sink.name

    @property
    def host(self) -> str:
        return str(getattr(self.sink, "host", "?"))

    def serial(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self.lock if self.resending else contextlib.nullcontext()

    def status(self, now: float) -> str:
        """Up, paused (Retry-After), down (breaker open), disabled or quiet."""
        if self.disabled is not None:
            return "disabled"
        if self.quiet_until is not None and self.quiet_until > now:
            return "quiet"
        if self.breaker.open:
            return "down"
        return "paused" if self.pacer.paused(now) else "up"

    async def answered(
        self, store: OutboxStore, *, started: float, now: float, due: float | None = None
    ) -> None:
        """The receiver is up (it answered): end the failure streak; after an outage, every
        row that backed off meanwhile is due now (or when a Retry-After pause ends), and
        the store still hands out only each session's oldest row, so order holds."""
        if self.breaker.answered(started=started, now=now):
            moved = await store.expedite(self.name, now=max(now, due or now))
            log.info("sink.recovered", sink=self.name, host=self.host, expedited=moved)
            self.wake.set()


def build_lanes(
    sinks: Sequence[Sink], plans: Mapping[str, digest.Plan] | None = None
) -> list[Lane]:
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
        lane = Lane(sink, pacer, breaker, resending=isinstance(sink, Resending))
        lane.plan = (plans or {}).get(sink.name, digest.NO_PLAN)
        lane.digesting = isinstance(sink, Digesting)
        lanes.append(lane)
    return lanes


def statuses(lanes: Sequence[Lane], now: float) -> dict[str, str]:
    """Each sink's state: up, paused (Retry-After), down (breaker open) or disabled."""
    return {lane.name: lane.status(now) for lane in lanes}

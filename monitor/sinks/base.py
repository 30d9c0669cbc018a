"""What every alert destination promises: deliver one event, say how it went."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from monitor.core.events import Event

__all__ = ["Delivered", "Outcome", "Rejected", "RetryLater", "Sink"]


@dataclass(frozen=True, slots=True)
class Delivered:
    pass


@dataclass(frozen=True, slots=True)
class RetryLater:
    """A transient failure; `after` is the receiver's Retry-After in seconds, when it gave one."""

    reason: str
    after: float | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A permanent failure: retrying the same request cannot succeed, so it is dead-lettered."""

    reason: str


Outcome = Delivered | RetryLater | Rejected


class Sink(Protocol):
    name: str
    concurrency: int
    """Deliveries in flight at once for this sink."""

    async def deliver(self, event: Event, body: bytes, *, now: float) -> Outcome:
        """Send one event. `body` is the exact JSON stored in the outbox; `now` is epoch seconds."""
        ...

    async def aclose(self) -> None: ...

"""What the poller and dispatcher need from persistent state, independent of the database."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from monitor.core.events import Event
from monitor.core.keys import SessionKey
from monitor.core.rules import ReviewState
from monitor.core.snapshot import Snapshot

__all__ = [
    "OutboxEntry",
    "OutboxRow",
    "OutboxStats",
    "PollRecord",
    "SessionRecord",
    "SinkState",
    "StateFileError",
    "StateStore",
    "StoreLocked",
]


class StateFileError(Exception):
    """The state file cannot be used as it is; `str()` is one line naming the file and why."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"state file {path}: {reason}")


class StoreLocked(StateFileError):
    """Another process holds the state file: two pollers would alert twice."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A session as the store last committed it (what a restart resumes from)."""

    key: SessionKey
    snapshot: Snapshot | None
    review: ReviewState
    version: int
    digest: bytes | None
    missing: bool
    failures: int
    last_poll_at: float | None


@dataclass(frozen=True, slots=True)
class PollRecord:
    """Everything one poll changes, committed atomically: snapshot, state and the events' rows.

    `snapshot`/`payload` are None when the poll produced no valid data (the last good snapshot
    stays). `deliveries` pairs each event with the sink names it routes to.
    """

    key: SessionKey
    polled_at: float
    outcome: str
    failures: int
    snapshot: Snapshot | None = None
    payload: bytes | None = None
    digest: bytes | None = None
    review: ReviewState | None = None
    version: int = 0
    missing: bool = False
    deliveries: Sequence[tuple[Event, Sequence[str]]] = field(default_factory=tuple)
    touch_only: bool = False
    """Nothing but the poll time changed: the store may skip rewriting the row."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    event_id: str
    sink: str
    session_sid: str
    payload: bytes
    created_at: float
    attempts: int
    state: str = "pending"
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxStats:
    pending: dict[str, int]
    dead: dict[str, int]
    oldest_pending_at: float | None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outbox row as `spmon outbox list` shows it."""

    id: int
    event_id: str
    sink: str
    session_sid: str
    event_type: str
    state: str
    attempts: int
    created_at: float
    next_attempt_at: float
    last_error: str | None


@dataclass(frozen=True, slots=True)
class SinkState:
    """A sink its receiver turned away (410), and for which configuration."""

    sink: str
    fingerprint: str
    disabled_at: float
    reason: str


class StateStore(Protocol):
    async def load(self) -> list[SessionRecord]: ...

    async def commit(
        self, records: Sequence[PollRecord], *, touched: Sequence[tuple[float, str]] = ()
    ) -> None: ...

    async def enqueue(
        self, deliveries: Sequence[tuple[Event, Sequence[str]]], now: float
    ) -> None: ...

    async def claim(
        self,
        sink: str,
        *,
        now: float,
        limit: int,
        owner: str,
        lease: float,
        max_attempts: int | None = None,
        on_dead: Callable[[], object] = ...,
    ) -> list[OutboxRow]: ...

    async def mark_delivered(self, row_id: int, *, owner: str, now: float) -> bool: ...

    async def mark_retry(
        self, row_id: int, *, owner: str, next_attempt_at: float, error: str
    ) -> bool: ...

    async def mark_dead(self, row_id: int, *, owner: str, error: str) -> bool: ...

    async def release(self, owner: str) -> None: ...

    async def stats(self) -> OutboxStats: ...

    async def rows(self, *, state: str | None, limit: int) -> list[OutboxRow]: ...

    async def requeue_dead(self, *, sink: str | None, now: float) -> int: ...

    async def purge(self, *, state: str, sink: str | None) -> int: ...

    async def unclaim(self, row_id: int, *, owner: str, next_attempt_at: float) -> bool: ...

    async def claim_probe(
        self, sink: str, *, now: float, owner: str, lease: float
    ) -> tuple[OutboxRow, float] | None: ...

    async def expedite(self, sink: str, *, now: float) -> int: ...

    async def firing(self, sink: str, *, fire: str, resolve: str) -> list[OutboxRow]: ...

    async def sink_states(self) -> dict[str, SinkState]: ...

    async def disable_sink(
        self, sink: str, *, fingerprint: str, reason: str, now: float
    ) -> None: ...

    async def enable_sink(self, sink: str) -> bool: ...

    async def entries(
        self, *, state: str | None, sink: str | None, limit: int
    ) -> list[OutboxEntry]: ...

    async def requeue_rows(self, ids: Sequence[int], *, now: float) -> int: ...

    async def purge_settled(
        self,
        *,
        state: str,
        sink: str | None,
        before: float | None,
        keep: Sequence[str],
        limit: int | None = None,
    ) -> int: ...

    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...

    async def next_due(self, sink: str, *, now: float) -> float | None: ...

    async def make_due(self, *, sink: str | None, now: float) -> int: ...

    async def ping(self) -> None: ...

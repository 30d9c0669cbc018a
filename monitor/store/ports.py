"""What each loop needs from persistent state, one port per role, independent of the database.

The poller writes sessions (`SessionStore`), the dispatcher drains the outbox (`OutboxStore`),
operator commands inspect and repair it (`OutboxAdmin`), start-up and `spmon watch` keep the
watch set (`WatchStore`), the read model reads sessions and their history (`ReadStore`) and
retention purges old history (`HistoryRetention`). A store implements all of them; each
caller types against the one it uses, so a PostgreSQL store has exactly these to provide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from monitor.core.events import Event
from monitor.core.keys import SessionKey
from monitor.core.outbox import OutboxState
from monitor.core.views import Delivery, SessionRow, Transition
from monitor.core.watches import Changes, Watch
from monitor.store.base import (
    OutboxEntry,
    OutboxRow,
    OutboxStats,
    PollRecord,
    QuietWindow,
    SessionRecord,
    SinkState,
    WatchRecord,
)

__all__ = [
    "Fence",
    "HistoryRetention",
    "OutboxAdmin",
    "OutboxStore",
    "ReadStore",
    "SessionStore",
    "WatchStore",
]

Deliveries = Sequence[tuple[Event, Sequence[str]]]
"""Each event with the names of the sinks it routes to."""


class Fence(Protocol):
    """Who may write which shards: the shard leases a replica holds (`leasing.Leaser`)."""

    owner: str

    def owned(self) -> Mapping[int, int]:
        """shard → epoch held now."""


class SessionStore(Protocol):
    """The poller's side: sessions as last committed, each poll's writes, a little meta."""

    async def load(self, sids: Sequence[str] | None = None) -> list[SessionRecord]:
        """Every stored session, or only those of `sids`."""

    async def commit(
        self, records: Sequence[PollRecord], *, touched: Mapping[str, float] = ...
    ) -> frozenset[str]:
        """Snapshots, review states and outbox rows of a batch of polls, in one transaction;
        `touched` are the poll times (by session sid) of polls that changed nothing else,
        handed over: the caller no longer changes it. Returns
        the session sids fenced out (their shard is not this replica's: nothing of theirs was
        written); always empty where one process owns the store."""

    async def enqueue(self, deliveries: Deliveries, now: float) -> None:
        """Outbox rows for events that belong to no poll (e.g. api.auth_failed)."""

    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...


class OutboxStore(Protocol):
    """The dispatcher's side: leases on due rows, fenced outcomes, sink states."""

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

    async def claim_probe(
        self, sink: str, *, now: float, owner: str, lease: float
    ) -> tuple[OutboxRow, float] | None: ...

    async def unclaim(self, row_id: int, *, owner: str, next_attempt_at: float) -> bool: ...

    async def mark_delivered(self, row_id: int, *, owner: str, now: float) -> bool: ...

    async def mark_retry(
        self, row_id: int, *, owner: str, next_attempt_at: float, error: str
    ) -> bool: ...

    async def mark_dead(self, row_id: int, *, owner: str, error: str) -> bool: ...

    async def release(self, owner: str) -> None: ...

    async def expedite(self, sink: str, *, now: float) -> int: ...

    async def next_due(self, sink: str, *, now: float) -> float | None: ...

    async def firing(self, sink: str, *, fire: str, resolve: str) -> list[OutboxRow]: ...

    async def sink_states(self) -> dict[str, SinkState]: ...

    async def disable_sink(
        self, sink: str, *, fingerprint: str, reason: str, now: float
    ) -> None: ...

    async def enable_sink(self, sink: str) -> bool: ...

    async def stats(self) -> OutboxStats: ...

    # -- digest and quiet sinks (store.sqlite.batches) --

    async def claim_batch(
        self,
        sink: str,
        *,
        now: float,
        window: float,
        owner: str,
        lease: float,
        limit: int,
        max_attempts: int,
        force: bool = False,
    ) -> tuple[list[OutboxRow], int]: ...

    async def settle_batch(
        self, ids: Sequence[int], *, owner: str, how: str, at: float = 0.0, error: str = ""
    ) -> int: ...

    async def next_batch_due(self, sink: str, *, now: float, window: float) -> float | None: ...

    async def hold(self, sink: str, *, until: float) -> int: ...

    async def quiet_windows(self, *, now: float) -> list[QuietWindow]: ...


class OutboxAdmin(Protocol):
    """Operator commands (`spmon outbox …`) and retention: read, re-queue, purge."""

    async def entries(
        self, *, state: OutboxState | None, sink: str | None, limit: int
    ) -> list[OutboxEntry]: ...

    async def sink_states(self) -> dict[str, SinkState]: ...

    async def requeue_rows(self, ids: Sequence[int], *, now: float) -> int: ...

    async def requeue_dead(self, *, sink: str | None, now: float) -> int: ...

    async def make_due(self, *, sink: str | None, now: float) -> int: ...

    async def purge_settled(
        self,
        *,
        state: OutboxState,
        sink: str | None,
        before: float | None,
        keep: Sequence[str],
        limit: int | None = None,
    ) -> int: ...

    async def stats(self) -> OutboxStats: ...


class WatchStore(Protocol):
    """The watch set, the source of truth at run time: what start-up reconciles the sources
    into and `spmon watch` edits. A removed watch keeps its row (history); at most one watch
    per session sid is active."""

    async def active_watches(
        self, like: Callable[[SessionKey], Watch | None] | None = None
    ) -> dict[SessionKey, Watch]:
        """The watches in force, in the order they were first added."""

    async def apply_watches(self, changes: Changes, *, now: float) -> None:
        """A reconcile's added, changed and removed watches, in one transaction."""

    async def add_watch(self, watch: Watch, *, now: float) -> Watch | None:
        """Watch one session (or replace its labels, interval and source); the watch it
        replaced, if any."""

    async def remove_watch(self, session_sid: str, *, now: float) -> Watch | None:
        """Stop watching one session, keeping its history; the watch removed, if any."""

    async def watch_history(self) -> list[WatchRecord]:
        """Every watch ever held, active and removed, oldest first."""


class ReadStore(Protocol):
    """The read model's side (status page, API, `spmon sessions|history|status`): reads only,
    so it can be served by a second connection, or a second process, beside the writer."""

    async def session_rows(self) -> list[SessionRow]:
        """Every watched session (active watch joined with its stored state), watch order."""

    async def session_row(self, session_sid: str) -> SessionRow | None:
        """One session, watched or no longer watched; None if the state file never held it."""

    async def transitions(self, session_sid: str) -> list[Transition]:
        """The session's kept transitions, oldest first."""

    async def deliveries(self, session_sid: str) -> list[Delivery]:
        """The session's outbox rows (one per event and sink), oldest first."""

    async def stats(self) -> OutboxStats: ...

    async def sink_states(self) -> dict[str, SinkState]: ...


class HistoryRetention(Protocol):
    """`history.retention`: purge old transitions, and say how old the oldest kept one is."""

    async def purge_transitions(self, *, before: float, limit: int) -> int: ...

    async def oldest_transition(self) -> float | None: ...

"""What the poller and dispatcher need from persistent state, independent of the database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from monitor.core.events import Event
from monitor.core.keys import SessionKey
from monitor.core.outbox import OutboxState
from monitor.core.poll import Outcome
from monitor.core.rules import ReviewState
from monitor.core.snapshot import Snapshot
from monitor.core.watches import Watch

__all__ = [
    "Fenced",
    "OutboxEntry",
    "OutboxRow",
    "OutboxStats",
    "PollRecord",
    "QuietWindow",
    "SessionRecord",
    "SinkState",
    "StateFileError",
    "StoreLocked",
    "WatchRecord",
]


class StateFileError(Exception):
    """The state file cannot be used as it is; `str()` is one line naming the file and why.
    For PostgreSQL `path` is the database URL with its password masked (a str)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path, self.reason = path, reason
        what = "state file" if isinstance(path, Path) else "state database"
        super().__init__(f"{what} {path}: {reason}")


class StoreLocked(StateFileError):
    """Another process holds the state file: two pollers would alert twice."""


class Fenced(Exception):
    """This replica no longer holds the session's shard at the epoch it polled under: its poll
    was not written (another replica owns the session now, or will)."""

    def __init__(self, session_sid: str) -> None:
        self.session_sid = session_sid
        super().__init__(f"session {session_sid}: its shard is no longer this replica's")


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
    settled_since: datetime | None = None
    """When it was first seen settled (its phase: retired after `retire_after` of it)."""


@dataclass(frozen=True, slots=True)
class PollRecord:
    """Everything one poll changes, committed atomically: snapshot, state and the events' rows.

    `snapshot`/`payload` are None when the poll produced no valid data (the last good snapshot
    stays). `deliveries` pairs each event with the sink names it routes to.
    """

    key: SessionKey
    polled_at: float
    outcome: Outcome
    failures: int
    snapshot: Snapshot | None = None
    payload: bytes | None = None
    digest: bytes | None = None
    review: ReviewState | None = None
    version: int = 0
    missing: bool = False
    settled_since: datetime | None = None
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
    state: OutboxState = OutboxState.PENDING
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class QuietWindow:
    """A one-off quiet window of one sink, set from the CLI (epoch seconds)."""

    id: int
    sink: str
    start: float
    end: float
    reason: str = ""


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
    state: OutboxState
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


@dataclass(frozen=True, slots=True)
class WatchRecord:
    """One stretch of time a session was watched (`spmon watch ls --all`)."""

    watch: Watch
    added_at: float
    removed_at: float | None = None
    """None while it is watched."""

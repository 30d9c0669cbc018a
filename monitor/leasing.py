"""The shard leases a replica holds, renewed on a thread of its own (issue 12).

`async with Leaser(url) as leaser:` starts the thread and its two connections, waits for the
first round (so the service starts with its shards), and on exit releases every shard it
holds and NOTIFYs the peers, who take them within a second.

Why a thread and not a task: a lease that cannot be renewed because the event loop is
starved is a duplicate run waiting to happen. Here renewal depends only on this thread and
its connection. The other side holds too: when renewal has not succeeded for `ttl - margin`
seconds, by the monotonic clock, the leaser stands down at once: `owned()` is empty from
that instant (it checks the deadline itself, even while the thread is stuck in a call), and
the service hears which shards it lost. The database is the final word either way: commits
are fenced on owner and epoch inside their own transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType, TracebackType

import psycopg
import structlog

from monitor.core.shards import LEADER, plan
from monitor.store.base import StateFileError
from monitor.store.postgres.leases import PAUSE_CHANNEL, LeaseTable

__all__ = ["Change", "Leaser", "owner_id"]

log = structlog.get_logger("spmon.leasing")
NOTHING: Mapping[int, int] = MappingProxyType({})


def owner_id() -> str:
    """Unique per process: host, pid and a random suffix (several processes on one host, or a
    pid reused after a restart, must never share an owner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class Change:
    """What a round changed: shards gained (shard → epoch) and shards lost."""

    gained: Mapping[int, int]
    lost: frozenset[int]


class Leaser:
    def __init__(
        self,
        url: str,
        *,
        owner: str | None = None,
        ttl: float = 15.0,
        every: float = 5.0,
        margin: float = 3.0,
        on_change: Callable[[Change], None] | None = None,
        on_pause: Callable[[float], None] | None = None,
    ) -> None:
        if not 0 < every < ttl - margin:
            raise ValueError("renewal must come well inside the lease: every < ttl - margin")
        self.owner = owner or owner_id()
        self.ttl, self.every, self.margin = ttl, every, margin
        self._table = LeaseTable(url, self.owner, ttl=ttl)
        self._on_change, self._on_pause = on_change, on_pause
        self._pauses: queue.SimpleQueue[float] = queue.SimpleQueue()
        self._held: Mapping[int, int] = NOTHING
        self._valid_until = 0.0  # monotonic: the held set means nothing after this
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.rounds = 0
        """Rounds that reached the database (tests wait on it; never on wall time)."""

    def owned(self) -> Mapping[int, int]:
        """shard → epoch held now (the leader lease, -1, included); empty once the last
        successful renewal is older than `ttl - margin`."""
        if time.monotonic() >= self._valid_until:
            return NOTHING
        return self._held

    @property
    def is_leader(self) -> bool:
        return LEADER in self.owned()

    def tell_pause(self, seconds: float) -> None:
        """The API answered this replica 429: tell the fleet (sent from the lease thread
        within a quarter second; a peer's `on_pause` hears the seconds)."""
        self._pauses.put(seconds)

    async def __aenter__(self) -> Leaser:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="spmon-leases", daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._first.wait, self.ttl)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.leave()

    async def leave(self) -> None:
        """Release every lease and notify the peers (they claim at once); from now on this
        replica holds nothing, so any later commit of it is fenced. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.shield(asyncio.to_thread(self._thread.join))
            self._thread = None

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._round()
                self._first.set()
                self._sleep()
        finally:
            self._first.set()
            self._release_all()

    def _round(self) -> None:
        held = dict(self._held) if time.monotonic() < self._valid_until else {}
        try:
            if self.rounds == 0 or self._table.broken:
                self._table.connect()
            sent = time.monotonic()
            renewed = self._table.renew(held)
            current = self._table.read()
            made = plan(current.leases, self.owner, current.now, current.replicas)
            excess = {shard: renewed[shard] for shard in made.release if shard in renewed}
            self._table.release(excess)
            won = self._table.claim(made.claim)
        except (psycopg.Error, StateFileError) as exc:
            log.warning("lease.round_failed", owner=self.owner, error=" ".join(str(exc).split()))
            self._table.close()
            self._stand_down_if_late()
            return
        self.rounds += 1
        now_held = {s: e for s, e in renewed.items() if s not in excess} | won
        self._valid_until = sent + self.ttl - self.margin
        self._publish(now_held, replicas=current.replicas)

    def _stand_down_if_late(self) -> None:
        if self._held and time.monotonic() >= self._valid_until:
            log.error(
                "lease.stood_down",
                owner=self.owner,
                shards=len(self._held),
                reason=f"no renewal for {self.ttl - self.margin:g}s",
            )
            self._publish({}, replicas=None)

    def _publish(self, now_held: dict[int, int], *, replicas: int | None) -> None:
        before = self._held
        self._held = MappingProxyType(now_held)
        gained = {s: e for s, e in now_held.items() if before.get(s) != e}
        lost = frozenset(s for s, e in before.items() if now_held.get(s) != e)
        if not gained and not lost:
            return
        log.info(
            "lease.changed",
            owner=self.owner,
            gained=len(gained),
            lost=len(lost),
            held=len(now_held),
            replicas=replicas,
            leader=LEADER in now_held,
        )
        if self._on_change is not None and self._loop is not None:
            change = Change(MappingProxyType(gained), lost)
            # A loop closed under us: the service is gone anyway.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._on_change, change)

    def _sleep(self) -> None:
        """Until the next round: `every` seconds, a peer's release (claim at once), the stop,
        or the stand-down deadline, whichever is first."""
        until = time.monotonic() + self.every
        while not self._stop.is_set():
            now = time.monotonic()
            if self._held and now >= self._valid_until:
                self._stand_down_if_late()
            left = until - now
            if left <= 0:
                return
            try:
                self._send_pauses()
                notes = self._table.wait(min(left, 0.25))
            except psycopg.Error:
                self._stop.wait(min(left, 0.25))
                continue
            if self._heard(notes):
                return

    def _send_pauses(self) -> None:
        while not self._pauses.empty():
            self._table.tell_pause(self._pauses.get_nowait())

    def _heard(self, notes: list[tuple[str, str]]) -> bool:
        """Pass peers' pauses on to the loop; True if shards were released (claim now)."""
        released = False
        for channel, payload in notes:
            if channel != PAUSE_CHANNEL:
                released = True
                continue
            owner, _, seconds = payload.rpartition(" ")
            if owner != self.owner and self._on_pause is not None and self._loop is not None:
                with contextlib.suppress(RuntimeError, ValueError):
                    self._loop.call_soon_threadsafe(self._on_pause, float(seconds))
        return released

    def _release_all(self) -> None:
        held = dict(self._held)
        self._held = NOTHING
        try:
            if not self._table.broken:
                released = self._table.release(held, leaving=True)
                log.info("lease.released", owner=self.owner, shards=released)
        except psycopg.Error as exc:  # they expire by themselves within the TTL
            log.warning("lease.release_failed", owner=self.owner, error=str(exc))
        finally:
            self._table.__exit__(None, None, None)

"""The read model: what the status page, the JSON API and `spmon status|sessions|history`
show, from the state file and, in a running service, what only the service knows.

A running service builds one `ReadModel` over its own read-only connection (`service.views`),
with the `Runtime` it holds: the watch set (phases, the freshest poll times), the sink lanes
and the API gate. `offline(path)` reads a state file alone, beside a running service or none:
phases, sink states and API health are then unknown (None or "unknown"), never good news.
The records and the filter/sort rules are pure, in `core/views.py`.

The views of every session are kept for `KEEP` at most, and only while nothing was written
and no watch came or went: a page that refreshes itself, its three lists and the API's lists
all read them, and 100,000 rows take a second to build, but a list never answers from before
a write this process made. One session and its history are always read now.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from monitor import aio
from monitor.apigate import ApiGate
from monitor.core import views
from monitor.core.views import (
    UNKNOWN,
    ApiHealth,
    History,
    Page,
    SessionQuery,
    SessionRow,
    SessionView,
    SinkHealth,
    Summary,
)
from monitor.lanes import Lane
from monitor.store import OutboxStats, ReadStore, Where, read_state
from monitor.watchset import WatchSet

__all__ = ["ReadModel", "Runtime", "offline"]


@dataclass(frozen=True, slots=True)
class Runtime:
    """What a running service knows that its state file does not."""

    watchset: WatchSet
    lanes: Sequence[Lane]
    gate: ApiGate
    registry: CollectorRegistry
    """Read for the last success and the token's expiry (the gauges already hold them)."""
    commits: Callable[[], int] = lambda: 0
    """The committer's count of written batches: a write makes the cached views stale."""

    def generation(self) -> tuple[int, int]:
        """Moves with every write and every watch added or removed."""
        return self.commits(), len(self.watchset.entries)


YIELD_EVERY = 2000
"""Rows turned into views between two turns of the event loop."""
KEEP = timedelta(seconds=2)
"""How long the views of every session answer again; let go of when it is over."""


class ReadModel:
    """`summary()`, `sessions(query)`, `session(sid)`, `history(sid)`: each reads the store
    once and reads the clock once, so one answer is one consistent moment."""

    def __init__(
        self,
        store: ReadStore,
        *,
        clock: aio.Clock = aio.SYSTEM,
        runtime: Runtime | None = None,
        sinks: Sequence[str] = (),
        keep: timedelta = KEEP,
    ) -> None:
        self.store, self.clock, self.runtime = store, clock, runtime
        self._sinks = tuple(sinks)
        """Configured sink names, so an offline summary lists a sink with nothing queued."""
        self._keep = keep
        self._built: tuple[datetime, list[SessionView]] | None = None
        self._generation: tuple[int, int] | None = None
        self._building = asyncio.Lock()
        """One build at a time: a request that waited for it answers with what it built."""

    @property
    def running(self) -> bool:
        return self.runtime is not None

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    async def sessions(self, query: SessionQuery) -> Page:
        now, every = await self._views()
        return views.select(every, query, now)

    async def session(self, session_sid: str) -> SessionView | None:
        row = await self.store.session_row(session_sid)
        return None if row is None else self._view(row, self.now())

    async def history(self, session_sid: str) -> History | None:
        """None when the state file holds nothing of that session."""
        session = await self.session(session_sid)
        transitions = tuple(await self.store.transitions(session_sid))
        deliveries = tuple(await self.store.deliveries(session_sid))
        if session is None and not transitions and not deliveries:
            return None
        return History(session, transitions, deliveries)

    async def summary(self) -> Summary:
        return (await self.overview(()))[0]

    async def overview(self, queries: Sequence[SessionQuery]) -> tuple[Summary, list[Page]]:
        """The summary and a page per query from one read of the store at one moment: the
        status page's `/`, which would otherwise read every session three times."""
        now, every = await self._views()
        stats = await self.store.stats()
        oldest = stats.oldest_pending_at
        summary = views.summarise(
            every,
            now=now,
            running=self.running,
            sinks=await self._sink_health(stats, now),
            api=self._api(),
            oldest_pending_delivery=None if oldest is None else datetime.fromtimestamp(oldest, UTC),
        )
        return summary, [views.select(every, query, now) for query in queries]

    async def _views(self) -> tuple[datetime, list[SessionView]]:
        """Every session's view and the moment it was built at (the answer's `now`)."""
        async with self._building:
            built, now = self._built, self.now()
            generation = None if self.runtime is None else self.runtime.generation()
            fresh = built is not None and views.still_fresh(built[0], now, keep=self._keep)
            if built is not None and fresh and generation == self._generation:
                return built
            self._built = None  # the old views go before the new ones are built
            built = now, await self._build(now)
            self._built, self._generation = built, generation
            self.clock.call_at(now.timestamp() + self._keep.total_seconds(), self._let_go)
            return built

    def _let_go(self) -> None:
        """Not held between requests: 100,000 views are tens of MB."""
        if self._built is not None and not views.still_fresh(
            self._built[0], self.now(), keep=self._keep
        ):
            self._built = None

    async def _build(self, now: datetime) -> list[SessionView]:
        rows = await self.store.session_rows()
        found: list[SessionView] = []
        for at in range(0, len(rows), YIELD_EVERY):
            found += (self._view(row, now) for row in rows[at : at + YIELD_EVERY])
            # 100,000 rows take a second or more: the poller's turn comes in between.
            await asyncio.sleep(0)
        return found

    def _view(self, row: SessionRow, now: datetime) -> SessionView:
        if self.runtime is None:
            return views.view_of(row, now=now, phase=None)
        entry = self.runtime.watchset.entries.get(row.key)
        if entry is None:  # no longer watched (or not yet applied): the store's word
            return views.view_of(row, now=now, phase=None)
        # The entry is at least as fresh as the store: commits land before they are applied,
        # and an unchanged poll's time is written lazily.
        fresh = dataclasses.replace(
            row,
            snapshot=entry.snapshot or row.snapshot,
            review=entry.review,
            missing=entry.missing,
            last_poll_at=entry.last_poll_at or row.last_poll_at,
        )
        return views.view_of(fresh, now=now, phase=entry.phase)

    async def _sink_health(self, stats: OutboxStats, now: datetime) -> list[SinkHealth]:
        if self.runtime is not None:
            states = {lane.name: lane.status(now.timestamp()) for lane in self.runtime.lanes}
        else:
            disabled = await self.store.sink_states()
            names = {*self._sinks, *stats.pending, *stats.dead, *disabled}
            states = {name: "disabled" if name in disabled else UNKNOWN for name in names}
        return [
            SinkHealth(name, state, stats.pending.get(name, 0), stats.dead.get(name, 0))
            for name, state in sorted(states.items())
        ]

    def _api(self) -> ApiHealth:
        if self.runtime is None:
            return ApiHealth()
        registry, gate = self.runtime.registry, self.runtime.gate
        renews = registry.get_sample_value("spmon_api_token_renews")
        return ApiHealth(
            auth_failing=gate.auth.is_open,
            breaker_open=gate.api.is_open,
            last_success=_instant(registry, "spmon_poll_last_success_timestamp_seconds"),
            token_expiry=_instant(registry, "spmon_api_token_expiry_timestamp_seconds"),
            token_renews=None if renews is None else bool(renews),
        )


def _instant(registry: CollectorRegistry, name: str) -> datetime | None:
    """A timestamp gauge as an instant; 0 (never set) is None."""
    value = registry.get_sample_value(name)
    return datetime.fromtimestamp(value, UTC) if value else None


@contextlib.asynccontextmanager
async def offline(
    path: Where, *, clock: aio.Clock = aio.SYSTEM, sinks: Sequence[str] = ()
) -> AsyncIterator[ReadModel]:
    """A read model of a state file alone (no lock: a running service may hold it)."""
    async with read_state(path) as reader:
        yield ReadModel(reader, clock=clock, sinks=sinks)

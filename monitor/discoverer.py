"""Discovery from the API: each configured list (an install's appointments report, an
enrollment's sessions) is paged through at its interval, and the sessions it names are handed
to the composition root to be watched.

Discovery only ever adds: a session that drops out of a list keeps being watched (completed
sessions leave the appointments report while their review may still be pending). A walk that
fails part-way (the API down, a page that is not the envelope) hands on what it found so far
and says it was incomplete; the next walk starts again from the first page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog

from monitor import aio
from monitor.api import ApiClient, ApiError
from monitor.core.discovery import ListSource, PageError, parse_page, resolve_next
from monitor.core.watches import Watch

__all__ = ["Discoverer", "Walk"]

log = structlog.get_logger("spmon.discovery")

MAX_PAGES = 10_000
"""A walk stops here whatever the links say: 1,000,000 rows at 100 a page."""


@dataclass(frozen=True, slots=True)
class Walk:
    """What one walk through a list found."""

    source: str
    watches: tuple[Watch, ...]
    complete: bool
    pages: int
    skipped: int = 0


Found = Callable[[Walk], Awaitable[None]]


class Discoverer:
    """One root task for every list source; each walks at its own interval. A reload that
    changes `discovery:` hands the new lists to `reconfigure`: new ones start walking, gone
    ones stop (what they found stays watched), unchanged ones keep their timers."""

    def __init__(
        self,
        *,
        api: ApiClient,
        sources: Sequence[ListSource],
        on_walk: Found,
        clock: aio.Clock = aio.SYSTEM,
        leading: Callable[[], bool] = lambda: True,
    ) -> None:
        self.api, self.sources, self.on_walk, self.clock = api, list(sources), on_walk, clock
        self.leading = leading
        """Walk only while this is true: with replicas, only the leader walks the lists."""
        self._changed = asyncio.Event()

    def reconfigure(self, sources: Sequence[ListSource]) -> None:
        if list(sources) != self.sources:
            self.sources = list(sources)
            self._changed.set()

    async def run(self, stop: asyncio.Event) -> None:
        walking: dict[ListSource, asyncio.Task[None]] = {}
        try:
            while not stop.is_set():
                self._changed.clear()
                for source in [s for s in walking if s not in self.sources]:
                    walking.pop(source).cancel()
                    log.info("discovery.stopped", source=source.name)
                for source in self.sources:
                    if source not in walking:
                        walking[source] = asyncio.create_task(
                            self._every(source, stop), name=f"discovery-{source.name}"
                        )
                await aio.first_of(stop, self._changed)
        finally:
            for task in walking.values():
                task.cancel()
            await asyncio.gather(*walking.values(), return_exceptions=True)

    async def _every(self, source: ListSource, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if self.leading():
                    await self.on_walk(await self.walk(source))
            except Exception:  # a bug in one walk must not end discovery
                log.exception("discovery.crashed", source=source.name)
            await self.clock.sleep(source.interval, stop)

    async def walk(self, source: ListSource) -> Walk:
        """Page through `source` from its first page, following `next` links."""
        base = self.api.options.base_url
        url: str | None = source.first_url(base)
        watches: dict[object, Watch] = {}
        pages = skipped = 0
        seen: set[str] = set()
        while url is not None:
            if url in seen or pages >= MAX_PAGES:
                return self._failed(source, watches, pages, skipped, "the next links loop")
            seen.add(url)
            try:
                page = parse_page(await self.api.get(url))
                found = source.found(page)
                following = resolve_next(page.next, request_url=url, base_url=base)
            except (ApiError, PageError) as exc:
                return self._failed(source, watches, pages, skipped, str(exc))
            pages += 1
            if found.skipped:
                skipped += found.skipped
                log.warning(
                    "discovery.rows_skipped",
                    source=source.name,
                    page=pages,
                    skipped=found.skipped,
                    first=found.first_skip,
                )
            for watch in found.watches:
                watches.setdefault(watch.key, watch)
            url = following if page.more else None
        log.info("discovery.walked", source=source.name, pages=pages, sessions=len(watches))
        return Walk(source.name, tuple(watches.values()), True, pages, skipped)

    def _failed(
        self, source: ListSource, watches: dict[object, Watch], pages: int, skipped: int, why: str
    ) -> Walk:
        log.warning(
            "discovery.incomplete", source=source.name, pages=pages, found=len(watches), error=why
        )
        return Walk(source.name, tuple(watches.values()), False, pages, skipped)

"""Group commit: many concurrent polls' records in one transaction, one fsync for all.

Each record stays atomic with its own outbox rows (same transaction), and a poll is only
acknowledged once the transaction holding it has committed. Unchanged polls only "touch" the
session's poll time, which is written lazily (every `touch_every` seconds, and at close): a
poll every minute costs one row update per five minutes, and losing it in a crash costs only
a slightly earlier first poll after restart. Pending touches are also written once
`touch_limit` of them wait: a poll time for each of 100,000 sessions is a 5 MB dict. The
limit is low because a session row holds its payload, so a touch rewrites the row: while
20,000 were written, a burst of unchanged polls (a restart's first round) added 30,000 more.

The service owns it (`async with Committer(store)`): entering starts its task, leaving writes
what is queued and the pending touches, then ends it. A committer whose task died fails every
later commit at once rather than leaving polls waiting forever.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Final

import structlog

from monitor.store.base import Fenced, PollRecord
from monitor.store.ports import SessionStore

__all__ = ["Committer"]

log = structlog.get_logger("spmon.store")
Item = tuple[PollRecord, asyncio.Future[None]]
_WRITE_TOUCHES: Final = "touches"
"""Queued when `touch_limit` touches wait: write them now, with whatever else is queued."""


class Committer:
    def __init__(
        self,
        store: SessionStore,
        *,
        batch: int = 512,
        linger: float = 0.02,
        touch_every: float = 300.0,
        touch_limit: int = 5_000,
    ) -> None:
        self._store = store
        self._batch = batch
        self._linger = linger
        self._touch_every = touch_every
        self._touch_limit = touch_limit
        self._queue: asyncio.Queue[Item | str | None] = asyncio.Queue()
        self._touches: dict[str, float] = {}
        self._touches_asked = False
        self._task: asyncio.Task[None] | None = None
        self.commits = 0
        """Batches written so far: the read model rebuilds its cached views when this moves."""

    async def __aenter__(self) -> Committer:
        self._task = asyncio.create_task(self._run(), name="committer")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        if not task.done():
            self._queue.put_nowait(None)
        await task

    async def watch(self, stop: asyncio.Event) -> None:
        """Return when `stop` is set; end (or raise) sooner if the committer's task ends. A root
        task runs this, so a committer that dies stops the service instead of holding polls."""
        task = self._task
        if task is None:
            return
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if task.done() and not task.cancelled() and (error := task.exception()) is not None:
            raise error

    @property
    def backlog(self) -> int:
        """Records waiting for their transaction: bounded by the caller to bound memory."""
        return self._queue.qsize()

    async def commit(self, record: PollRecord) -> None:
        """Return once `record` is durable; raise what the store raised if it could not be,
        or `Fenced` if this replica no longer holds the session's shard (nothing written)."""
        if self._task is None or self._task.done():
            # Callers trust the committer to log what failed; say it here too.
            log.error("store.commit_failed", polls=1, error="the committer is not running")
            raise RuntimeError("the committer is not running")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((record, future))
        await future

    def touch(self, session_sid: str, polled_at: float) -> None:
        self._touches[session_sid] = polled_at
        if len(self._touches) >= self._touch_limit and not self._touches_asked:
            self._touches_asked = True
            self._queue.put_nowait(_WRITE_TOUCHES)

    async def _run(self) -> None:
        try:
            await self._batches()
        finally:
            self._fail_queued(RuntimeError("the committer stopped"))

    def _fail_queued(self, exc: Exception) -> None:
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, tuple) and not item[1].done():
                item[1].set_exception(exc)

    async def _batches(self) -> None:
        """Until closed: batch what is queued, waiting `linger` to let a batch fill up (one
        commit per poll would cost more CPU than the poll's HTTP request)."""
        while True:
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout=self._touch_every)
            except TimeoutError:
                await self._flush([])
                continue
            if item is None:
                await self._flush([])
                return
            if isinstance(item, str):  # _WRITE_TOUCHES
                await self._flush([])
                continue
            items = [item]
            closing = self._drain(items)
            if not closing and len(items) < self._batch:
                await asyncio.sleep(self._linger)
                closing = self._drain(items)
            await self._flush(items)
            if closing:
                return

    def _drain(self, items: list[Item]) -> bool:
        while len(items) < self._batch and not self._queue.empty():
            nxt = self._queue.get_nowait()
            if nxt is None:
                return True
            if isinstance(nxt, tuple):  # else _WRITE_TOUCHES: this flush writes them
                items.append(nxt)
        return False

    async def _flush(self, items: list[Item]) -> None:
        # Handed over whole (the store's thread reads it), not copied: a copy of the poll
        # times, beside the dict filling up again while they are written, was the peak of a
        # burst of unchanged polls.
        touched, self._touches = self._touches, {}
        self._touches_asked = False
        if not items and not touched:
            return
        try:
            fenced = await self._store.commit([record for record, _ in items], touched=touched)
        except Exception as exc:
            log.error("store.commit_failed", polls=len(items), error=str(exc))
            for _, future in items:
                if not future.done():
                    future.set_exception(exc)
            return
        self.commits += 1
        if fenced:
            log.warning("store.commit_fenced", polls=len(fenced))
        for record, future in items:
            if future.done():
                continue
            if record.key.session_sid in fenced:
                future.set_exception(Fenced(record.key.session_sid))
            else:
                future.set_result(None)

"""A tiny asyncio kit: the clock every loop reads and sleeps on, and root tasks that log how
they ended.

Each loop takes one `Clock` from its constructor: `now()` gives instants (epoch seconds, as the
store keeps them), `sleep` and `call_at` wait. The real one is `SYSTEM`, the only reader of the
wall clock outside the composition root, the CLI and the simulator; tests hand the loops a fake
one whose time moves when they say, so timing tests run at once and exactly.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import structlog

__all__ = [
    "SYSTEM",
    "Alarm",
    "Clock",
    "SystemClock",
    "TaskEnded",
    "Timer",
    "first_of",
    "guarded",
    "sleep",
]

log = structlog.get_logger("spmon.aio")


async def sleep(delay: float, stop: asyncio.Event) -> bool:
    """Sleep up to `delay` seconds; return True at once if `stop` is (or becomes) set."""
    if stop.is_set():
        return True
    if delay <= 0:
        await asyncio.sleep(0)
        return stop.is_set()
    try:
        async with asyncio.timeout(delay):
            await stop.wait()
    except TimeoutError:
        return False
    return True


async def first_of(*events: asyncio.Event) -> None:
    """Until any of `events` is set."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


class TaskEnded(RuntimeError):
    """A root task returned while the service was meant to be running."""


async def guarded(
    name: str, coro: Coroutine[Any, Any, None], *, stop: asyncio.Event | None = None
) -> None:
    """Run a root task: a crash is logged at once with the task's name and re-raised, so the
    TaskGroup stops everything. A task that returns before `stop` is set is a failure too: a
    service whose poller stopped must not keep answering /healthz as if it watched."""
    try:
        await coro
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("task.crashed", task=name)
        raise
    if stop is not None and not stop.is_set():
        log.error("task.exited", task=name)
        raise TaskEnded(f"the {name} task ended while the service was running")


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float:
        """The current instant, in epoch seconds."""
        ...

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        """Call `callback` once `now()` reaches `when`."""
        ...

    async def sleep(self, delay: float, stop: asyncio.Event | None = None) -> bool:
        """Sleep up to `delay` seconds; True at once if `stop` is (or becomes) set."""
        ...


class SystemClock:
    """The wall clock for instants; the event loop's monotonic clock runs the timers, so a step
    of the wall clock neither stretches nor cuts a sleep."""

    def now(self) -> float:
        return time.time()

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        delay = max(0.0, when - time.time())
        return asyncio.get_running_loop().call_later(delay, callback)

    async def sleep(self, delay: float, stop: asyncio.Event | None = None) -> bool:
        if stop is None:
            await asyncio.sleep(max(0.0, delay))
            return False
        return await sleep(delay, stop)


SYSTEM = SystemClock()


class Alarm:
    """One loop's wake-up between due times: `wait(until)` returns at `until` or as soon as
    `ring()` is called (from before or during the wait), whichever is first.

    A loop that wakes once per poll pays for one timer handle per wake-up, not for a timeout
    scope and the cancellation it throws (that was a sixth of spmon's CPU in steady state).
    The timer is re-armed only when `until` moves earlier; an earlier one left armed just
    wakes the loop once more to look again.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._rung = False
        self._waiter: asyncio.Future[None] | None = None
        self._timer: Timer | None = None
        self._at = math.inf

    def ring(self) -> None:
        self._rung = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self, until: float) -> None:
        if not self._rung:
            if until < self._at:
                if self._timer is not None:
                    self._timer.cancel()
                self._at = until
                self._timer = self.clock.call_at(until, self._fire)
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self._rung = False

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._at = None, math.inf

    def _fire(self) -> None:
        self._timer, self._at = None, math.inf
        self.ring()

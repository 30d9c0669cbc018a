"""A fake `aio.Clock` for timing tests: time moves only when the test (or a sleep) moves it.

`advance(seconds)` moves time and fires every timer due by then, in order, so loops sleeping on
this clock wake exactly at their due times. With `autojump=True` a sleep moves time itself, to
the instant it ends: a loop waiting out a pause or a backoff returns at once, and what it
measured with `now()` is exact.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["SIM_START", "T0", "FakeClock", "HandClock"]

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SIM_START = 1_795_000_000.0
"""2026-11-18: a fixed instant, so simulator runs on a HandClock repeat exactly."""


class HandClock:
    """The simulator's clock (a callable), moved by hand: `clock.now += 30`."""

    def __init__(self, now: float = SIM_START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(order=True)
class _Timer:
    when: float
    seq: int
    callback: Callable[[], object] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    def __init__(self, start: datetime | float = T0, *, autojump: bool = False) -> None:
        self.t = start.timestamp() if isinstance(start, datetime) else float(start)
        self.autojump = autojump
        self.slept: list[float] = []
        """Every sleep asked of this clock, in order (what a loop waited for, exactly)."""
        self._timers: list[_Timer] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self.t

    def call_at(self, when: float, callback: Callable[[], object]) -> _Timer:
        timer = _Timer(when, next(self._seq), callback)
        heapq.heappush(self._timers, timer)
        return timer

    async def sleep(self, delay: float, stop: asyncio.Event | None = None) -> bool:
        self.slept.append(delay)
        if stop is not None and stop.is_set():
            return True
        if delay <= 0:
            await asyncio.sleep(0)
            return stop is not None and stop.is_set()
        woke = asyncio.Event()
        timer = self.call_at(self.t + delay, woke.set)
        if self.autojump:
            self.set(timer.when)
        waits = [asyncio.ensure_future(woke.wait())]
        if stop is not None:
            waits.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            for wait in waits:
                wait.cancel()
        return stop is not None and stop.is_set()

    def advance(self, seconds: float) -> None:
        self.set(self.t + seconds)

    def set(self, t: float) -> None:
        """Move time to `t`, firing each timer due by then at its own instant."""
        while self._timers and self._timers[0].when <= t:
            timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                self.t = max(self.t, timer.when)
                timer.callback()
        self.t = max(self.t, t)

    @property
    def next_timer(self) -> float | None:
        live = [timer.when for timer in self._timers if not timer.cancelled]
        return min(live, default=None)

"""The clock kit: the poller's alarm and the real clock's sleeps, on a fake clock where exact."""

from __future__ import annotations

import asyncio

from monitor import aio
from tests.clockkit import FakeClock


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_the_alarm_wakes_at_its_time_and_not_before() -> None:
    clock = FakeClock()
    alarm = aio.Alarm(clock)
    waiting = asyncio.create_task(alarm.wait(clock.now() + 5.0))
    await _settle()
    clock.advance(4.999)
    await _settle()
    assert not waiting.done()
    clock.advance(0.001)
    await _settle()
    assert waiting.done()


async def test_a_ring_wakes_the_alarm_at_once_even_one_rung_before_the_wait() -> None:
    clock = FakeClock()
    alarm = aio.Alarm(clock)
    waiting = asyncio.create_task(alarm.wait(clock.now() + 60.0))
    await _settle()
    alarm.ring()
    await _settle()
    assert waiting.done()
    alarm.ring()  # e.g. stop set while the loop was busy
    await asyncio.wait_for(alarm.wait(clock.now() + 60.0), timeout=1.0)
    alarm.cancel()
    assert clock.next_timer is None


async def test_the_alarm_re_arms_only_when_its_time_moves_earlier() -> None:
    clock = FakeClock()
    alarm = aio.Alarm(clock)
    start = clock.now()
    first = asyncio.create_task(alarm.wait(start + 1.0))
    await _settle()
    alarm.ring()
    await first
    later = asyncio.create_task(alarm.wait(start + 3.0))  # the 1 s timer stays armed
    await _settle()
    assert clock.next_timer == start + 1.0
    clock.advance(1.0)  # it wakes the loop early, which looks again
    await later
    earlier = asyncio.create_task(alarm.wait(start + 1.5))
    await _settle()
    assert clock.next_timer == start + 1.5
    clock.advance(0.5)
    await earlier


async def test_the_real_clock_sleeps_until_stop() -> None:
    stop = asyncio.Event()
    assert await aio.SYSTEM.sleep(0.01, stop) is False
    assert await aio.SYSTEM.sleep(0, stop) is False
    assert await aio.SYSTEM.sleep(0.01) is False
    stop.set()
    assert await aio.SYSTEM.sleep(60.0, stop) is True


async def test_the_real_clock_calls_back_at_its_time() -> None:
    fired = asyncio.Event()
    aio.SYSTEM.call_at(aio.SYSTEM.now() + 0.01, fired.set)
    await asyncio.wait_for(fired.wait(), timeout=5.0)

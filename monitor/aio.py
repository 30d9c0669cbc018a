"""A tiny asyncio kit: sleeps that wake on stop, and root tasks that log how they ended."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

__all__ = ["TaskEnded", "guarded", "sleep"]

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

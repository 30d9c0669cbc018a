"""A real service (poller, dispatcher, HTTP server on 127.0.0.1) polling a real simulator,
with /api/v1 mounted: `await running(n=3, admin={...})` → (service, simulator, base URL)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitor import service
from monitor.settings import Settings
from tests.conftest import SimFactory, SimHandle, watches_of

ADMIN = "admin-token-0123456789abcdef"
"""The admin token the tests configure (long enough for admin.token's minimum)."""


@dataclass
class Running:
    svc: service.Service
    sim: SimHandle
    base: str
    """http://host:port/api/v1"""

    stop: Callable[[], Awaitable[None]]
    """Stop the service (SIGTERM's path); the fixture stops any still running."""

    def headers(self, token: str | None = ADMIN) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}


RunFactory = Callable[..., Awaitable[Running]]


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait on a condition the service makes true (no sleeps asserted on)."""
    async with asyncio.timeout(10):
        while not await check():
            await asyncio.sleep(0.02)


@pytest.fixture
async def running(simulator: SimFactory, state_path: Path) -> AsyncIterator[RunFactory]:
    stops: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def create(
        n: int = 3, *, watched: int | None = None, admin: dict[str, Any] | None = None, **kw: Any
    ) -> Running:
        sim = await simulator(n)
        keys = sim.keys[: n if watched is None else watched]
        settings = Settings(
            api={"base_url": sim.url, "rate_limit": 1000, "retries": 0, "timeout": 2},
            poll={"interval": 1},
            state={"path": state_path.with_name(f"spmon-{len(stops)}.db")},
            http={"listen": "127.0.0.1:0"},
            admin={"token": ADMIN} if admin is None else admin,
            watches=watches_of(keys, course="BIO101"),
            **kw,
        )
        stop = asyncio.Event()
        ready: asyncio.Future[service.Service] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(service.run(settings, stop=stop, on_ready=ready.set_result))
        stops.append((stop, task))
        svc = await asyncio.wait_for(ready, 10)

        async def halt() -> None:
            stop.set()
            await asyncio.wait_for(task, 20)

        return Running(svc, sim, f"http://{svc.address}/api/v1", halt)

    yield create
    for stop, task in stops:
        stop.set()
        await asyncio.wait_for(task, 20)


async def call(
    method: str, url: str, *, headers: dict[str, str] | None = None, **kw: Any
) -> tuple[int, Any, Any]:
    """One request; the body parsed as JSON (every /api/v1 answer is JSON)."""
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, headers=headers, **kw) as r,
    ):
        text = await r.text()
        assert r.content_type == "application/json", text
        return r.status, r.headers, json.loads(text)

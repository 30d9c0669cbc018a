"""The simulator served with a request log: which session was asked for when, and the answer."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from monitor.simulator import Simulator

__all__ = ["Counted", "Hit", "counted"]


@dataclass(frozen=True, slots=True)
class Hit:
    at: float
    """time.monotonic() when the answer left the simulator."""
    sid: str
    status: int


@dataclass
class Counted:
    sim: Simulator
    url: str = ""
    hits: list[Hit] = field(default_factory=list)

    def sessions_asked(self) -> set[str]:
        return {hit.sid for hit in self.hits}

    def first_ok_after(self, since: float) -> dict[str, float]:
        """Each session's first 200 at or after `since`."""
        first: dict[str, float] = {}
        for hit in self.hits:
            if hit.at >= since and hit.status == 200:
                first.setdefault(hit.sid, hit.at)
        return first

    def between(self, start: float, end: float) -> int:
        return sum(1 for hit in self.hits if start <= hit.at < end)

    async def wait_all_ok_after(self, since: float, within: float) -> dict[str, float]:
        everyone = {key.session_sid for key in self.sim.keys}
        async with asyncio.timeout(within):
            while (first := self.first_ok_after(since)).keys() < everyone:
                await asyncio.sleep(0.02)
        return first


@contextlib.asynccontextmanager
async def counted(sim: Simulator, *, every: bool = False) -> AsyncIterator[Counted]:
    """Serve `sim` on 127.0.0.1 with every session GET logged; with `every`, every request
    whatever its route (list pages, tokens; `sid` empty): the whole load on the API."""
    log = Counted(sim)

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        sid = request.match_info.get("sessionSid")
        if every or (request.method == "GET" and sid):
            log.hits.append(Hit(time.monotonic(), sid or "", response.status))
        return response

    app = sim.app()
    app.middlewares.append(record)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        log.url = f"http://{host}:{port}"
        yield log
    finally:
        await runner.cleanup()

"""A watch list served on 127.0.0.1 by a real aiohttp server: ETag, Last-Modified, auth, faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

INSTALL, EXAM = "AI" + "a" * 32, "EX" + "b" * 32
MODIFIED = "Wed, 01 Oct 2025 07:00:00 GMT"


def csv_of(*numbers: int, header: str = "install_sid,exam_sid,session_sid") -> str:
    rows = [f"{INSTALL},{EXAM},ES{n:032x}" for n in numbers]
    return "\n".join([header, *rows]) + "\n"


@dataclass
class WatchServer:
    body: str = ""
    version: int = 1
    token: str | None = None
    status: int | None = None
    """Answer this instead of the list (a failing server)."""
    requests: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    def publish(self, body: str) -> None:
        self.body, self.version = body, self.version + 1

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(dict(request.headers))
        if self.status is not None:
            return web.Response(status=self.status)
        if self.token is not None and request.headers.get("Authorization") != self.token:
            return web.Response(status=401)
        if request.path == "/moved":
            raise web.HTTPFound("/watches.csv")
        etag = f'"v{self.version}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        headers = {"ETag": etag, "Last-Modified": MODIFIED}
        return web.Response(text=self.body, content_type="text/csv", headers=headers)


@asynccontextmanager
async def serve_watches(server: WatchServer) -> AsyncIterator[WatchServer]:
    app = web.Application()
    app.router.add_get("/{name}", server.handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}/watches.csv"
    try:
        yield server
    finally:
        await runner.cleanup()

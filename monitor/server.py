"""The HTTP face: /metrics for Prometheus, /healthz and /readyz for the orchestrator.

Neither probe looks at the SmarterProctoring API or a sink: an upstream outage must show in
metrics and alerts, never take the pod out of scraping or get it restarted.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

__all__ = ["PROBES", "Probes", "make_app", "serve"]

Check = tuple[bool, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Probes:
    live: Callable[[], Check]
    """Our own loops are making progress."""
    ready: Callable[[], Awaitable[Check]]
    """The store answers and every watched session had its first poll attempted."""


PROBES = web.AppKey("probes", Probes)


async def _healthz(request: web.Request) -> web.Response:
    ok, detail = request.app[PROBES].live()
    return web.json_response({"ok": ok, **detail}, status=200 if ok else 503)


async def _readyz(request: web.Request) -> web.Response:
    ok, detail = await request.app[PROBES].ready()
    return web.json_response({"ok": ok, **detail}, status=200 if ok else 503)


def make_app(registry: CollectorRegistry, probes: Probes) -> web.Application:
    app = web.Application()
    app[PROBES] = probes
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    return app


@contextlib.asynccontextmanager
async def serve(app: web.Application, host: str, port: int) -> AsyncIterator[str]:
    """Run `app` on host:port for the duration of the block; yields the bound address."""
    # handle_signals=False: signals belong to the service; a short shutdown_timeout because a
    # scrape is never worth holding up a pod's 30 s grace period.
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        bound = runner.addresses[0] if runner.addresses else (host, port)
        yield f"{bound[0]}:{bound[1]}"
    finally:
        await runner.cleanup()

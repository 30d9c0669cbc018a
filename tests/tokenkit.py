"""A real server in front of the simulator's token endpoint that a test can take down.

The simulator's faults never touch `/oidc/token`, so "the token endpoint is down while the API
is up" needs a second server: this one forwards each token request as it came, or answers 503.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web

__all__ = ["TokenGate", "token_gate"]


@dataclass
class TokenGate:
    upstream: str
    url: str = ""
    up: bool = True
    requests: int = 0
    refused: int = 0
    """Requests answered 503 while down."""


@contextlib.asynccontextmanager
async def token_gate(simulator_url: str) -> AsyncIterator[TokenGate]:
    gate = TokenGate(simulator_url + "/oidc/token")
    async with aiohttp.ClientSession() as http:

        async def handle(request: web.Request) -> web.Response:
            gate.requests += 1
            if not gate.up:
                gate.refused += 1
                return web.json_response({"error": "temporarily_unavailable"}, status=503)
            forwarded = {
                k: v for k, v in request.headers.items() if k in ("Authorization", "Content-Type")
            }
            async with http.post(gate.upstream, data=await request.read(), headers=forwarded) as up:
                body = await up.read()
                return web.Response(body=body, status=up.status, content_type="application/json")

        app = web.Application()
        app.router.add_post("/oidc/token", handle)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            host, port = runner.addresses[0][:2]
            gate.url = f"http://{host}:{port}/oidc/token"
            yield gate
        finally:
            await runner.cleanup()

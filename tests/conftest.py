"""Factory fixtures: real loopback servers, real SQLite files, clean-up guaranteed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, settings

from monitor.core.keys import SessionKey
from monitor.simulator import Faults, Simulator, make_keys, serve
from tests.sinks.sinkkit import Receiver as ScriptedReceiver
from tests.sinks.sinkkit import Respond

# These machines are shared and noisy: a property test is judged by what it finds, never by
# how fast an example ran or was generated (speed is measured in bench/).
settings.register_profile(
    "spmon", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("spmon")


@pytest.fixture(autouse=True)
async def _no_leftover_tasks() -> AsyncIterator[None]:
    """Fail any test that leaves asyncio tasks running behind it (kopf's check)."""
    before = asyncio.all_tasks()
    yield
    # Servers' handler tasks may need a moment to see their connection closed.
    for _ in range(40):
        left = [
            t
            for t in asyncio.all_tasks() - before
            if not t.done() and t is not asyncio.current_task()
        ]
        if not left:
            break
        await asyncio.sleep(0.05)
    assert not left, f"tasks left running: {[t.get_name() for t in left]}"


@dataclass
class SimHandle:
    sim: Simulator
    url: str

    @property
    def keys(self) -> list[SessionKey]:
        return self.sim.keys


SimFactory = Callable[..., Awaitable[SimHandle]]


@pytest.fixture
async def simulator() -> AsyncIterator[SimFactory]:
    """`await simulator(n=3, evolve=False, faults=Faults(...))` → a served Simulator."""
    async with AsyncExitStack() as stack:

        async def create(
            n: int = 3, *, evolve: bool = False, faults: Faults | None = None, **kw: Any
        ) -> SimHandle:
            sim = Simulator(
                make_keys(n, seed=kw.pop("seed", 1)), evolve=evolve, faults=faults or Faults(), **kw
            )
            url = await stack.enter_async_context(serve(sim))
            return SimHandle(sim, url)

        yield create


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 recording every request; `statuses` scripts answers."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def bodies(self) -> list[dict[str, Any]]:
        return [r["json"] for r in self.requests if r["status"] < 300]

    def delivered_ids(self) -> list[str]:
        return [r["headers"]["webhook-id"] for r in self.requests if r["status"] < 300]

    async def wait_for(self, count: int, within: float = 20.0) -> None:
        async with asyncio.timeout(within):
            while len(self.bodies()) < count:
                self.arrived.clear()
                await self.arrived.wait()

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        status = self.statuses.pop(0) if self.statuses else 200
        self.requests.append(
            {
                "headers": dict(request.headers),
                "raw": raw,
                "json": json.loads(raw),
                "status": status,
            }
        )
        self.arrived.set()
        return web.Response(status=status, text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    async with AsyncExitStack() as stack:

        async def create(*, port: int = 0, statuses: list[int] | None = None) -> Receiver:
            rec = Receiver(statuses=list(statuses or []))
            app = web.Application()
            app.router.add_post("/hook", rec.handle)
            runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            await web.TCPSite(runner, "127.0.0.1", port).start()
            host, bound = runner.addresses[0][:2]
            rec.url = f"http://{host}:{bound}/hook"
            return rec

        yield create


@pytest.fixture
async def endpoint() -> AsyncIterator[Callable[..., Awaitable[ScriptedReceiver]]]:
    """`await endpoint(respond)` → a started scripted receiver; all are stopped at teardown."""
    made: list[ScriptedReceiver] = []

    async def create(respond: Respond | None = None) -> ScriptedReceiver:
        server = ScriptedReceiver(respond) if respond is not None else ScriptedReceiver()
        made.append(server)
        await server.start()
        return server

    yield create
    for server in made:
        await server.stop()


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "spmon.db"


def watches_of(keys: list[SessionKey], **labels: str) -> list[dict[str, Any]]:
    return [
        {
            "install_sid": k.install_sid,
            "exam_sid": k.exam_sid,
            "session_sid": k.session_sid,
            "labels": dict(labels),
        }
        for k in keys
    ]

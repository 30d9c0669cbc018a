"""The one receiver kit: real HTTP endpoints on 127.0.0.1 for every test that needs something
to answer spmon (webhooks, Slack, Alertmanager, a misbehaving API), plus small builders of
events and dispatcher runs.

Nothing here imitates spmon's own code: receivers are plain aiohttp servers whose answer is a
function of the request (and of a phase the test switches), and they record every request.
Async tests start them through the `endpoint` fixture (tests/conftest.py); synchronous ones
(the deploy suite) through `in_thread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from monitor.core.events import Change, Event, EventType, Field, event_id
from monitor.core.keys import SessionKey
from monitor.core.snapshot import Snapshot
from monitor.dispatcher import Dispatcher
from monitor.metrics import Metrics
from monitor.resender import Resender
from monitor.sinks import Sink
from monitor.store import SqliteStore

__all__ = [
    "RELEASED",
    "SECRET",
    "SECRET_OLD",
    "Hit",
    "Receiver",
    "Respond",
    "bound_socket",
    "in_thread",
    "make_event",
    "make_key",
    "running",
    "scripted",
    "verifier",
]

# Throwaway test secrets (32 random bytes each, base64), never used anywhere real.
SECRET = "whsec_E5B7N8fWLN2cR4KbRXmGwdfUeRmQhjJXtLvkf078Xt0="
SECRET_OLD = "whsec_0ZW776SiKb67EW8DNJDDZs06TKmw0pEIotPmxt9ms48="


@dataclass(frozen=True)
class Hit:
    at: float
    """time.monotonic() when the request arrived."""
    path: str
    headers: Mapping[str, str]
    body: bytes
    request: web.Request = field(repr=False, compare=False)

    async def hang(self) -> web.StreamResponse:
        """Never answer (until the receiver stops): a receiver that accepted and went silent."""
        await self.request.app[RELEASED].wait()
        return web.Response(status=504)

    def json(self) -> object:
        return json.loads(self.body)


Respond = Callable[[Hit], Awaitable[web.StreamResponse]]
RELEASED = web.AppKey("released", asyncio.Event)


async def _ok(_hit: Hit) -> web.StreamResponse:
    return web.Response(status=204)


@dataclass(eq=False)
class Receiver:
    """An HTTP endpoint on loopback: `respond` decides each answer; `hits` keeps every request
    that reached the handler (before it answered, so a hanging answer is still recorded)."""

    respond: Respond = _ok
    hits: list[Hit] = field(default_factory=list)
    url: str = ""
    released: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at stop: handlers that hang (`Hit.hang`) end then."""
    _runner: web.AppRunner | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self, sock: socket.socket | None = None, *, port: int = 0) -> str:
        app = web.Application()
        app[RELEASED] = self.released
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=0.2
        )
        await self._runner.setup()
        if sock is not None:
            sock.listen(128)
            site: web.BaseSite = web.SockSite(self._runner, sock)
        else:
            site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        self.released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        hit = Hit(
            time.monotonic(), request.path_qs, dict(request.headers), await request.read(), request
        )
        self.hits.append(hit)
        self._changed.set()
        return await self.respond(hit)

    async def until(
        self, predicate: Callable[[Receiver], bool], *, within: float = 30.0, what: str = ""
    ) -> None:
        """Wait until `predicate(self)` holds, re-checking on every request (no fixed sleeps)."""
        try:
            async with asyncio.timeout(within):
                while not predicate(self):
                    self._changed.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.25):
                            await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"receiver: gave up waiting for {what or predicate}") from None

    def ids(self) -> list[str]:
        return [hit.headers.get("webhook-id", "") for hit in self.hits]

    def bodies(self) -> list[Any]:
        return [hit.json() for hit in self.hits]


def scripted(*statuses: int, headers: dict[str, str] | None = None) -> Respond:
    """Answer the n-th request with statuses[n]; 204 once the script runs out."""
    script = list(statuses)

    async def respond(_hit: Hit) -> web.StreamResponse:
        status = script.pop(0) if script else 204
        return web.Response(status=status, headers=headers if status == 429 else None)

    return respond


@contextlib.contextmanager
def in_thread(receiver: Receiver) -> Iterator[Receiver]:
    """Serve `receiver` from its own event loop in a thread, for synchronous tests."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="receiver", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(receiver.start(), loop).result(timeout=10)
        yield receiver
    finally:
        asyncio.run_coroutine_threadsafe(receiver.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def verifier(
    secret: str = SECRET, *, then: Respond = _ok, rejected: list[str] | None = None
) -> Respond:
    """A Standard Webhooks receiver: every request is checked with the reference library
    (`standardwebhooks`) before `then` answers; a failure answers 400 and is noted."""
    hook = Webhook(secret)

    async def respond(hit: Hit) -> web.StreamResponse:
        try:
            hook.verify(hit.body, dict(hit.headers))
        except (WebhookVerificationError, ValueError) as exc:
            if rejected is not None:
                rejected.append(str(exc))
            return web.Response(status=400, text="bad signature")
        return await then(hit)

    return respond


def bound_socket() -> socket.socket:
    """A bound loopback socket that is not listening yet: connecting to it is refused until
    the test starts a server on it (no race for the port in between)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def make_key(n: int) -> SessionKey:
    return SessionKey(f"AI{n:032x}", f"EX{n:032x}", f"ES{n:032x}")


def make_event(
    session: int,
    step: int,
    *,
    kind: EventType = EventType.STATUS_CHANGED,
    labels: Mapping[str, str] | None = None,
    at: datetime | None = None,
) -> Event:
    """A status change step-1 → step with a review due an hour before `at`'s default."""
    key = make_key(session)
    moment = at or datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
    deadline = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)
    url = f"https://proctoring.example.com/sessions/{key.session_sid}"
    return Event(
        id=event_id(key.session_sid, step, kind, deployment="sinkkit"),
        type=kind,
        observed_at=moment,
        key=key,
        labels=dict(labels or {"course": "BIO101"}),
        change=Change(Field.STATUS, f"step-{step - 1}", f"step-{step}"),
        snapshot=Snapshot(f"step-{step}", True, False, deadline, url),
    )


@contextlib.asynccontextmanager
async def running(
    path: Path,
    sinks: Sequence[Sink],
    *,
    events: Sequence[Event] = (),
    dispatcher_options: Mapping[str, object] | None = None,
) -> AsyncIterator[tuple[Dispatcher, SqliteStore]]:
    """A real store file and a running dispatcher over `sinks`; `events` are enqueued to every
    sink first. Exit stops the dispatcher, drains briefly and closes sinks and store."""
    async with SqliteStore(path) as store:
        if events:
            await store.enqueue([(e, [s.name for s in sinks]) for e in events], time.time())
        metrics = Metrics(CollectorRegistry(), sinks=[s.name for s in sinks])
        options: dict[str, Any] = {"settle": 0.5, **(dispatcher_options or {})}
        watched = options.pop("watched", None)
        dispatcher = Dispatcher(store=store, sinks=sinks, metrics=metrics, **options)
        resender = Resender(
            store=store, lanes=dispatcher.lanes, ready=dispatcher.restored,
            clock=dispatcher.clock, watched=watched,
        )  # fmt: skip
        stop = asyncio.Event()
        tasks = [asyncio.create_task(loop.run(stop)) for loop in (dispatcher, resender)]
        try:
            yield dispatcher, store
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            await dispatcher.drain(1.0)
            for sink in sinks:
                await sink.aclose()

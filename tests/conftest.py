"""Factory fixtures: real loopback servers, real SQLite files, clean-up guaranteed."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from hypothesis import HealthCheck, settings
from structlog.testing import capture_logs
from structlog.typing import EventDict

from monitor.core.keys import SessionKey
from monitor.simulator import Faults, Simulator, make_keys, serve
from tests.pgkit import postgres_database
from tests.sinks.sinkkit import Receiver, Respond

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


_LAZY_LOGGER = type(structlog.get_logger())


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """Leave structlog as an unconfigured process has it, whatever the test configured.

    `logs.configure` turns on `cache_logger_on_first_use`: a module's `log` proxy then keeps
    the processor list it first saw, for good. A logger cached while one test had the JSON
    chain configured (test_logs, an in-process CLI run) would never reach a later test's
    `capture_logs`; the cache is the proxy's own `bind` attribute, so dropping it is enough.
    """
    yield
    structlog.reset_defaults()
    for name, module in list(sys.modules.items()):
        if name == "monitor" or name.startswith("monitor."):
            for value in vars(module).values():
                if isinstance(value, _LAZY_LOGGER):
                    vars(value).pop("bind", None)


@pytest.fixture
def log_events() -> Iterator[list[EventDict]]:
    """The log events spmon emits during the test, as it emits them: with the context bound
    through contextvars (the dispatcher binds sink and event id so), before redaction and
    rendering, so a secret found here was handed to the logger."""
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as entries:
        yield entries


def named(entries: Iterable[EventDict], event: str) -> list[EventDict]:
    return [entry for entry in entries if entry["event"] == event]


def assert_no_secrets(entries: Iterable[EventDict], *secrets: str) -> None:
    text = repr(list(entries))
    leaked = [secret for secret in secrets if secret in text]
    assert not leaked, f"secrets in the log: {leaked}"


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


@pytest.fixture
async def endpoint() -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    """`await endpoint(respond, port=0)` → a started receiver (tests/sinks/sinkkit.py),
    answering 204 unless `respond` says otherwise. All are stopped at teardown."""
    made: list[Receiver] = []

    async def create(respond: Respond | None = None, *, port: int = 0) -> Receiver:
        server = Receiver(respond) if respond is not None else Receiver()
        made.append(server)
        await server.start(port=port)
        return server

    yield create
    for server in made:
        await server.stop()


@pytest.fixture
def postgres_url() -> Iterator[Any]:
    """A fresh PostgreSQL database (a SecretStr URL, as `state.url` holds it), dropped after
    the test; skipped where no server is reachable (tests/pgkit.py)."""
    yield from postgres_database()


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


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """One client session for a test's own requests to loopback servers."""
    async with aiohttp.ClientSession() as session:
        yield session

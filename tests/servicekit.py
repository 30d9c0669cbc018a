"""A running spmon over the simulator on loopback and a FakeClock, its HTTP server up: what
the read model's, the status page's and the API's tests look at. Its only sink takes review.*
events, so status changes route nowhere."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from monitor import service
from monitor.core.keys import SessionKey
from monitor.settings import Settings
from monitor.simulator import make_token
from tests.clockkit import T0, FakeClock
from tests.conftest import SimFactory, watches_of

__all__ = ["TOKEN", "ServiceFactory", "clock", "make_service", "simulator"]

TOKEN = make_token(exp=T0.timestamp() + 86400)
"""spmon's API token: a secret no log line may carry."""
ServiceFactory = Callable[..., Awaitable[service.Service]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def simulator(simulator: SimFactory) -> SimFactory:
    async def create(n: int = 3, **kw: object) -> Any:
        kw.setdefault("token", TOKEN)
        return await simulator(n, **kw)

    return create


@pytest.fixture
async def make_service(state_path: Path, clock: FakeClock) -> AsyncIterator[ServiceFactory]:
    """`await make_service(url, keys, labels={sid: {...}})`: serving on 127.0.0.1:<any>."""
    async with AsyncExitStack() as stack:

        async def create(
            url: str,
            keys: Sequence[SessionKey],
            *,
            labels: dict[str, dict[str, str]] | None = None,
            **extra: Any,
        ) -> service.Service:
            watches = watches_of(list(keys), course="BIO101")
            for watch in watches:
                watch["labels"].update((labels or {}).get(watch["session_sid"], {}))
            settings = Settings(
                api={"base_url": url, "token": TOKEN, "rate_limit": 1000, "retries": 0},
                poll={"interval": 60},
                rules={"overdue_repeat": "0s"},
                state={"path": state_path},
                http={"listen": "127.0.0.1:0", **extra.pop("http", {})},
                sinks=extra.pop(
                    "sinks", [{"name": "alerts", "type": "log", "events": ["review.*"]}]
                ),
                watches=watches,
                admin=extra.pop("admin", {"read": "open"}),
                **extra,
            )
            return await stack.enter_async_context(
                service.build(settings, serve_http=True, clock=clock)
            )

        yield create

"""A running spmon with its HTTP server up, over the simulator on loopback and a FakeClock:
the status page's tests (fast and in the browser) read it as a person would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor import service
from monitor.core.events import isoformat
from monitor.core.keys import SessionKey
from monitor.settings import Settings
from monitor.simulator import Simulator, make_token
from tests.clockkit import T0, FakeClock
from tests.conftest import SimFactory, watches_of

TOKEN = make_token(exp=T0.timestamp() + 86400)
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


def overdue_by(sim: Simulator, key: SessionKey, late: timedelta, now: datetime = T0) -> None:
    sim.set(key, status="Closed", reviewRequired=True, reviewed=False,
            reviewByDate=isoformat(now - late))  # fmt: skip


def calm(sim: Simulator, key: SessionKey) -> None:
    sim.set(key, status="Scheduled", reviewRequired=False, reviewed=False, reviewByDate=None)


def truth_overdue(sim: Simulator, now: datetime) -> list[str]:
    """The simulator's own answer: unreviewed required reviews past their deadline, most
    overdue first (the sids break ties, as the page's order does)."""
    late: list[tuple[float, str]] = []
    for key in sim.keys:
        body = sim.payload(key)
        deadline = body.get("reviewByDate")
        if body.get("reviewRequired") is True and body.get("reviewed") is not True and deadline:
            seconds = (now - datetime.fromisoformat(str(deadline))).total_seconds()
            if seconds > 0:
                late.append((-seconds, key.session_sid))
    return [sid for _, sid in sorted(late)]

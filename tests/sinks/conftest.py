"""Fixtures for the sink tests: loopback receivers made on demand and stopped afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sinkkit import Receiver, Respond


@pytest.fixture
async def endpoint() -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    """`await endpoint(respond)` → a started Receiver; all are stopped at teardown."""
    made: list[Receiver] = []

    async def create(respond: Respond | None = None) -> Receiver:
        server = Receiver(respond) if respond is not None else Receiver()
        made.append(server)
        await server.start()
        return server

    yield create
    for server in made:
        await server.stop()

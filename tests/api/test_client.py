"""The API client against the real simulator on loopback, faults included."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiohttp import web

from monitor import aio
from monitor.api import (
    ApiClient,
    AuthFailed,
    BadResponse,
    ClientOptions,
    NotFound,
    RateLimited,
    RequestRejected,
    ServerError,
    Unreachable,
)
from monitor.core.backoff import Backoff
from monitor.core.keys import SessionKey
from monitor.core.parse import ParseProblem, parse
from monitor.core.snapshot import Snapshot
from monitor.simulator import Faults
from tests.clockkit import FakeClock
from tests.sinks.sinkkit import Hit

FAST = Backoff(base=0.01, cap=0.02, retries=2)


def client(
    url: str,
    *,
    token: str | None = None,
    codes: list[str] | None = None,
    clock: aio.Clock = aio.SYSTEM,
    **kw: object,
) -> ApiClient:
    options = ClientOptions(base_url=url, token=token, rate_limit=1000, backoff=FAST, **kw)  # type: ignore[arg-type]
    return ApiClient(
        options,
        on_response=(codes.append if codes is not None else lambda _c: None),
        rng=random.Random(1),
        clock=clock,
    )


async def test_fetches_a_session_with_the_token_header(simulator) -> None:
    sim = await simulator(2, token="tok-123")
    codes: list[str] = []
    async with client(sim.url, token="tok-123", codes=codes) as api:
        body = await api.fetch(sim.keys[0])
    parsed = parse(body, sim.keys[0])
    assert isinstance(parsed, Snapshot)
    assert codes == ["200"]


async def test_missing_or_wrong_token_is_an_auth_failure(simulator) -> None:
    sim = await simulator(1, token="right")
    async with client(sim.url, token="wrong") as api:
        with pytest.raises(AuthFailed) as caught:
            await api.fetch(sim.keys[0])
    assert caught.value.status == 401
    assert "wrong" not in str(caught.value)


async def test_unknown_session_is_not_found(simulator) -> None:
    sim = await simulator(1)
    sim.sim.remove(sim.keys[0])
    async with client(sim.url) as api:
        with pytest.raises(NotFound):
            await api.fetch(sim.keys[0])


async def test_server_errors_are_retried_then_raised(simulator) -> None:
    sim = await simulator(1, faults=Faults(error_rate=1.0))
    codes: list[str] = []
    async with client(sim.url, codes=codes) as api:
        with pytest.raises(ServerError):
            await api.fetch(sim.keys[0])
    assert len(codes) == 3  # first attempt + 2 retries
    assert all(code.startswith("5") for code in codes)


async def test_a_transient_5xx_is_absorbed_by_a_retry(simulator) -> None:
    sim = await simulator(1)
    sim.sim.set_status_code(sim.keys[0], 503)
    codes: list[str] = []
    async with client(sim.url, codes=codes) as api:
        task = asyncio.create_task(api.fetch(sim.keys[0]))
        while not codes:
            await asyncio.sleep(0.001)
        sim.sim.set_status_code(sim.keys[0], None)
        body = await task
    assert codes[0] == "503" and codes[-1] == "200"
    assert isinstance(parse(body, sim.keys[0]), Snapshot)


async def test_429_pauses_every_request_not_only_the_one(simulator) -> None:
    sim = await simulator(2, faults=Faults(rate_limit_rate=1.0, retry_after=1))
    clock = FakeClock(autojump=True)  # the pause is judged and waited out by this one clock
    async with client(sim.url, clock=clock) as api:
        with pytest.raises(RateLimited) as caught:
            await api.fetch(sim.keys[0])
        assert caught.value.retry_after == 1.0
        sim.sim.faults = Faults()
        served_before = sim.sim.requests
        started = clock.now()
        await api.fetch(sim.keys[1])  # another session: held back by the same pause
        waited = clock.now() - started
    assert sim.sim.requests == served_before + 1
    assert waited >= 0.9  # the pause is Retry-After (1 s) plus jitter, never less


async def test_timeouts_are_unreachable_and_retried(simulator) -> None:
    sim = await simulator(1, faults=Faults(slow_rate=1.0, slow_seconds=1.0))
    codes: list[str] = []
    async with client(sim.url, codes=codes, timeout=0.2) as api:
        with pytest.raises(Unreachable):
            await api.fetch(sim.keys[0])
    assert codes == ["timeout"] * 3


async def test_connection_refused_is_unreachable(unused_tcp_port: int) -> None:
    key = SessionKey("AI" + "0" * 32, "EX" + "0" * 32, "ES" + "0" * 32)
    async with client(f"http://127.0.0.1:{unused_tcp_port}") as api:
        with pytest.raises(Unreachable) as caught:
            await api.fetch(key)
    assert "127.0.0.1" not in str(caught.value) or "connection failed" in str(caught.value)


async def test_malformed_bodies_come_back_as_bytes_and_fail_parsing(simulator) -> None:
    sim = await simulator(1, faults=Faults(malformed_rate=1.0))
    async with client(sim.url) as api:
        problems = [parse(await api.fetch(sim.keys[0]), sim.keys[0]) for _ in range(6)]
    assert all(isinstance(p, ParseProblem) for p in problems)


async def test_oversized_bodies_are_not_read(endpoint) -> None:
    async def chunked(hit: Hit) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(hit.request)
        for _ in range(40):
            await resp.write(b"x" * 65536)
        return resp

    server = await endpoint(chunked)
    key = SessionKey("AI" + "0" * 32, "EX" + "0" * 32, "ES" + "0" * 32)
    async with client(server.url) as api:
        with pytest.raises(BadResponse):
            await api.fetch(key)


async def test_other_4xx_is_rejected_without_retry(simulator) -> None:
    sim = await simulator(1)
    sim.sim.set_status_code(sim.keys[0], 400)
    codes: list[str] = []
    async with client(sim.url, codes=codes) as api:
        with pytest.raises(RequestRejected):
            await api.fetch(sim.keys[0])
    assert codes == ["400"]


async def test_a_smaller_share_holds_the_requests_queued_before_it(simulator) -> None:
    """Requests queued on the old limiter when the share shrinks wait for the new one: the old
    one (2/s here) releasing them straight to the API would spend both budgets at once."""
    sim = await simulator(1)
    codes: list[str] = []
    async with client(sim.url, codes=codes) as api:
        api.set_share(0.002)  # 2/s of the 1000: a bucket of 2, then one each half second
        queued = [asyncio.create_task(api.fetch(sim.keys[0])) for _ in range(10)]
        while len(codes) < 2:  # the bucket's two went out; eight wait on the 2/s limiter
            await asyncio.sleep(0.01)
        api.set_share(0.0)  # the 0.2/s floor: one now, then one every 5 s
        before = len(codes)
        await asyncio.sleep(1.6)  # the old limiter alone would have let three more through
        answered = len(codes) - before
        for task in queued:
            task.cancel()
        await asyncio.gather(*queued, return_exceptions=True)
    assert answered <= 1  # the new bucket's one; an upper bound, whatever the machine's pace

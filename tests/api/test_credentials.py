"""OAuth client credentials against the simulator's real token endpoint, on a fake clock: the
first token before any request, the next one before expiry, retries while the endpoint is down,
a new token at once when the API refuses one, and nothing secret in any log line."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from monitor.api import (
    ApiClient,
    AuthFailed,
    ClientOptions,
    Header,
    OAuthOptions,
    OAuthToken,
    StaticToken,
)
from monitor.core.backoff import Backoff
from monitor.core.grant import Grant
from tests.clockkit import FakeClock
from tests.conftest import SimFactory
from tests.sinks.sinkkit import Hit
from tests.tokenkit import token_gate

START = 1_795_000_000.0
CLIENT = "II" + "9d" * 16
SECRET = "s3cret-for-tests-only"
CLIENTS = {CLIENT: SECRET}


def oauth(
    token_url: str,
    clock: FakeClock,
    *,
    secret: str = SECRET,
    header: Header = Header.TOKEN,
    grants: list[Grant] | None = None,
    client: Callable[[], tuple[str, str] | None] | None = None,
    **options: Any,
) -> OAuthToken:
    chosen = client or (lambda: (CLIENT, secret))
    return OAuthToken(
        OAuthOptions(token_url=token_url, client=chosen, header=header, timeout=5, **options),
        on_token=(grants.append if grants is not None else lambda _g: None),
        clock=clock,
        rng=random.Random(2),
    )


def api_client(url: str, credentials: OAuthToken | None = None) -> ApiClient:
    options = ClientOptions(base_url=url, token=None, rate_limit=1000, backoff=Backoff(retries=0))
    codes: list[str] = []  # the client reports every answer's code; these tests read none
    return ApiClient(options, credentials=credentials, on_response=codes.append)


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.005)


async def next_timer(clock: FakeClock) -> float:
    """Wait until the renewal task sleeps again (its request, if any, is over), then wake it."""
    await until(lambda: clock.next_timer is not None)
    when = clock.next_timer
    assert when is not None
    clock.set(when)
    return when


async def test_a_token_before_the_first_request_and_the_next_before_expiry(
    simulator: SimFactory,
) -> None:
    clock = FakeClock(START)
    sim = await simulator(2, clients=CLIENTS, token_lifetime=60, clock=clock.now)
    grants: list[Grant] = []
    async with oauth(sim.url + "/oidc/token", clock, grants=grants) as creds:
        assert creds.issued == 1 and sim.sim.auth.issued == 1
        first = creds.token
        assert first is not None and creds.headers == {"token": first}
        assert grants == [Grant(first, START, START + 60)]
        async with api_client(sim.url, creds) as api:
            await api.fetch(sim.keys[0])
            assert await next_timer(clock) == START + 30  # half the lifetime: below 10 min
            await until(lambda: creds.issued == 2)
            assert creds.token != first and grants[-1].expires_at == START + 90
            clock.set(START + 60)  # the first token expires; the second carries on
            await api.fetch(sim.keys[1])
            await until(lambda: creds.issued == 3)  # and is renewed in turn, half-way
    assert sim.sim.auth.issued == 3


async def test_renew_before_sets_the_lead_when_it_is_the_smaller(simulator: SimFactory) -> None:
    clock = FakeClock(START)
    sim = await simulator(1, clients=CLIENTS, token_lifetime=3600, clock=clock.now)
    async with oauth(sim.url + "/oidc/token", clock, renew_before=600) as creds:
        assert await next_timer(clock) == START + 3000
        await until(lambda: creds.issued == 2)


async def test_bearer_credentials_reach_an_api_that_takes_only_bearer(
    simulator: SimFactory,
) -> None:
    clock = FakeClock(START)
    sim = await simulator(1, clients=CLIENTS, accept="bearer", clock=clock.now)
    async with oauth(sim.url + "/oidc/token", clock, header=Header.BEARER) as creds:
        assert creds.headers == {"Authorization": f"Bearer {creds.token}"}
        async with api_client(sim.url, creds) as api:
            await api.fetch(sim.keys[0])


async def test_a_refused_token_is_replaced_at_once_and_once_per_token(
    simulator: SimFactory,
) -> None:
    clock = FakeClock(START)
    # The API takes only bearer tokens, and spmon sends `token`: every request is refused.
    sim = await simulator(3, clients=CLIENTS, accept="bearer", clock=clock.now)
    async with oauth(sim.url + "/oidc/token", clock) as creds:
        refused = creds.token
        async with api_client(sim.url, creds) as api:
            with capture_logs() as logs:
                results = await asyncio.gather(
                    *(api.fetch(key) for key in sim.keys), return_exceptions=True
                )
                assert all(isinstance(r, AuthFailed) for r in results)
                await until(lambda: creds.issued == 2)  # no clock moved: at once
                assert creds.token != refused
                creds.rejected(refused)  # a token already replaced needs nothing
                await asyncio.sleep(0.05)
    assert sim.sim.auth.issued == 2
    rejected = [e for e in logs if e["event"] == "api.token_rejected"]
    assert len(rejected) == 1 and rejected[0]["log_level"] == "warning"


async def test_the_endpoint_down_while_the_token_is_valid_retries_and_polling_goes_on(
    simulator: SimFactory,
) -> None:
    clock = FakeClock(START)
    sim = await simulator(1, clients=CLIENTS, token_lifetime=60, clock=clock.now)
    async with (
        token_gate(sim.url) as gate,
        oauth(gate.url, clock) as creds,
        api_client(sim.url, creds) as api,
    ):
        first = creds.token
        gate.up = False
        with capture_logs() as logs:
            tries = [await next_timer(clock) for _ in range(6)]
            await until(lambda: gate.refused == 6)
            assert creds.token == first
            await api.fetch(sim.keys[0])  # the token is still good: polls go on
            gate.up = True
            await next_timer(clock)
            await until(lambda: creds.issued == 2)
        assert clock.now() < START + 60  # renewed before the first token expired
        await api.fetch(sim.keys[0])
    assert tries[0] == START + 30
    gaps = [b - a for a, b in itertools.pairwise(tries)]
    assert all(gap > 0 for gap in gaps) and gaps[-1] > gaps[0]  # backing off
    failed = [e for e in logs if e["event"] == "api.token_request_failed"]
    assert [e["log_level"] for e in failed] == ["warning"] + ["debug"] * 5  # said once
    assert failed[0]["error"] == "token endpoint answered 503 temporarily_unavailable"
    assert failed[0]["token_valid_for"] == 30.0
    renewed = [e for e in logs if e["event"] == "api.token_renewed"]
    assert renewed[0]["after_failures"] == 6


async def test_retries_never_wait_past_half_the_time_left(simulator: SimFactory) -> None:
    clock = FakeClock(START)
    sim = await simulator(1, clients=CLIENTS, token_lifetime=8, clock=clock.now)
    async with token_gate(sim.url) as gate:
        backoff = Backoff(base=1.0, cap=100.0, retries=0)
        async with oauth(gate.url, clock, backoff=backoff) as creds:
            gate.up = False
            tries = [await next_timer(clock) for _ in range(6)]
            assert creds.token is not None
    assert tries[0] == START + 4
    # The backoff alone would wait 1, 2, 4, 8 s: past the expiry after the third try.
    assert sum(t < START + 8 for t in tries) == 5


async def test_a_wrong_secret_is_one_clear_line_and_no_token(simulator: SimFactory) -> None:
    clock = FakeClock(START)
    sim = await simulator(1, clients=CLIENTS, clock=clock.now)
    with capture_logs() as logs:
        async with oauth(sim.url + "/oidc/token", clock, secret="wrong-secret-value") as creds:
            assert creds.token is None and creds.headers == {}
            async with api_client(sim.url, creds) as api:
                with pytest.raises(AuthFailed):
                    await api.fetch(sim.keys[0])
                await until(lambda: len(logs) >= 2)  # refused without a token: asks again
    assert sim.sim.auth.issued == 0
    loud = [e for e in logs if e["log_level"] in ("warning", "error")]
    assert loud == [
        {
            "event": "api.token_request_failed",
            "error": "the token endpoint refused the client id or secret (401 invalid_client)",
            "attempt": 1,
            "retry_in": loud[0]["retry_in"],
            "token_valid_for": 0.0,
            "log_level": "error",
        }
    ]
    assert "wrong-secret-value" not in repr(logs) and CLIENT not in repr(logs)


async def test_a_token_endpoint_down_at_start_gets_a_few_tries_first(
    simulator: SimFactory,
) -> None:
    clock = FakeClock(START)
    sim = await simulator(1, clients=CLIENTS, clock=clock.now)
    async with token_gate(sim.url) as gate:
        gate.up = False
        creds = oauth(gate.url, clock)
        entering = asyncio.create_task(creds.__aenter__())
        await next_timer(clock)  # the second try, still down
        await until(lambda: gate.refused == 2)
        gate.up = True
        await next_timer(clock)  # the third and last before polling starts
        await entering
        try:
            assert creds.token is not None and gate.requests == 3
        finally:
            await creds.__aexit__(None, None, None)


async def answer(status: int, body: bytes) -> Callable[[Hit], Awaitable[web.StreamResponse]]:
    async def respond(_hit: Hit) -> web.StreamResponse:
        return web.Response(status=status, body=body, content_type="application/json")

    return respond


@pytest.mark.parametrize(
    ("status", "body", "client", "error"),
    [
        (200, b"<html>", (CLIENT, SECRET), "token endpoint answer is not JSON"),
        (200, b" " * 70_000, (CLIENT, SECRET), "token endpoint answer is too large"),
        (
            200,
            b'{"token_type": "Bearer"}',
            (CLIENT, SECRET),
            "token endpoint answer has no access_token",
        ),
        (400, b'{"error": "Invalid Grant!"}', (CLIENT, SECRET), "token endpoint answered 400"),
        (200, b"{}", None, "the OAuth client id or secret is unreadable"),
        (200, b"{}", ("II:1", SECRET), "the OAuth client id contains ':'"),
    ],
)
async def test_unusable_answers_and_clients_are_named_without_secrets(
    endpoint: Any,
    status: int,
    body: bytes,
    client: tuple[str, str] | None,
    error: str,
) -> None:
    server = await endpoint(await answer(status, body))
    clock = FakeClock(START, autojump=True)  # start-up retries transient failures
    with capture_logs() as logs:
        async with oauth(server.url + "/oidc/token", clock, client=lambda: client) as creds:
            assert creds.token is None
    failures = [e["error"] for e in logs if e["event"] == "api.token_request_failed"]
    assert failures and failures[0] == error
    assert SECRET not in repr(logs)


async def test_a_token_endpoint_that_is_not_there_is_a_connection_failure(
    unused_tcp_port: int,
) -> None:
    clock = FakeClock(START, autojump=True)
    url = f"http://127.0.0.1:{unused_tcp_port}/oidc/token"
    with capture_logs() as logs:
        async with oauth(url, clock, backoff=Backoff(retries=1)) as creds:
            assert creds.token is None
    errors = [e["error"] for e in logs if e["event"] == "api.token_request_failed"]
    assert errors[:2] == ["token request failed (ClientConnectorError)"] * 2


async def test_a_bug_in_renewal_is_logged_and_renewal_goes_on(simulator: SimFactory) -> None:
    clock = FakeClock(START)
    sim = await simulator(1, clients=CLIENTS, token_lifetime=60, clock=clock.now)
    calls = 0

    def flaky() -> tuple[str, str]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("a bug")
        return CLIENT, SECRET

    with capture_logs() as logs:
        async with oauth(sim.url + "/oidc/token", clock, client=flaky) as creds:
            await next_timer(clock)
            assert await next_timer(clock) == START + 30 + 30  # backoff.cap after a crash
            await until(lambda: creds.issued == 2)
    assert any(e["event"] == "api.token_renewal_crashed" for e in logs)


def test_a_static_token_travels_in_the_configured_header() -> None:
    assert StaticToken("tok", Header.BEARER).headers == {"Authorization": "Bearer tok"}
    static = StaticToken(None)
    assert static.headers == {} and static.token is None
    static.set("new")
    static.rejected("new")  # nothing to renew: the token file is re-read by the auth episode
    assert static.headers == {"token": "new"}

"""API outages against the real service and a real simulator on loopback: the API breaker,
the recovery target, and overdue at its deadline while the API cannot be asked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from monitor import service
from monitor.api import (
    ApiError,
    AuthFailed,
    BadResponse,
    NotFound,
    RateLimited,
    RequestRejected,
    ServerError,
    Unreachable,
)
from monitor.apigate import verdicts
from monitor.core.breaker import Verdict
from monitor.core.events import isoformat
from monitor.settings import Settings
from monitor.simulator import Faults, Simulator, make_keys
from tests.conftest import watches_of
from tests.simcount import Counted, counted
from tests.storekit import outbox_rows


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[service.Service]:
    stop = asyncio.Event()
    ready: asyncio.Future[service.Service] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(service.run(settings, stop=stop, on_ready=ready.set_result))
    try:
        yield await asyncio.wait_for(ready, 10)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def settings_for(api: Counted, state: Path, *, interval: float, **api_extra: Any) -> Settings:
    return Settings(
        api={"base_url": api.url, "timeout": 2, **api_extra},
        poll={"interval": interval},
        state={"path": state},
        http={"listen": ""},
        watches=watches_of(api.sim.keys),
    )


def gauge(svc: service.Service, name: str) -> float:
    return svc.registry.get_sample_value(name) or 0.0


async def until(predicate, within: float) -> None:
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.02)


SESSIONS, INTERVAL, RATE, OUTAGE = 40, 2.0, 20.0, 20.0


@pytest.mark.timeout(120)
async def test_after_an_outage_every_session_is_polled_within_interval_plus_n_over_rate(
    state_path: Path,
) -> None:
    sim = Simulator(make_keys(SESSIONS, seed=4), evolve=False)
    with capture_logs() as logs:
        async with counted(sim) as api:
            settings = settings_for(api, state_path, interval=INTERVAL, rate_limit=RATE)
            async with running(settings) as svc:
                await api.wait_all_ok_after(0.0, within=10)
                began = time.monotonic()
                sim.faults = Faults(error_rate=1.0)  # 500/502/503 for every session
                await until(lambda: gauge(svc, "spmon_api_breaker_open") == 1, within=10)
                opened = time.monotonic()
                assert gauge(svc, "spmon_up") == 0
                await asyncio.sleep(began + OUTAGE - time.monotonic())
                ended = time.monotonic()
                sim.faults = Faults()
                first_ok = await api.wait_all_ok_after(ended, within=60)
                await until(lambda: gauge(svc, "spmon_api_breaker_open") == 0, within=5)
                assert gauge(svc, "spmon_up") == 1
    recovery = max(first_ok.values()) - ended
    target = INTERVAL + SESSIONS / RATE
    # Polls already in flight when it opened may retry for a second or two more.
    window = (opened + 2.0, ended)
    during = api.between(*window)
    seconds = window[1] - window[0]
    ungated = SESSIONS * seconds / INTERVAL
    print(
        f"\n{SESSIONS} sessions, {INTERVAL:g} s interval, {RATE:g}/s, {OUTAGE:g} s outage: "
        f"breaker opened {opened - began:.1f} s in; {during} requests in its last "
        f"{seconds:.1f} s (ungated ≥ {ungated:.0f}); every session polled OK "
        f"{recovery:.2f} s after the outage ended (target {target:g} s)"
    )
    assert recovery <= 2 * target
    # About one probe per cooldown (at most the interval, full jitter: ~1 s), not one per session.
    assert 1 <= during <= 2 * seconds + 5
    downs = [e for e in logs if e["event"] == "api.down"]
    ups = [e for e in logs if e["event"] == "api.recovered"]
    assert len(downs) == 1 and len(ups) == 1
    assert OUTAGE - 5 <= ups[0]["outage_seconds"] <= OUTAGE + 2 * INTERVAL


async def overdue_rows(svc: service.Service, sid: str) -> list[float]:
    rows = await outbox_rows(svc.store, state=None, limit=1000)
    return [
        row.created_at
        for row in rows
        if row.session_sid == sid and json.loads(row.payload)["type"] == "review.overdue"
    ]


@pytest.mark.parametrize("outage", ["server_errors", "token_rejected"])
@pytest.mark.timeout(60)
async def test_overdue_fires_at_its_deadline_while_the_api_cannot_be_asked(
    state_path: Path, outage: str
) -> None:
    """While a breaker is open only one probe at a time goes out; a review deadline that
    passes meanwhile must still raise review.overdue at the deadline, from the last good
    snapshot, and not when the API is back."""
    sim = Simulator(make_keys(6, seed=5), evolve=False, token="the-token")
    key = sim.keys[0]
    deadline = float(int(time.time()) + 12)
    sim.set(
        key,
        status="Closed",
        reviewRequired=True,
        reviewed=False,
        reviewByDate=isoformat_ts(deadline),
    )
    async with counted(sim) as api:
        settings = settings_for(api, state_path, interval=3.0, rate_limit=50, token="the-token")
        async with running(settings) as svc:
            await api.wait_all_ok_after(0.0, within=10)
            if outage == "server_errors":
                sim.faults = Faults(error_rate=1.0)
                metric = "spmon_api_breaker_open"
            else:
                sim.token = "a-rotated-token"  # spmon's is refused from now on (401)
                metric = "spmon_api_auth_failing"
            await until(lambda: gauge(svc, metric) == 1, within=8)
            assert time.time() < deadline - 1, "the breaker opened too late for this test"
            async with asyncio.timeout(deadline - time.time() + 5):
                while not (created := await overdue_rows(svc, key.session_sid)):
                    await asyncio.sleep(0.05)
            assert gauge(svc, metric) == 1  # still down: no poll told us
    late = created[0] - deadline
    print(f"\n{outage}: review.overdue raised {late:.2f} s after the deadline")
    assert len(created) == 1
    assert 0.0 <= late <= 2.0


def isoformat_ts(ts: float) -> str:
    return isoformat(datetime.fromtimestamp(ts, UTC))


async def test_one_failing_session_does_not_open_the_breaker(state_path: Path) -> None:
    """A session the API answers 500 for, among healthy ones, is that session's problem: it
    backs off on its own and the others keep their schedule."""
    sim = Simulator(make_keys(10, seed=6), evolve=False)
    sim.set_status_code(sim.keys[0], 500)
    async with counted(sim) as api:
        settings = settings_for(api, state_path, interval=0.5, rate_limit=100, retries=0)
        async with running(settings) as svc:
            began = time.monotonic()
            await asyncio.sleep(4.0)
            assert gauge(svc, "spmon_api_breaker_open") == 0
    healthy = {k.session_sid for k in sim.keys[1:]}
    polled = {hit.sid for hit in api.hits if hit.at > began + 2.0 and hit.status == 200}
    assert polled == healthy


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ServerError("502", status=502), (Verdict.DOWN, Verdict.UNKNOWN)),
        (Unreachable("timed out"), (Verdict.DOWN, Verdict.UNKNOWN)),
        (AuthFailed("401", status=401), (Verdict.UP, Verdict.DOWN)),
        (NotFound("404", status=404), (Verdict.UP, Verdict.UNKNOWN)),
        (RequestRejected("400", status=400), (Verdict.UP, Verdict.UNKNOWN)),
        (RateLimited("429", retry_after=1.0), (Verdict.UNKNOWN, Verdict.UNKNOWN)),
        (BadResponse("too large"), (Verdict.UNKNOWN, Verdict.UNKNOWN)),
    ],
)
def test_only_server_errors_timeouts_and_connection_errors_count_against_the_api(
    error: ApiError, expected: tuple[Verdict, Verdict]
) -> None:
    assert verdicts(error) == expected

"""Credentials that renew, in the running service against the simulator as a real server: tokens
renewed before expiry with no failed poll, in either header; the token endpoint down while the
token is still good; and 403 AUTHENTICATIONFAILED counted as the auth failure it is."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from monitor import service
from monitor.logs import REDACTED, Redactor
from monitor.settings import Settings
from tests.conftest import SimFactory, watches_of
from tests.storekit import outbox_rows
from tests.test_cli import once_config, spmon
from tests.tokenkit import token_gate

CLIENT = "II" + "5e" * 16
SECRET = "client-secret-for-tests"
CLIENTS = {CLIENT: SECRET}


def oauth_settings(url: str, keys: Any, state: Path, **auth: Any) -> Settings:
    return Settings(
        api={
            "base_url": url,
            "rate_limit": 200,
            "retries": 0,
            "timeout": 2,
            "auth": {
                "mode": "oauth",
                "token_url": url + "/oidc/token",
                "client_id": CLIENT,
                "client_secret": SECRET,
                **auth,
            },
        },
        poll={"interval": 0.25, "jitter": 0},
        state={"path": state},
        http={"listen": ""},
        watches=watches_of(keys),
    )


@contextlib.asynccontextmanager
async def running(settings: Settings, redactor: Redactor) -> AsyncIterator[service.Service]:
    stop = asyncio.Event()
    ready: asyncio.Future[service.Service] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        service.run(settings, stop=stop, on_ready=ready.set_result, redactor=redactor)
    )
    try:
        yield await asyncio.wait_for(ready, 10)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


def sample(svc: service.Service, name: str, **labels: str) -> float:
    return svc.registry.get_sample_value(name, labels or None) or 0.0


async def until(predicate: Callable[[], bool], within: float) -> None:
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("header", ["token", "bearer"])
@pytest.mark.timeout(40)
async def test_tokens_renew_before_expiry_with_no_failed_poll(
    simulator: SimFactory, state_path: Path, header: str
) -> None:
    # The API takes the token only in the configured header: the wrong one would be refused.
    sim = await simulator(3, clients=CLIENTS, token_lifetime=2, accept=header)
    settings = oauth_settings(sim.url, sim.keys, state_path, header=header)
    redactor = Redactor()
    with capture_logs() as logs:
        async with running(settings, redactor) as svc:
            started = time.time()
            # Several lifetimes: each token is renewed half-way, a second before it expires.
            await until(lambda: sim.sim.auth.issued >= 2, within=20)
            under_first = sample(svc, "spmon_polls_total", outcome="ok")
            await until(lambda: sim.sim.auth.issued >= 4, within=20)
            ran = time.time() - started
            polls_ok = sample(svc, "spmon_polls_total", outcome="ok")
            failed = sample(svc, "spmon_polls_total", outcome="auth_failed")
            expiry = sample(svc, "spmon_api_token_expiry_timestamp_seconds")
            renews = sample(svc, "spmon_api_token_renews")
            current = svc.api.token
    print(f"\n{header}: {sim.sim.auth.issued} tokens over {ran:.1f} s, {polls_ok:.0f} polls OK")
    # Polling went on under the renewed tokens, and none was refused (no wall-clock rate
    # is asserted: these machines are shared).
    assert failed == 0 and polls_ok > under_first > 0
    assert not [e for e in logs if e["event"] in ("api.auth_failed", "api.token_rejected")]
    assert [e["event"] for e in logs].count("api.token_obtained") == 1
    assert time.time() - 2 < expiry <= time.time() + 2  # the gauge follows the renewed token
    assert renews == 1  # and SpmonTokenExpiringSoon knows an hour-long token is no warning
    assert current is not None and redactor.scrub(current) == REDACTED
    assert redactor.scrub(f"id {CLIENT} secret {SECRET}") == f"id {REDACTED} secret {REDACTED}"


@pytest.mark.timeout(40)
async def test_with_the_token_endpoint_down_polling_goes_on_and_renewal_retries(
    simulator: SimFactory, state_path: Path
) -> None:
    # Lifetimes of several seconds: this runs on the wall clock, on shared CI machines.
    sim = await simulator(2, clients=CLIENTS, token_lifetime=16)
    async with token_gate(sim.url) as gate:
        settings = oauth_settings(sim.url, sim.keys, state_path, token_url=gate.url)
        with capture_logs() as logs:
            async with running(settings, Redactor()) as svc:
                obtained = time.time()
                gate.up = False  # from before the renewal is due (at 8 s) to 4 s after it
                await until(lambda: gate.refused >= 3, within=14)
                down_ok = sample(svc, "spmon_polls_total", outcome="ok")
                await asyncio.sleep(max(0.0, obtained + 12 - time.time()))
                assert sample(svc, "spmon_polls_total", outcome="ok") > down_ok  # polls go on
                gate.up = True
                await until(lambda: sim.sim.auth.issued == 2, within=4)
                renewed = time.time()
                failed = sample(svc, "spmon_polls_total", outcome="auth_failed")
    assert renewed < obtained + 16 and failed == 0
    warned = [e for e in logs if e["event"] == "api.token_request_failed"]
    assert warned[0]["log_level"] == "warning" and len(warned) == gate.refused


async def test_403_authenticationfailed_for_an_expired_static_token_is_an_auth_failure(
    simulator: SimFactory, state_path: Path
) -> None:
    now = [time.time()]
    sim = await simulator(3, clients=CLIENTS, token_lifetime=60, clock=lambda: now[0])
    async with aiohttp.ClientSession() as http:  # a token as the account manager issued it
        form = {"grant_type": "client_credentials"}
        basic = "Basic " + base64.b64encode(f"{CLIENT}:{SECRET}".encode()).decode()
        async with http.post(
            sim.url + "/oidc/token", data=form, headers={"Authorization": basic}
        ) as r:
            token = (await r.json())["access_token"]
    now[0] += 61  # and it expired
    settings = Settings(
        api={"base_url": sim.url, "token": token, "retries": 0, "timeout": 2},
        state={"path": state_path},
        http={"listen": ""},
        watches=watches_of(sim.keys),
    )
    with capture_logs() as logs:
        async with service.build(settings, serve_http=False) as svc:
            outcomes = await svc.poller.poll_all()
            rows = await outbox_rows(svc.store, state=None, limit=10)
            forbidden = sample(svc, "spmon_api_responses_total", code="403")
            failing = sample(svc, "spmon_api_auth_failing")
    assert set(outcomes.values()) == {"auth_failed"}
    assert forbidden >= 1 and failing == 1
    assert [json.loads(row.payload)["type"] for row in rows] == ["api.auth_failed"]
    assert [e["event"] for e in logs].count("api.auth_failed") == 1
    assert token not in repr(logs)


@pytest.mark.slow
async def test_once_with_a_wrong_client_secret_is_unknown_with_one_clear_line(
    simulator: SimFactory, tmp_path: Path
) -> None:
    sim = await simulator(2, clients=CLIENTS)
    (tmp_path / "client_id").write_text(CLIENT + "\n")
    (tmp_path / "client_secret").write_text("a-wrong-secret-value\n")
    auth = {
        "mode": "oauth",
        "token_url": sim.url + "/oidc/token",
        "client_id_file": "client_id",
        "client_secret_file": "client_secret",
    }
    path = once_config(tmp_path, sim.url, sim.keys, api={"base_url": sim.url, "auth": auth})
    code, out, err = await spmon("once", "--config", path)
    assert code == 3, err
    assert out.splitlines()[-1].startswith("UNKNOWN: 2 of 2 sessions could not be polled")
    refused = [line for line in err.splitlines() if "refused the client id or secret" in line]
    assert len(refused) == 1 and "api.token_request_failed" in refused[0]
    assert "api.auth_failed" in err
    assert "a-wrong-secret-value" not in out + err and CLIENT not in out + err
    assert sim.sim.auth.issued == 0


@pytest.mark.timeout(40)
async def test_a_rotated_secret_file_ends_the_auth_episode_without_a_restart(
    simulator: SimFactory, state_path: Path, tmp_path: Path
) -> None:
    sim = await simulator(2, clients=CLIENTS, token_lifetime=60)
    secret = tmp_path / "client_secret"
    secret.write_text("not-the-secret\n")
    settings = oauth_settings(
        sim.url, sim.keys, state_path, client_secret=None, client_secret_file=str(secret)
    )
    api = settings.api.model_copy(update={"auth_retry": 0.5})
    settings = settings.model_copy(update={"api": api})
    async with running(settings, Redactor()) as svc:
        await until(lambda: sample(svc, "spmon_api_auth_failing") == 1, within=10)
        secret.write_text(SECRET + "\n")  # the mounted secret is rotated
        await until(lambda: sample(svc, "spmon_api_auth_failing") == 0, within=20)
        ok = sample(svc, "spmon_polls_total", outcome="ok")
        await until(lambda: sample(svc, "spmon_polls_total", outcome="ok") > ok + 4, within=5)
        rows = await outbox_rows(svc.store, state=None, limit=10)
    assert sim.sim.auth.issued >= 1
    kinds = [json.loads(row.payload)["type"] for row in rows]
    assert [kind for kind in kinds if kind.startswith("api.")] == ["api.auth_failed"]

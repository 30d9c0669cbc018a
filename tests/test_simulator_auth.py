"""The simulator's OAuth client-credentials endpoint and token checks, over real loopback HTTP."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from monitor.core.jwt_expiry import jwt_expiry
from monitor.sim_auth import Credentials
from monitor.simulator import Faults, Simulator, make_keys, make_token, serve
from tests.clockkit import HandClock
from tests.conftest import SimFactory, SimHandle

START = 1_795_000_000.0
CLIENT = "II" + "9d" * 16
SECRET = "s3cret-for-tests"
CLIENTS = {CLIENT: SECRET}


def basic(client: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client}:{secret}".encode()).decode()}


async def request_token(
    http: aiohttp.ClientSession,
    base: str,
    *,
    headers: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
) -> tuple[int, Any, Mapping[str, str]]:
    body = {"grant_type": "client_credentials"} if form is None else form
    sent = basic(CLIENT, SECRET) if headers is None else headers
    async with http.post(base + "/oidc/token", data=body, headers=sent) as response:
        return response.status, await response.json(content_type=None), response.headers


async def issue(http: aiohttp.ClientSession, base: str) -> str:
    status, grant, _ = await request_token(http, base)
    assert status == 200, grant
    token: str = grant["access_token"]
    return token


async def api_get(
    http: aiohttp.ClientSession, url: str, headers: Mapping[str, str]
) -> tuple[int, Any, Mapping[str, str]]:
    async with http.get(url, headers=headers) as response:
        return response.status, await response.json(content_type=None), response.headers


def urls(handle: SimHandle) -> list[str]:
    key = handle.keys[0]
    enrollment = handle.sim.payload(key)["enrollmentSid"]
    return [
        handle.url + key.path,
        f"{handle.url}/v1/installs/{key.install_sid}/reports/appointments",
        f"{handle.url}/v1/installs/{key.install_sid}/enrollments/{enrollment}"
        f"/exams/{key.exam_sid}/sessions",
    ]


async def test_the_token_endpoint_issues_a_jwt_with_its_expiry(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    handle = await simulator(1, clients=CLIENTS, token_lifetime=90, clock=HandClock(START + 0.25))
    status, grant, _ = await request_token(http, handle.url)
    assert status == 200
    assert grant.keys() == {"access_token", "token_type", "expires_in", "expires_at"}
    assert (grant["token_type"], grant["expires_in"]) == ("Bearer", 90)
    exp = jwt_expiry(grant["access_token"])
    assert exp == START + 90.25
    assert grant["expires_at"] == "2026-11-18T11:08:10.250Z"
    assert datetime.fromisoformat(grant["expires_at"]).timestamp() == exp
    assert datetime.fromisoformat(grant["expires_at"]).tzinfo == UTC
    assert handle.sim.auth.issued == 1


async def test_form_body_credentials_are_accepted_too(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    handle = await simulator(1, clients=CLIENTS)
    form = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET}
    status, grant, _ = await request_token(http, handle.url, headers={}, form=form)
    assert status == 200 and grant["token_type"] == "Bearer"


@pytest.mark.parametrize(
    "headers",
    [
        basic(CLIENT, "wrong"),
        basic("II" + "0" * 32, SECRET),
        {},
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"Authorization": "Bearer " + make_token(exp=START + 60)},
    ],
)
async def test_wrong_client_credentials_are_401_invalid_client(
    simulator: SimFactory, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    handle = await simulator(1, clients=CLIENTS)
    status, body, answer = await request_token(http, handle.url, headers=headers)
    assert (status, body) == (401, {"error": "invalid_client"})
    assert answer["WWW-Authenticate"].startswith("Basic ")
    assert handle.sim.auth.issued == 0


async def test_other_grant_types_are_refused(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    handle = await simulator(1, clients=CLIENTS)
    status, body, _ = await request_token(http, handle.url, form={"grant_type": "password"})
    assert (status, body) == (400, {"error": "unsupported_grant_type"})
    status, body, _ = await request_token(http, handle.url, form={"scope": "smarter_iam"})
    assert (status, body) == (400, {"error": "invalid_request"})


async def test_without_clients_the_token_endpoint_knows_nobody(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    handle = await simulator(1)
    status, body, _ = await request_token(http, handle.url)
    assert (status, body) == (401, {"error": "invalid_client"})
    for url in urls(handle):  # and the API stays open, as without a token it always was
        assert (await api_get(http, url, {}))[0] == 200


@pytest.mark.parametrize("header", ["token", "bearer"])
async def test_an_issued_token_opens_sessions_and_lists_until_it_expires(
    simulator: SimFactory, http: aiohttp.ClientSession, header: str
) -> None:
    clock = HandClock()
    handle = await simulator(3, clients=CLIENTS, token_lifetime=60, clock=clock)
    token = await issue(http, handle.url)
    sent = {"token": token} if header == "token" else {"Authorization": f"Bearer {token}"}
    clock.now = START + 59.999
    for url in urls(handle):
        status, body, _ = await api_get(http, url, sent)
        assert status == 200, body
    clock.now = START + 60.0
    for url in urls(handle):
        status, body, answer = await api_get(http, url, sent)
        if header == "token":
            assert (status, body) == (
                403,
                {"code": "AUTHENTICATIONFAILED", "message": "Invalid or expired JWT token"},
            )
        else:
            assert status == 401
            assert 'error="invalid_token"' in answer["WWW-Authenticate"]
            assert answer["WWW-Authenticate"].startswith("Bearer ")
    renewed = await issue(http, handle.url)
    assert (await api_get(http, urls(handle)[0], {"token": renewed}))[0] == 200
    assert handle.sim.auth.issued == 2


@pytest.mark.parametrize(
    "forged",
    [
        "not-a-jwt",
        make_token(exp=START + 3600),  # well-formed, but not signed by this simulator
        "a.b.c",
    ],
)
async def test_tokens_this_simulator_did_not_issue_are_refused(
    simulator: SimFactory, http: aiohttp.ClientSession, forged: str
) -> None:
    handle = await simulator(1, clients=CLIENTS, clock=HandClock())
    url = urls(handle)[0]
    status, body, _ = await api_get(http, url, {"token": forged})
    assert (status, body["code"]) == (403, "AUTHENTICATIONFAILED")
    status, _, answer = await api_get(http, url, {"Authorization": f"Bearer {forged}"})
    assert status == 401 and 'error="invalid_token"' in answer["WWW-Authenticate"]


async def test_a_token_from_another_simulator_is_refused(http: aiohttp.ClientSession) -> None:
    keys = make_keys(1)
    one = Simulator(keys, clients=CLIENTS, clock=HandClock())
    other = Simulator(keys, clients=CLIENTS, clock=HandClock())
    async with serve(one) as first, serve(other) as second:
        token = await issue(http, first)
        assert (await api_get(http, second + keys[0].path, {"token": token}))[0] == 403
        assert (await api_get(http, first + keys[0].path, {"token": token}))[0] == 200


async def test_no_credentials_at_all_is_401(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    handle = await simulator(1, clients=CLIENTS)
    for url in urls(handle):
        status, body, answer = await api_get(http, url, {})
        assert (status, body) == (401, {"message": "Unauthorized"})
        assert answer["WWW-Authenticate"].startswith("Bearer ")
    assert handle.sim.requests == 3


async def test_accept_names_the_header_the_api_requires(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    only_token = await simulator(1, clients=CLIENTS, accept="token")
    only_bearer = await simulator(1, clients=CLIENTS, accept="bearer")
    for handle, good, ignored in (
        (only_token, "token", "bearer"),
        (only_bearer, "bearer", "token"),
    ):
        token = await issue(http, handle.url)
        as_header = {
            "token": {"token": token},
            "bearer": {"Authorization": f"Bearer {token}"},
        }
        url = urls(handle)[0]
        assert (await api_get(http, url, as_header[good]))[0] == 200
        status, body, _ = await api_get(http, url, as_header[ignored])
        assert (status, body) == (401, {"message": "Unauthorized"})
    _, _, answer = await api_get(http, urls(only_token)[0], {})
    assert "WWW-Authenticate" not in answer


async def test_the_fixed_token_keeps_working_beside_clients(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    fixed = make_token(exp=START + 3600)
    handle = await simulator(1, token=fixed, clients=CLIENTS)
    url = urls(handle)[0]
    assert (await api_get(http, url, {"token": fixed}))[0] == 200
    assert (await api_get(http, url, {"token": await issue(http, handle.url)}))[0] == 200


async def test_with_only_a_fixed_token_a_bearer_header_is_no_credential(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    handle = await simulator(1, token="fixed")
    for url in urls(handle):
        status, body, _ = await api_get(http, url, {"Authorization": "Bearer fixed"})
        assert (status, body) == (401, {"message": "Unauthorized"})
        assert (await api_get(http, url, {"token": "fixed"}))[0] == 200


async def test_faults_do_not_touch_the_token_endpoint(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    handle = await simulator(1, clients=CLIENTS, faults=Faults(error_rate=1.0))
    token = await issue(http, handle.url)
    assert (await api_get(http, urls(handle)[0], {"token": token}))[0] >= 500


async def test_put_auth_configures_clients_at_run_time(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    clock = HandClock()
    handle = await simulator(1, clock=clock)
    body = {"clients": CLIENTS, "token_lifetime": 5, "accept": "bearer"}
    async with http.put(handle.url + "/_sim/auth", json=body) as response:
        assert response.status == 200
        text = await response.text()
    assert SECRET not in text  # secrets never leave the simulator
    assert handle.sim.auth.credentials == Credentials(CLIENTS, 5.0, "bearer")  # type: ignore[arg-type]
    token = await issue(http, handle.url)
    assert jwt_expiry(token) == START + 5
    url = urls(handle)[0]
    assert (await api_get(http, url, {}))[0] == 401
    assert (await api_get(http, url, {"Authorization": f"Bearer {token}"}))[0] == 200
    async with http.put(handle.url + "/_sim/auth", json={"clients": {}}) as response:
        assert response.status == 200
    assert (await api_get(http, url, {}))[0] == 200  # no clients, no fixed token: open again


@pytest.mark.parametrize(
    "body",
    [
        {"clients": {"client": "secret"}},
        {"clients": {CLIENT: ""}},
        {"clients": {CLIENT: 7}},
        {"clients": [CLIENT]},
        {"token_lifetime": 0},
        {"token_lifetime": "1h"},
        {"accept": "cookie"},
        {"unknown": 1},
        [1],
    ],
)
async def test_put_auth_rejects_bad_bodies(
    simulator: SimFactory, http: aiohttp.ClientSession, body: object
) -> None:
    handle = await simulator(1, clients=CLIENTS)
    async with http.put(handle.url + "/_sim/auth", json=body) as response:
        assert response.status == 400
        assert (await response.json())["message"].startswith("Bad auth: ")
    assert handle.sim.auth.credentials == Credentials(CLIENTS)


def test_credentials_check_ids_secrets_and_lifetime() -> None:
    with pytest.raises(ValueError, match="II"):
        Credentials({"II1234": SECRET})
    with pytest.raises(ValueError, match="lifetime"):
        Simulator(make_keys(1), clients=CLIENTS, token_lifetime=-1)
    with pytest.raises(ValueError, match="cookie"):
        Simulator(make_keys(1), accept="cookie")

"""The simulator against a real aiohttp client on loopback: it is the double every other test trusts."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from monitor.core.keys import SessionKey
from monitor.settings import Watch
from monitor.simulator import Faults, Simulator, make_keys, make_token, serve
from tests.clockkit import HandClock

Start = Callable[[Simulator], Awaitable[str]]

START = 1_795_000_000.0  # 2026-11-18, a fixed instant so fake-clock runs repeat exactly

# Transcribed from session.schema.json, so the check below does not trust the simulator's list.
NON_STRING_TYPES: dict[str, type | tuple[type, ...]] = {
    "duration": (int, float),
    "sessionReportCount": (int, float),
    "reviewRequired": bool,
    "reviewed": bool,
    "mandatoryRoomScanVideo": bool,
    "messagingConfirmations": list,
}
SCHEMA_FIELDS = frozenset(
    (
        "sid",
        "installSid",
        "examSid",
        "enrollmentSid",
        "userSid",
        "courseSid",
        "instructorProctorSid",
        "proctorTypeSid",
        "cancellationPolicySid",
        "cancellationPolicyVersionSid",
        "status",
        "statusReason",
        "accessKey",
        "duration",
        "sessionType",
        "schedulingModule",
        "proctorReviewProcessSid",
        "workflowModule",
        "appointmentDate",
        "appointmentEndDate",
        "dateApproved",
        "dateScheduled",
        "createdDate",
        "inProgressDate",
        "externalAppointmentId",
        "externalReservedAppointmentId",
        "externalReservedAppointmentExpires",
        "externalAppointmentSyncDate",
        "editDate",
        "notes",
        "recordingStartDate",
        "account",
        "install",
        "deployment",
        "sessionReportCount",
        "series",
        "reviewByDate",
        "reviewByUserSid",
        "reviewCompletedDate",
        "reviewRequired",
        "reviewCompleteNotificationUrl",
        "reviewed",
        "proctorGroups",
        "URL",
        "examLocale",
        "platformVersion",
        "systemCheckStartDate",
        "systemCheckEndDate",
        "modalityOptions",
        "exam",
        "enrollment",
        "course",
        "examFile",
        "returnedFile",
        "photos",
        "sessionInfo",
        "auditStatus",
        "examConfiguration",
        "proctor",
        "location",
        "appointment",
        "messagingConfirmations",
        "automated",
        "interoadsProvisionedExamUrl",
        "proctorGroupSid",
        "mandatoryRoomScanVideo",
        "mutedAnnotations",
    )
)
SHARED_SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "session.schema.json"


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Factory: serve a simulator on an ephemeral loopback port; all are stopped at teardown."""
    async with contextlib.AsyncExitStack() as stack:

        async def _start(sim: Simulator) -> str:
            return await stack.enter_async_context(serve(sim))

        yield _start


async def get(
    http: aiohttp.ClientSession, base: str, key: SessionKey, *, token: str | None = None
) -> tuple[int, bytes, Mapping[str, str]]:
    headers = {} if token is None else {"token": token}
    async with http.get(base + key.path, headers=headers) as response:
        return response.status, await response.read(), response.headers


def parse_instant(value: object) -> datetime:
    assert isinstance(value, str)
    assert value.endswith("Z")
    return datetime.fromisoformat(value)


def test_schema_field_list_matches_the_shared_schema() -> None:
    if not SHARED_SCHEMA.exists():
        pytest.skip("shared/ is not beside this checkout")
    properties = json.loads(SHARED_SCHEMA.read_text())["properties"]
    assert frozenset(properties) == SCHEMA_FIELDS


async def test_get_serves_every_schema_field_and_echoes_the_sids(
    http: aiohttp.ClientSession, start: Start
) -> None:
    keys = make_keys(5, seed=3)
    sim = Simulator(keys, clock=HandClock())
    base = await start(sim)
    for key in keys:
        status, body, headers = await get(http, base, key)
        payload = json.loads(body)
        assert status == 200
        assert headers["Content-Type"].startswith("application/json")
        assert payload.keys() >= SCHEMA_FIELDS
        assert SessionKey(payload["installSid"], payload["examSid"], payload["sid"]) == key
        assert payload["URL"].startswith("https://proctoring.example.com/")
        assert key.session_sid in payload["URL"]
        assert 2_000 <= len(body) <= 3_500  # realistic size, for the benchmark's sake
        assert payload == sim.payload(key)
    assert sim.requests == len(keys)


async def test_field_types_follow_the_schema(http: aiohttp.ClientSession, start: Start) -> None:
    clock = HandClock()
    keys = make_keys(20)
    base = await start(Simulator(keys, clock=clock, change_every=30.0))
    for step in range(0, 60, 3):
        clock.now = START + step
        for key in keys:
            payload = json.loads((await get(http, base, key))[1])
            for name in SCHEMA_FIELDS:
                value = payload[name]
                expected = NON_STRING_TYPES.get(name, str)
                assert value is None or isinstance(value, expected), (name, value)


async def test_dates_are_iso_utc_seconds(http: aiohttp.ClientSession, start: Start) -> None:
    keys = make_keys(1)
    base = await start(Simulator(keys, clock=HandClock()))
    payload = json.loads((await get(http, base, keys[0]))[1])
    created = parse_instant(payload["createdDate"])
    assert created.tzinfo == UTC
    assert payload["createdDate"] == created.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert abs(created.timestamp() - START) < 60


async def test_token_is_required_when_configured(http: aiohttp.ClientSession, start: Start) -> None:
    keys = make_keys(1)
    token = make_token(exp=START + 3600)
    base = await start(Simulator(keys, token=token))
    for sent in (None, "wrong", make_token(exp=START + 7200)):
        status, body, _ = await get(http, base, keys[0], token=sent)
        assert (status, json.loads(body)) == (401, {"message": "Unauthorized"})
    assert (await get(http, base, keys[0], token=token))[0] == 200


def test_make_token_is_a_well_formed_jwt_carrying_exp() -> None:
    token = make_token(exp=1_800_000_000.9)
    parts = token.split(".")
    assert len(parts) == 3
    assert all(part and "=" not in part for part in parts)

    def decode(part: str) -> object:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))

    assert decode(parts[0]) == {"alg": "HS256", "typ": "JWT"}
    assert decode(parts[1]) == {"exp": 1_800_000_000, "sub": "spmon-demo"}


async def test_unknown_and_removed_sessions_are_404(
    http: aiohttp.ClientSession, start: Start
) -> None:
    keys = make_keys(3)
    sim = Simulator(keys)
    base = await start(sim)
    stranger = SessionKey("AI" + "0" * 32, "EX" + "0" * 32, "ES" + "0" * 32)
    assert (await get(http, base, stranger))[0] == 404
    sim.remove(keys[1])
    assert (await get(http, base, keys[1]))[0] == 404
    assert (await get(http, base, keys[0]))[0] == 200
    with pytest.raises(KeyError):
        sim.payload(keys[1])


async def test_set_overrides_are_served_and_stop_evolution(
    http: aiohttp.ClientSession, start: Start
) -> None:
    clock = HandClock()
    keys = make_keys(2)
    sim = Simulator(keys, clock=clock, change_every=10.0)
    base = await start(sim)
    fields = {"status": "Closed", "reviewRequired": True, "reviewByDate": "2026-01-01T00:00:00Z"}
    sim.set(keys[0], **fields)
    before = json.loads((await get(http, base, keys[0]))[1])
    assert before.items() >= fields.items()
    clock.now += 1_000.0  # a hundred epochs: an evolving session would have moved on
    assert json.loads((await get(http, base, keys[0]))[1]) == before
    sim.set(keys[0], reviewed=True)
    assert sim.payload(keys[0]) == {**before, "reviewed": True}


def test_set_rejects_unknown_keys_and_unencodable_values() -> None:
    keys = make_keys(1)
    sim = Simulator(keys)
    with pytest.raises(KeyError):
        sim.set(SessionKey("AI" + "1" * 32, "EX" + "1" * 32, "ES" + "1" * 32), status="Closed")
    with pytest.raises(TypeError):
        sim.set(keys[0], status=object())


async def test_set_status_code_forces_and_restores(
    http: aiohttp.ClientSession, start: Start
) -> None:
    keys = make_keys(2)
    sim = Simulator(keys)
    base = await start(sim)
    sim.set_status_code(keys[0], 403)
    status, body, _ = await get(http, base, keys[0])
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    assert (await get(http, base, keys[1]))[0] == 200
    sim.set_status_code(keys[0], None)
    assert (await get(http, base, keys[0]))[0] == 200


async def test_evolution_changes_status_and_produces_overdue_reviews(
    http: aiohttp.ClientSession, start: Start
) -> None:
    clock = HandClock()
    keys = make_keys(20)
    base = await start(Simulator(keys, clock=clock, change_every=30.0))
    statuses: dict[SessionKey, set[str]] = {key: set() for key in keys}
    overdue: set[SessionKey] = set()
    for step in range(0, 121, 2):
        clock.now = START + step
        for key in keys:
            payload = json.loads((await get(http, base, key))[1])
            statuses[key].add(payload["status"])
            if is_overdue(payload, clock.now):
                overdue.add(key)
    assert sum(len(seen) > 1 for seen in statuses.values()) == len(keys)
    assert len(overdue) >= 2
    assert set().union(*statuses.values()) >= {"Scheduled", "Needs Proctor", "Closed"}


def is_overdue(payload: dict[str, object], now: float) -> bool:
    """Invariant 4 of the design: required, not reviewed, and the deadline has passed."""
    if payload["reviewRequired"] is not True or payload["reviewed"] is True:
        return False
    return parse_instant(payload["reviewByDate"]).timestamp() < now


def test_some_required_reviews_are_completed_before_their_deadline() -> None:
    clock = HandClock()
    keys = make_keys(20)
    sim = Simulator(keys, clock=clock, change_every=30.0)
    completed = []
    for step in range(0, 121, 2):
        clock.now = START + step
        for payload in map(sim.payload, keys):
            if payload["reviewed"] is True:
                completed.append(payload)
    assert completed
    for payload in completed:
        done = parse_instant(payload["reviewCompletedDate"])
        assert done <= parse_instant(payload["reviewByDate"])
        assert payload["reviewRequired"] is True
        assert payload["status"] == "Closed"


def test_evolution_is_a_pure_function_of_seed_index_and_clock() -> None:
    keys = make_keys(10)
    first = Simulator(keys, seed=7, clock=HandClock(START + 45.0))
    second = Simulator(keys, seed=7, clock=HandClock(START + 45.0))
    other_seed = Simulator(keys, seed=8, clock=HandClock(START + 45.0))
    assert [first.payload(k) for k in keys] == [second.payload(k) for k in keys]
    assert [first.payload(k) for k in keys] != [other_seed.payload(k) for k in keys]


def test_without_evolution_the_state_is_constant() -> None:
    clock = HandClock()
    keys = make_keys(20)
    sim = Simulator(keys, clock=clock, evolve=False, change_every=30.0)
    baseline = [sim.payload(key) for key in keys]
    clock.now += 3_600.0
    assert [sim.payload(key) for key in keys] == baseline
    assert len({payload["status"] for payload in baseline}) > 1


def test_make_keys_is_deterministic_valid_and_grouped() -> None:
    keys = make_keys(1_000, seed=5)
    assert keys == make_keys(1_000, seed=5)
    assert keys != make_keys(1_000, seed=6)
    assert len(set(keys)) == len(keys)
    assert all(Watch(**key._asdict()).key == key for key in keys)  # a Watch refuses bad SIDs
    installs = {key.install_sid for key in keys}
    exams = {key.exam_sid for key in keys}
    assert 1 < len(installs) < len(exams) < len(keys)
    assert make_keys(0) == []


async def test_error_faults_answer_5xx(http: aiohttp.ClientSession, start: Start) -> None:
    keys = make_keys(1)
    sim = Simulator(keys, faults=Faults(error_rate=1.0))
    base = await start(sim)
    codes = {(await get(http, base, keys[0]))[0] for _ in range(30)}
    assert codes == {500, 502, 503}
    assert sim.requests == 30


async def test_rate_limit_faults_answer_429_with_retry_after(
    http: aiohttp.ClientSession, start: Start
) -> None:
    keys = make_keys(1)
    base = await start(Simulator(keys, faults=Faults(rate_limit_rate=1.0, retry_after=7)))
    status, _, headers = await get(http, base, keys[0])
    assert (status, headers["Retry-After"]) == (429, "7")


async def test_malformed_faults_break_the_body_in_every_way(
    http: aiohttp.ClientSession, start: Start
) -> None:
    keys = make_keys(1)
    base = await start(Simulator(keys, faults=Faults(malformed_rate=1.0)))
    kinds = set()
    for _ in range(50):
        status, body, _ = await get(http, base, keys[0])
        assert status == 200
        kinds.add(malformation(body))
    assert kinds == {"not json", "mistyped", "not an object", "not a session", "no status"}


def malformation(body: bytes) -> str:
    try:
        decoded = json.loads(body)
    except ValueError:
        return "not json"
    if not isinstance(decoded, dict):
        return "not an object"
    if "sid" not in decoded:
        assert decoded == {"message": "upstream request timeout"}
        return "not a session"
    if "status" not in decoded:
        return "no status"
    assert decoded["reviewRequired"] not in (True, False, None)
    return "mistyped"


async def test_slow_faults_delay_then_answer(http: aiohttp.ClientSession, start: Start) -> None:
    keys = make_keys(1)
    base = await start(Simulator(keys, faults=Faults(slow_rate=1.0, slow_seconds=0.2)))
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert (await get(http, base, keys[0]))[0] == 200
    assert loop.time() - began >= 0.2


async def test_faults_can_be_swapped_at_run_time(http: aiohttp.ClientSession, start: Start) -> None:
    keys = make_keys(1)
    sim = Simulator(keys)
    base = await start(sim)
    assert (await get(http, base, keys[0]))[0] == 200
    sim.faults = Faults(error_rate=1.0)
    assert (await get(http, base, keys[0]))[0] >= 500
    sim.faults = Faults()
    assert (await get(http, base, keys[0]))[0] == 200


def test_set_status_code_accepts_only_error_codes() -> None:
    keys = make_keys(1)
    sim = Simulator(keys)
    for code in (200, 204, 999):
        with pytest.raises(ValueError, match=r"400-599|not a valid HTTPStatus"):
            sim.set_status_code(keys[0], code)


def test_faults_reject_rates_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match="rates"):
        Faults(error_rate=1.5)


async def test_set_body_answers_200_with_those_bytes_and_restores(
    http: aiohttp.ClientSession, start: Start
) -> None:
    keys = make_keys(2)
    sim = Simulator(keys)
    base = await start(sim)
    sim.set_body(keys[0], b'{"message": "upstream request timeout"}')
    status, body, headers = await get(http, base, keys[0])
    assert (status, body) == (200, b'{"message": "upstream request timeout"}')
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads((await get(http, base, keys[1]))[1])["sid"] == keys[1].session_sid
    sim.set_body(keys[0], None)
    assert json.loads((await get(http, base, keys[0]))[1])["sid"] == keys[0].session_sid


async def test_control_endpoints_drive_a_remote_simulator(
    http: aiohttp.ClientSession, start: Start
) -> None:
    keys = make_keys(3)
    sim = Simulator(keys)
    base = await start(sim)
    async with http.get(base + "/_sim/keys") as response:
        listed = await response.json()
    assert [SessionKey(k["installSid"], k["examSid"], k["sessionSid"]) for k in listed] == keys

    control = f"{base}/_sim/sessions/{keys[0].install_sid}/{keys[0].exam_sid}/{keys[0].session_sid}"
    async with http.put(control, json={"status": "Incident", "reviewRequired": True}) as response:
        assert response.status == 200
        assert (await response.json())["status"] == "Incident"
    served = json.loads((await get(http, base, keys[0]))[1])
    assert (served["status"], served["reviewRequired"]) == ("Incident", True)

    async with http.put(base + "/_sim/faults", json={"rate_limit_rate": 1.0}) as response:
        assert response.status == 200
    assert sim.faults == Faults(rate_limit_rate=1.0)
    assert (await get(http, base, keys[1]))[0] == 429

    async with http.delete(control) as response:
        assert response.status == 204
    sim.faults = Faults()
    assert (await get(http, base, keys[0]))[0] == 404


async def test_control_endpoints_reject_bad_requests(
    http: aiohttp.ClientSession, start: Start
) -> None:
    keys = make_keys(1)
    sim = Simulator(keys)
    base = await start(sim)
    unknown = f"{base}/_sim/sessions/AI{'0' * 32}/EX{'0' * 32}/ES{'0' * 32}"
    known = f"{base}/_sim/sessions/{keys[0].install_sid}/{keys[0].exam_sid}/{keys[0].session_sid}"
    async with http.put(unknown, json={"status": "Closed"}) as response:
        assert response.status == 404
    async with http.put(known, json=["status", "Closed"]) as response:
        assert response.status == 400
    for body in ({"error_rate": 2.0}, {"nonsense": 1}, {"retry_after": "soon"}, [1]):
        async with http.put(base + "/_sim/faults", json=body) as response:
            assert response.status == 400, body
    assert sim.faults == Faults()
    assert sim.requests == 0  # control traffic is not counted as API load


async def test_serve_yields_a_loopback_url_and_frees_the_port(http: aiohttp.ClientSession) -> None:
    keys = make_keys(1)
    async with serve(Simulator(keys)) as base:
        assert base.startswith("http://127.0.0.1:")
        assert int(base.rsplit(":", 1)[1]) > 0
        assert (await get(http, base, keys[0]))[0] == 200
    with pytest.raises(aiohttp.ClientConnectionError):
        await get(http, base, keys[0])

"""The simulator's list endpoints against a real aiohttp client on loopback."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.keys import SessionKey
from monitor.sim_sessions import fields_at, state_at
from monitor.simulator import Faults, make_keys
from tests.clockkit import HandClock
from tests.conftest import SimFactory

START = 1_795_000_000.0  # 2026-11-18, a fixed instant so fake-clock runs repeat exactly
ROW_FIELDS = {
    "sid",
    "examSid",
    "enrollmentSid",
    "status",
    "sessionType",
    "appointmentDate",
    "reviewByDate",
    "reviewCompletedDate",
    "reviewRequired",
    "sessionReportCount",
    "exam",
    "enrollment",
}
ENROLLMENT_ROW_FIELDS = {
    "sid",
    "status",
    "sessionType",
    "appointmentDate",
    "createdDate",
    "editDate",
}
ENVELOPE = {"total", "first", "next", "prev", "last", "count", "offset", "results"}


async def get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as response:
        return response.status, await response.json(content_type=None)


async def follow(http: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    """Every page from `url` to the one whose next is null."""
    pages = []
    next_url: str | None = url
    while next_url is not None:
        status, page = await get_json(http, next_url)
        assert status == 200, page
        assert page.keys() == ENVELOPE
        pages.append(page)
        next_url = page["next"]
    return pages


def appointments(base: str, install_sid: str, query: str = "") -> str:
    return f"{base}/v1/installs/{install_sid}/reports/appointments{query}"


def enrollment_list(base: str, key: SessionKey, enrollment: str, query: str = "") -> str:
    return (
        f"{base}/v1/installs/{key.install_sid}/enrollments/{enrollment}"
        f"/exams/{key.exam_sid}/sessions{query}"
    )


def control(base: str, key: SessionKey) -> str:
    return f"{base}/_sim/sessions/{key.install_sid}/{key.exam_sid}/{key.session_sid}"


def rows(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for page in pages for row in page["results"]]


def new_key(like: SessionKey, n: int) -> SessionKey:
    return SessionKey(like.install_sid, like.exam_sid, f"ES{n:032x}")


async def test_appointments_page_by_next_to_the_end(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    handle = await simulator(200, evolve=True, clock=HandClock())
    install = handle.keys[0].install_sid
    mine = {k.session_sid for k in handle.keys if k.install_sid == install}
    pages = await follow(http, appointments(handle.url, install, "?limit=7"))
    listed = [row["sid"] for row in rows(pages)]
    total = pages[0]["total"]
    assert total == sum(page["count"] for page in pages) == len(listed) == len(set(listed))
    assert 0 < total < len(mine)  # some sessions are completed at START, and drop out
    assert set(listed) <= mine
    assert [page["offset"] for page in pages] == list(range(0, total, 7))
    assert pages[0]["prev"] is None and pages[1]["prev"] == pages[0]["first"]
    assert f"offset={pages[-1]['offset']}" in pages[0]["last"]
    assert all(row.keys() == ROW_FIELDS for row in rows(pages))
    assert handle.sim.list_requests == len(pages) == handle.sim.requests


async def test_default_limit_is_25(simulator: SimFactory, http: aiohttp.ClientSession) -> None:
    handle = await simulator(400, clock=HandClock())
    _, page = await get_json(http, appointments(handle.url, handle.keys[0].install_sid))
    assert page["total"] > 25
    assert (page["count"], page["offset"]) == (25, 0)
    assert "limit=25" in page["next"] and "offset=25" in page["next"]


async def test_completed_sessions_drop_out_of_the_report(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    handle = await simulator(4, clock=HandClock())
    reviewed, unneeded, pending, processing = handle.keys
    handle.sim.set(reviewed, status="Closed", reviewRequired=True, reviewed=True)
    handle.sim.set(unneeded, status="Closed", reviewRequired=False, reviewed=False)
    handle.sim.set(pending, status="Closed", reviewRequired=True, reviewed=False)
    handle.sim.set(processing, status="Processing", reviewRequired=False, reviewed=False)
    pages = await follow(http, appointments(handle.url, reviewed.install_sid))
    assert {row["sid"] for row in rows(pages)} == {pending.session_sid, processing.session_sid}


async def test_report_rows_agree_with_the_session_get(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    clock = HandClock()
    handle = await simulator(60, evolve=True, clock=clock, change_every=30.0)
    install = handle.keys[0].install_sid
    statuses = set()
    for step in range(0, 60, 7):  # across the lifecycle, so every kind of row shows up
        clock.now = START + step
        for row in rows(await follow(http, appointments(handle.url, install, "?limit=4"))):
            key = SessionKey(install, row["examSid"], row["sid"])
            _, session = await get_json(http, handle.url + key.path)
            assert {name: session[name] for name in ROW_FIELDS - {"exam", "enrollment"}} == {
                name: row[name] for name in ROW_FIELDS - {"exam", "enrollment"}
            }
            assert row["exam"] == {
                "sid": session["examSid"],
                "title": session["exam"],
                "courseName": session["course"],
            }
            assert row["enrollment"] == {"sid": session["enrollmentSid"]}
            statuses.add(row["status"])
    assert len(statuses) >= 3


async def test_sessions_of_one_exam_share_its_title_and_course(simulator: SimFactory) -> None:
    handle = await simulator(100, clock=HandClock())
    names: dict[str, set[tuple[object, object]]] = {}
    for key in handle.keys:
        payload = handle.sim.payload(key)
        names.setdefault(key.exam_sid, set()).add((payload["exam"], payload["course"]))
        assert str(payload["enrollmentSid"]).startswith("EN")
        assert len(str(payload["enrollmentSid"])) == 34
        int(str(payload["enrollmentSid"])[2:], 16)
    assert all(len(titles) == 1 for titles in names.values())
    assert len({next(iter(titles)) for titles in names.values()}) > 1


async def test_enrollment_list_filters_by_status_and_include_active(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    handle = await simulator(9, clock=HandClock())
    live, booked, closed = handle.keys[:3]  # neighbours in one exam: one student's retakes
    enrollment = str(handle.sim.payload(live)["enrollmentSid"])
    assert {handle.sim.payload(k)["enrollmentSid"] for k in (booked, closed)} == {enrollment}
    handle.sim.set(live, status="Needs Proctor")
    handle.sim.set(booked, status="Scheduled")
    handle.sim.set(closed, status="Closed")

    async def sids(query: str, of: str = enrollment) -> set[str]:
        pages = await follow(http, enrollment_list(handle.url, live, of, query))
        assert all(row.keys() == ENROLLMENT_ROW_FIELDS for row in rows(pages))
        return {row["sid"] for row in rows(pages)}

    every = {k.session_sid for k in (live, booked, closed)}
    assert await sids("") == every - {live.session_sid}
    assert await sids("?includeActive=false") == every - {live.session_sid}
    assert await sids("?includeActive=true") == every
    assert await sids("?status[]=Closed") == {closed.session_sid}
    assert await sids("?status[]=Needs%20Proctor") == set()
    assert await sids("?status[]=Needs%20Proctor&status[]=Closed&includeActive=TRUE") == {
        live.session_sid,
        closed.session_sid,
    }
    other = str(handle.sim.payload(handle.keys[3])["enrollmentSid"])
    assert other != enrollment
    assert not await sids("?includeActive=true", of=other) & every


async def test_enrollment_rows_agree_with_the_session_get(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    clock = HandClock()
    handle = await simulator(30, evolve=True, clock=clock, change_every=30.0)
    for step in range(0, 40, 9):
        clock.now = START + step
        for key in handle.keys:
            session = handle.sim.payload(key)
            url = enrollment_list(
                handle.url, key, str(session["enrollmentSid"]), "?includeActive=1"
            )
            found = [row for row in rows(await follow(http, url)) if row["sid"] == key.session_sid]
            assert found == [{name: session[name] for name in ENROLLMENT_ROW_FIELDS}]


async def test_retakes_added_through_the_control_api_page_in_order(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    handle = await simulator(1, clock=HandClock())
    first = handle.keys[0]
    enrollment = "EN" + "ab" * 16
    retakes = [new_key(first, n) for n in range(1, 8)]
    for key in retakes:
        async with http.post(control(handle.url, key), json={"enrollmentSid": enrollment}) as r:
            assert r.status == 201
            assert (await r.json())["enrollmentSid"] == enrollment
        handle.sim.set(key, status="Scheduled")
    pages = await follow(http, enrollment_list(handle.url, first, enrollment, "?limit=3"))
    assert [page["count"] for page in pages] == [3, 3, 1]
    assert [row["sid"] for row in rows(pages)] == [k.session_sid for k in retakes]
    async with http.get(handle.url + "/_sim/keys") as response:
        listed = await response.json()
    assert [entry["enrollmentSid"] for entry in listed[1:]] == [enrollment] * len(retakes)


async def test_a_session_added_and_one_removed_between_pages(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    handle = await simulator(1, clock=HandClock())
    first = handle.keys[0]
    for n in range(1, 10):
        handle.sim.add(new_key(first, n))
        handle.sim.set(new_key(first, n), status="Scheduled")
    handle.sim.set(first, status="Scheduled")
    url = appointments(handle.url, first.install_sid, "?limit=4")
    _, page_one = await get_json(http, url)
    assert page_one["total"] == 10
    late = new_key(first, 99)
    async with http.post(control(handle.url, late)) as response:
        assert response.status == 201
    async with http.put(control(handle.url, late), json={"status": "Scheduled"}) as response:
        assert response.status == 200
    async with http.delete(control(handle.url, new_key(first, 1))) as response:
        assert response.status == 204
    later = await follow(http, page_one["next"])
    seen = [row["sid"] for row in page_one["results"] + rows(later)]
    assert later[-1]["total"] == 10  # one in, one out
    assert late.session_sid in seen  # oldest first: the newcomer is on the last page
    # An offset over a live set skips a row when an earlier one leaves (and would repeat one
    # when a row arrives ahead of it): why discovery never drops a watch a list left out.
    assert new_key(first, 4).session_sid not in seen
    assert len(seen) == len(set(seen)) == 10
    _, beyond = await get_json(http, url.replace("limit=4", "limit=4&offset=500"))
    assert (beyond["count"], beyond["results"], beyond["next"]) == (0, [], None)
    assert "offset=8" in beyond["last"] and "offset=496" in beyond["prev"]


async def test_unknown_install_and_enrollment_list_nothing(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    handle = await simulator(3)
    for url in (
        appointments(handle.url, "AI" + "0" * 32),
        enrollment_list(handle.url, handle.keys[0], "EN" + "0" * 32),
    ):
        status, page = await get_json(http, url)
        assert status == 200
        assert (page["total"], page["count"], page["results"]) == (0, 0, [])
        assert (page["next"], page["prev"]) == (None, None)
        assert "offset=0" in page["last"]


async def test_links_keep_the_filters_and_unknown_parameters(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    handle = await simulator(1, clock=HandClock())
    first = handle.keys[0]
    enrollment = "EN" + "cd" * 16
    for n in range(1, 6):
        handle.sim.add(new_key(first, n), enrollment_sid=enrollment)
        handle.sim.set(new_key(first, n), status="Closed" if n % 2 else "Scheduled")
    query = "?status[]=Closed&status[]=Scheduled&sortKeys=[createdDate]&limit=2"
    pages = await follow(http, enrollment_list(handle.url, first, enrollment, query))
    assert sum(page["count"] for page in pages) == 5
    for page in pages[:-1]:
        assert page["next"].count("status%5B%5D=") == 2
        assert "sortKeys=" in page["next"]


@pytest.mark.parametrize(
    "query",
    ["?offset=-1", "?limit=0", "?limit=many", "?offset=1.5", "?includeActive=maybe"],
)
async def test_bad_list_parameters_are_400_invalidinput(
    simulator: SimFactory, http: aiohttp.ClientSession, query: str
) -> None:
    handle = await simulator(1)
    key = handle.keys[0]
    for url in (
        appointments(handle.url, key.install_sid, query),
        enrollment_list(handle.url, key, "EN" + "0" * 32, query),
    ):
        status, body = await get_json(http, url)
        assert status == 400
        assert body["code"] == "INVALIDINPUT"
        assert query.split("=")[0].strip("?") in body["message"]


async def test_error_and_rate_limit_faults_apply_to_list_pages(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    handle = await simulator(3, faults=Faults(error_rate=1.0))
    url = appointments(handle.url, handle.keys[0].install_sid)
    codes = {(await get_json(http, url))[0] for _ in range(30)}
    assert codes == {500, 502, 503}
    handle.sim.faults = Faults(rate_limit_rate=1.0, retry_after=4)
    async with http.get(url) as response:
        assert (response.status, response.headers["Retry-After"]) == (429, "4")
    handle.sim.faults = Faults(slow_rate=1.0, slow_seconds=0.01)
    assert (await get_json(http, url))[0] == 200


async def test_malformed_faults_break_list_pages_in_every_way(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    handle = await simulator(3, faults=Faults(malformed_rate=1.0), clock=HandClock())
    url = appointments(handle.url, handle.keys[0].install_sid)
    kinds = set()
    for _ in range(60):
        async with http.get(url) as response:
            assert response.status == 200
            kinds.add(page_malformation(await response.read()))
    assert kinds == {"not json", "not a page", "mistyped total", "no results", "not a session"}


def page_malformation(body: bytes) -> str:
    try:
        page = json.loads(body)
    except ValueError:
        return "not json"
    if "results" not in page:
        assert page == {"message": "upstream request timeout"}
        return "not a page"
    if not isinstance(page["total"], int):
        return "mistyped total"
    if page["results"] is None:
        return "no results"
    assert all("sid" not in row for row in page["results"])
    return "not a session"


async def test_paging_under_faults_still_finds_every_listed_session(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    """What discovery relies on: retrying a failed page and following next loses nothing."""
    handle = await simulator(200, clock=HandClock())
    install = handle.keys[0].install_sid
    expected = {row["sid"] for row in rows(await follow(http, appointments(handle.url, install)))}
    handle.sim.faults = Faults(error_rate=0.3, rate_limit_rate=0.2, retry_after=0)
    found: set[str] = set()
    url: str | None = appointments(handle.url, install, "?limit=5")
    failures = 0
    while url is not None:
        status, page = await get_json(http, url)
        if status != 200:
            failures += 1
            continue
        found |= {row["sid"] for row in page["results"]}
        url = page["next"]
    assert found == expected
    assert failures > 0


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    index=st.integers(0, 10**6),
    now=st.floats(1e9, 3e9, allow_nan=False),
    change_every=st.floats(1.0, 1e5),
)
def test_state_at_agrees_with_fields_at(
    seed: int, index: int, now: float, change_every: float
) -> None:
    key = make_keys(1, seed=seed)[0]
    fields = fields_at(seed, index, key, now, change_every)
    state = state_at(seed, index, now, change_every)
    assert state == (fields["status"], fields["reviewRequired"], fields["reviewed"])


async def test_adding_sessions_through_the_control_api_rejects_bad_requests(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    handle = await simulator(1)
    known = control(handle.url, handle.keys[0])
    fresh = control(handle.url, new_key(handle.keys[0], 1))
    async with http.post(known) as response:
        assert response.status == 409
    for body in (b"[1]", b"{not json", b'{"enrollmentSid": 7}'):
        async with http.post(fresh, data=body) as response:
            assert response.status == 400, body
    with pytest.raises(ValueError, match="exists"):
        handle.sim.add(handle.keys[0])
    assert len(handle.keys) == 1
    async with http.delete(fresh) as response:
        assert response.status == 404


async def test_an_overridden_enrollment_moves_the_session_between_lists(
    simulator: SimFactory, http: aiohttp.ClientSession
) -> None:
    handle = await simulator(3, clock=HandClock())
    key = handle.keys[0]
    before = str(handle.sim.payload(key)["enrollmentSid"])
    handle.sim.set(key, status="Scheduled")
    listed = rows(await follow(http, enrollment_list(handle.url, key, before)))
    assert key.session_sid in {row["sid"] for row in listed}
    moved = "EN" + "ef" * 16
    handle.sim.set(key, enrollmentSid=moved)
    listed = rows(await follow(http, enrollment_list(handle.url, key, before)))
    assert key.session_sid not in {row["sid"] for row in listed}
    listed = rows(await follow(http, enrollment_list(handle.url, key, moved)))
    assert [row["sid"] for row in listed] == [key.session_sid]

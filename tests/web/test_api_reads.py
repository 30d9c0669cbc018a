"""/api/v1 reads over HTTP from a running service polling the simulator: filters, sorting,
paging, one session, its history, the summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.core.events import isoformat
from tests.web.conftest import ADMIN, RunFactory, call, until


async def seen_all(run, n: int) -> bool:
    status, _, page = await call("GET", run.base + "/sessions", headers=run.headers())
    return status == 200 and sum(item["seen"] for item in page["items"]) == n


async def test_sessions_filter_sort_and_page_through_http(running: RunFactory) -> None:
    run = await running(4)
    late, later, soon, calm = run.sim.keys
    now = datetime.now(UTC)
    review = {"reviewRequired": True, "reviewed": False, "status": "Closed"}
    run.sim.sim.set(late, **review, reviewByDate=isoformat(now - timedelta(hours=1)))
    run.sim.sim.set(later, **review, reviewByDate=isoformat(now - timedelta(hours=5)))
    run.sim.sim.set(soon, **review, reviewByDate=isoformat(now + timedelta(hours=2)))
    run.sim.sim.set(calm, status="Closed", reviewRequired=False, reviewed=False, reviewByDate=None)
    await until(lambda: seen_all(run, 4))
    h = run.headers()

    status, _, page = await call("GET", run.base + "/sessions?overdue=true", headers=h)
    assert status == 200
    assert page["total"] == 2
    assert [i["session_sid"] for i in page["items"]] == [later.session_sid, late.session_sid]
    assert page["items"][0]["lateness_seconds"] > page["items"][1]["lateness_seconds"]

    _, _, page = await call("GET", run.base + "/sessions?sort=deadline&limit=2", headers=h)
    assert page["total"] == 4 and page["limit"] == 2
    assert [i["session_sid"] for i in page["items"]] == [later.session_sid, late.session_sid]
    _, _, rest = await call("GET", run.base + "/sessions?sort=deadline&offset=2", headers=h)
    assert [i["session_sid"] for i in rest["items"]] == [soon.session_sid, calm.session_sid]

    _, _, page = await call("GET", run.base + "/sessions?due_within=24h", headers=h)
    assert [i["session_sid"] for i in page["items"]] == [soon.session_sid]
    url = run.base + "/sessions?label=course:BIO101&status=closed&q=" + calm.session_sid[2:10]
    _, _, page = await call("GET", url, headers=h)
    assert [i["session_sid"] for i in page["items"]] == [calm.session_sid]
    _, _, page = await call("GET", run.base + "/sessions?label=course:CHEM201", headers=h)
    assert page["total"] == 0
    _, _, page = await call("GET", run.base + "/sessions?phase=awaiting_review", headers=h)
    assert {i["session_sid"] for i in page["items"]} >= {late.session_sid}

    _, _, summary = await call("GET", run.base + "/summary", headers=h)
    assert summary["running"] is True and summary["overdue_known"] is True
    assert (summary["watched"], summary["overdue"], summary["due_soon"]) == (4, 2, 1)


async def test_bad_parameters_name_the_field_and_unknown_sids_are_404(running: RunFactory) -> None:
    run = await running(1)
    h = run.headers()
    for query, field in [
        ("phase=busy", "phase"),
        ("overdue=maybe", "overdue"),
        ("limit=-1", "limit"),
        ("limit=100000", "limit"),
        ("due_within=soon", "due_within"),
        ("label=course", "label"),
        ("sort=random", "sort"),
    ]:
        status, _, body = await call("GET", f"{run.base}/sessions?{query}", headers=h)
        assert (status, body["field"]) == (400, field), query
        assert "busy" not in body["error"] and "maybe" not in body["error"]
    unknown = "ES" + "0" * 32
    for path in (f"/sessions/{unknown}", f"/sessions/{unknown}/history"):
        status, _, body = await call("GET", run.base + path, headers=h)
        assert status == 404 and body == {"error": "no such session"}
    status, _, body = await call("GET", run.base + "/sessions/nope", headers=h)
    assert (status, body["field"]) == (400, "sid")
    status, _, body = await call("GET", run.base + "/nothing-here", headers=h)
    assert (status, body) == (404, {"error": "not found"})


async def test_one_session_and_its_history_with_deliveries(running: RunFactory) -> None:
    run = await running(1)
    (key,) = run.sim.keys
    await until(lambda: seen_all(run, 1))
    run.sim.sim.set(key, status="Incident")

    async def changed() -> bool:
        _, _, doc = await call(
            "GET", f"{run.base}/sessions/{key.session_sid}/history", headers=run.headers()
        )
        return any(
            t["type"] == "session.status_changed" and t["deliveries"] for t in doc["transitions"]
        )

    await until(changed)
    _, _, doc = await call("GET", f"{run.base}/sessions/{key.session_sid}", headers=run.headers())
    assert doc["status"] == "Incident" and doc["labels"] == {"course": "BIO101"}
    _, _, history = await call(
        "GET", f"{run.base}/sessions/{key.session_sid}/history", headers=run.headers()
    )
    assert history["session"]["session_sid"] == key.session_sid
    moved = next(t for t in history["transitions"] if t["type"] == "session.status_changed")
    assert (moved["field"], moved["current"]) == ("status", "Incident")
    (delivery,) = moved["deliveries"]
    assert delivery["sink"] == "log" and delivery["attempts"] >= 0
    assert ADMIN not in repr(history)

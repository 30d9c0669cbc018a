"""/api/v1 writes against a running service: watches added, changed and removed take effect
in the running poller at once (same process, no reload), survive a restart and a reconcile;
a CSV import is all or nothing; dead deliveries are retried."""

from __future__ import annotations

from monitor import service
from monitor.store import read_watches
from tests.sinks.sinkkit import scripted
from tests.web.conftest import RunFactory, call, until


def watch_body(key, **extra) -> dict:
    return {**key._asdict(), **extra}


async def test_a_watch_added_through_the_api_is_polled_at_once(running: RunFactory) -> None:
    run = await running(3, watched=1)
    _, new, other = run.sim.keys
    entries = run.svc.watchset.entries
    status, _, body = await call(
        "POST", run.base + "/watches", headers=run.headers(),
        json=watch_body(new, labels={"course": "CHEM201"}, interval="2s"),
    )  # fmt: skip
    assert status == 201 and body["created"] is True
    assert body["watch"]["source"] == "api" and body["watch"]["interval"] == 2.0
    assert new in entries  # the running poller's own watch set, before any reload

    async def polled() -> bool:
        _, _, doc = await call(
            "GET", f"{run.base}/sessions/{new.session_sid}", headers=run.headers()
        )
        return doc["seen"] is True

    await until(polled)
    _, _, page = await call(
        "GET", run.base + "/sessions?label=course:CHEM201", headers=run.headers()
    )
    assert [i["session_sid"] for i in page["items"]] == [new.session_sid]

    status, _, body = await call(
        "PATCH", f"{run.base}/watches/{new.session_sid}", headers=run.headers(),
        json={"labels": {"course": "HIST110"}},
    )  # fmt: skip
    assert status == 200 and body["watch"]["labels"] == {"course": "HIST110"}
    assert body["watch"]["interval"] == 2.0 and entries[new].labels == {"course": "HIST110"}

    status, _, body = await call(
        "DELETE", f"{run.base}/watches/{new.session_sid}", headers=run.headers()
    )
    assert status == 200 and body["removed"]["session_sid"] == new.session_sid
    assert new not in entries
    status, _, _ = await call(
        "DELETE", f"{run.base}/watches/{other.session_sid}", headers=run.headers()
    )
    assert status == 404


async def test_bad_watch_bodies_name_the_field(running: RunFactory) -> None:
    run = await running(1)
    key = run.sim.keys[0]
    for body, field in [
        ({"exam_sid": key.exam_sid, "session_sid": key.session_sid}, "install_sid"),
        (watch_body(key, session_sid="ES123"), "session_sid"),
        (watch_body(key, labels=["a"]), "labels"),
        (watch_body(key, interval=-5), "interval"),
        (watch_body(key, colour="red"), "colour"),
    ]:
        status, _, got = await call("POST", run.base + "/watches", headers=run.headers(), json=body)
        assert (status, got["field"]) == (422, field)
    status, _, got = await call(
        "POST", run.base + "/watches", headers={**run.headers(), "Content-Type": "application/json"},
        data="{not json",
    )  # fmt: skip
    assert (status, got["field"]) == (400, "body")


async def test_api_watches_survive_a_restart_and_a_reconcile(running: RunFactory, tmp_path) -> None:
    run = await running(3, watched=1)
    csv = "install_sid,exam_sid,session_sid,course\n" + "".join(
        f"{k.install_sid},{k.exam_sid},{k.session_sid},MATH150\n" for k in run.sim.keys[1:]
    )
    status, _, body = await call(
        "POST", run.base + "/watches/import", data=csv,
        headers={**run.headers(), "Content-Type": "text/csv"},
    )  # fmt: skip
    assert (status, body) == (200, {"added": 2, "updated": 0, "same": 0})
    assert all(k in run.svc.watchset.entries for k in run.sim.keys)
    status, _, body = await call(
        "POST", run.base + "/watches/import", data="install_sid,exam_sid,session_sid\nAI1,EX2,ES3\n",
        headers={**run.headers(), "Content-Type": "text/csv"},
    )  # fmt: skip
    assert status == 422 and body["problems"]
    path = run.svc.settings.state.path

    # A reload reconciles the configured sources (none list them): they stay.
    await run.svc.watching.apply(run.svc.settings)
    assert all(k in run.svc.watchset.entries for k in run.sim.keys)

    # Restarted with the same configuration: the store's watches come back, api ones too.
    await run.stop()
    async with service.build(run.svc.settings, serve_http=False) as again:
        assert all(k in again.watchset.entries for k in run.sim.keys)
    async with read_watches(path) as store:
        stored = await store.active_watches()
    assert {w.source for w in stored.values()} == {"inline", "api"}


async def test_dead_deliveries_are_retried_through_the_api(running: RunFactory, endpoint) -> None:
    receiver = await endpoint(scripted(400))
    run = await running(
        1,
        sinks=[{"name": "hook", "type": "webhook", "url": receiver.url + "/hook",
                "allow_private": True, "unsigned": True, "events": ["session.*"]}],
    )  # fmt: skip
    (key,) = run.sim.keys

    async def seen() -> bool:
        _, _, doc = await call(
            "GET", f"{run.base}/sessions/{key.session_sid}", headers=run.headers()
        )
        return doc["seen"]

    await until(seen)
    run.sim.sim.set(key, status="Incident")

    async def dead() -> bool:
        _, _, doc = await call("GET", run.base + "/outbox?state=dead", headers=run.headers())
        return bool(doc["items"])

    await until(dead)
    _, _, doc = await call("GET", run.base + "/outbox?state=dead", headers=run.headers())
    (row,) = doc["items"]
    assert row["sink"] == "hook" and row["session_sid"] == key.session_sid
    status, _, body = await call(
        "POST", run.base + "/outbox/retry", headers=run.headers(), json={"ids": [row["id"]]}
    )
    assert (status, body) == (200, {"requeued": 1, "pending": False})
    await receiver.until(lambda r: len(r.hits) == 2, within=10)
    assert receiver.ids()[0] == receiver.ids()[1]  # the same event id, redelivered

    async def delivered() -> bool:
        _, _, doc = await call(
            "GET", f"{run.base}/sessions/{key.session_sid}/history", headers=run.headers()
        )
        return any(d["state"] == "delivered" for t in doc["transitions"] for d in t["deliveries"])

    await until(delivered)
    status, _, body = await call("POST", run.base + "/outbox/retry", headers=run.headers(), json={})
    assert (status, body["field"]) == (422, "ids")

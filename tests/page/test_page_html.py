"""The status page as HTML over HTTP, without a browser: a real service on loopback (FakeClock)
over the simulator, read with aiohttp. Escaping, headers, status codes, and the one promise:
while spmon cannot see, the page never says nothing is overdue."""

from __future__ import annotations

import asyncio
import base64
import re
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web

from monitor.simulator import Faults
from tests.clockkit import T0
from tests.page.pagekit import calm, overdue_by, truth_overdue
from tests.servicekit import TOKEN, clock, make_service, simulator
from tests.sinks.sinkkit import Hit

__all__ = ["clock", "make_service", "simulator"]  # fixtures, re-exported for pytest

EVIL = '<script>alert("x")</script>'


async def fetch(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str], str]:
    async with http.get(url) as resp:
        return resp.status, dict(resp.headers), await resp.text()


def rows(html: str, table: str) -> list[str]:
    """The session SIDs of one table's rows, in order."""
    body = html.split(f'<table id="{table}">', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr data-sid="([^"]+)">', body)


async def test_overdue_rows_follow_the_simulator_most_late_first(
    simulator, make_service, http: aiohttp.ClientSession
) -> None:
    sim = await simulator(5)
    a, b, c, d, e = sim.keys
    overdue_by(sim.sim, a, timedelta(hours=1))
    overdue_by(sim.sim, b, timedelta(days=2, hours=3))
    overdue_by(sim.sim, c, timedelta(minutes=5))
    sim.sim.set(d, reviewRequired=True, reviewed=False,
                reviewByDate=(T0 + timedelta(hours=5)).isoformat())  # fmt: skip
    calm(sim.sim, e)
    svc = await make_service(sim.url, sim.keys)
    await svc.poller.poll_all()
    status, headers, html = await fetch(http, f"http://{svc.address}/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert rows(html, "overdue") == truth_overdue(sim.sim, T0)
    assert rows(html, "overdue") == [b.session_sid, a.session_sid, c.session_sid]
    assert rows(html, "due") == [d.session_sid]
    assert "3 reviews overdue" in html and "2d 3h" in html
    assert f'href="/sessions/{b.session_sid}"' in html
    assert f'href="https://proctoring.example.com/sessions/{b.session_sid}"' in html
    assert TOKEN not in html and "accessKey" not in html
    assert sim.sim.payload(a)["accessKey"] not in html  # never shown: not in the read model


async def test_headers_forbid_script_and_sniffing(
    simulator, make_service, http: aiohttp.ClientSession
) -> None:
    sim = await simulator(1)
    svc = await make_service(sim.url, sim.keys)
    for path in (
        "/",
        "/sessions?list=all",
        f"/sessions/{sim.keys[0].session_sid}",
        "/sessions/ES0",
    ):
        _, headers, _ = await fetch(http, f"http://{svc.address}{path}")
        assert headers["Content-Security-Policy"].startswith("default-src 'none';")
        assert "script-src" not in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "Set-Cookie" not in headers


async def test_labels_from_a_csv_are_escaped(
    simulator, make_service, http: aiohttp.ClientSession
) -> None:
    sim = await simulator(1)
    (key,) = sim.keys
    overdue_by(sim.sim, key, timedelta(hours=1))
    svc = await make_service(
        sim.url, sim.keys, labels={key.session_sid: {"course": EVIL, "exam": "a&b", "x": '"><i>'}}
    )
    await svc.poller.poll_all()
    for path in ("/", f"/sessions/{key.session_sid}", "/sessions?list=overdue"):
        _, _, html = await fetch(http, f"http://{svc.address}{path}")
        assert "<script" not in html and "<i>" not in html
    _, _, html = await fetch(http, f"http://{svc.address}/")
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html and "a&amp;b" in html


async def test_unseen_sessions_are_never_good_news(
    simulator, make_service, clock, http: aiohttp.ClientSession
) -> None:
    sim = await simulator(2)
    for key in sim.keys:
        calm(sim.sim, key)
    svc = await make_service(sim.url, sim.keys)
    _, _, html = await fetch(http, f"http://{svc.address}/")  # nothing polled yet
    assert "2 of 2 sessions not seen yet" in html
    assert "Overdue reviews: unknown" in html
    assert "No reviews overdue" not in html and "0 overdue" not in html
    await svc.poller.poll_all()
    _, _, html = await fetch(http, f"http://{svc.address}/")
    assert "No reviews overdue" in html and "cannot see" not in html


async def test_a_rejected_token_is_said_prominently(
    simulator, make_service, http: aiohttp.ClientSession
) -> None:
    sim = await simulator(1, token="another-token")
    calm(sim.sim, sim.keys[0])
    svc = await make_service(sim.url, sim.keys)
    await svc.poller.poll_all()
    _, _, html = await fetch(http, f"http://{svc.address}/")
    assert "rejects spmon&#39;s credentials" in html
    assert "No reviews overdue" not in html and "0 overdue" not in html


async def test_a_session_page_shows_its_history_and_deliveries(
    simulator, make_service, clock, http: aiohttp.ClientSession
) -> None:
    sim = await simulator(1)
    (key,) = sim.keys
    calm(sim.sim, key)
    svc = await make_service(sim.url, sim.keys, http={"page_timezone": "Europe/Berlin"})
    await svc.poller.poll_all()
    overdue_by(sim.sim, key, timedelta(minutes=30), now=T0 + timedelta(minutes=1))
    clock.advance(60)
    await svc.poller.poll_all()
    await svc.dispatcher.drain(deadline=5)
    status, _, html = await fetch(http, f"http://{svc.address}/sessions/{key.session_sid}")
    assert status == 200
    events = re.findall(r'<li data-event="([^"]+)">', html)
    assert "session.status_changed" in events and events[-1] == "review.overdue"
    assert "status: Scheduled → Closed" in html
    assert '<th scope="row">alerts</th>' in html and ">delivered<" in html
    assert "2026-03-01 13:01 CET" in html  # observed 12:01 UTC, shown in the display zone
    assert "yes, 30m late" in html


async def test_unknown_sessions_and_lists_are_404_pages(
    simulator, make_service, http: aiohttp.ClientSession
) -> None:
    sim = await simulator(1)
    svc = await make_service(sim.url, sim.keys)
    evil = quote("ES<img src=x onerror=alert(1)>", safe="")
    status, headers, html = await fetch(http, f"http://{svc.address}/sessions/{evil}")
    assert status == 404 and headers["Content-Type"].startswith("text/html")
    assert "is not known to spmon" in html and "<img" not in html and "&lt;img" in html
    assert (await fetch(http, f"http://{svc.address}/sessions?list=nope"))[0] == 404
    assert (await fetch(http, f"http://{svc.address}/sessions?list=all&offset=x"))[0] == 200
    async with http.post(f"http://{svc.address}/") as resp:
        assert resp.status == 405


async def test_long_lists_are_cut_with_a_count_and_a_link(
    simulator, make_service, http: aiohttp.ClientSession
) -> None:
    sim = await simulator(30)
    for i, key in enumerate(sim.keys):
        overdue_by(sim.sim, key, timedelta(minutes=10 + i))
    svc = await make_service(sim.url, sim.keys)
    await svc.poller.poll_all()
    _, _, html = await fetch(http, f"http://{svc.address}/")
    assert len(rows(html, "overdue")) == 25
    assert "Showing 25 of 30" in html and 'href="/sessions?list=overdue"' in html
    _, _, html = await fetch(http, f"http://{svc.address}/sessions?list=overdue&offset=20")
    assert rows(html, "sessions") == truth_overdue(sim.sim, T0)[20:]
    assert "Previous 100" in html and "Next 100" not in html


@pytest.mark.parametrize("refresh", [0, 45])
async def test_refresh_is_configurable_and_can_be_paused(
    simulator, make_service, http: aiohttp.ClientSession, refresh: int
) -> None:
    sim = await simulator(1, faults=Faults())
    svc = await make_service(sim.url, sim.keys, http={"page_refresh": refresh})
    _, headers, html = await fetch(http, f"http://{svc.address}/sessions?list=due")
    assert headers.get("Refresh") == (str(refresh) if refresh else None)
    assert ('href="/sessions?list=due&amp;refresh=off"' in html) is bool(refresh)
    _, headers, html = await fetch(http, f"http://{svc.address}/sessions?list=due&refresh=off")
    assert "Refresh" not in headers
    assert ('href="/sessions?list=due" id="resume"' in html) is bool(refresh)
    _, headers, _ = await fetch(http, f"http://{svc.address}/sessions/ES0")
    assert "Refresh" not in headers  # a 404 does not reload itself


async def test_spmon_demo_serves_the_page(http: aiohttp.ClientSession, tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    with log.open("wb") as sink:  # a file, not a pipe: an unread pipe would stall the demo
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor", "demo", "--sessions", "4", "--interval", "1",
            stdout=asyncio.subprocess.DEVNULL, stderr=sink,
        )  # fmt: skip
    try:
        async with asyncio.timeout(20):
            while not (found := re.search(r"status page on (http://\S+/);", log.read_text())):
                assert process.returncode is None, log.read_text()
                await asyncio.sleep(0.1)
            while "4 of 4 sessions not seen yet" in (html := (await fetch(http, found[1]))[2]):
                await asyncio.sleep(0.2)
        assert "<h1>spmon status</h1>" in html and "Reviews due in the next 24 hours" in html
    finally:
        process.terminate()
        await process.wait()


async def test_a_failed_delivery_shows_its_outcome_and_never_the_sink_url(
    simulator, make_service, endpoint, http: aiohttp.ClientSession
) -> None:
    async def refuse(_hit: Hit) -> web.StreamResponse:
        return web.Response(status=400, text="no such hook")

    hook = await endpoint(refuse)
    secret_path = "hook/T0KEN-in-the-path-8c1f"
    sink = {
        "name": "hook", "type": "webhook", "url": f"{hook.url}/{secret_path}",
        "allow_private": True, "unsigned": True, "events": ["review.*"],
    }  # fmt: skip
    sim = await simulator(1)
    (key,) = sim.keys
    overdue_by(sim.sim, key, timedelta(hours=1))
    svc = await make_service(sim.url, sim.keys, sinks=[sink])
    await svc.poller.poll_all()
    await svc.dispatcher.drain(deadline=5)
    _, _, page = await fetch(http, f"http://{svc.address}/sessions/{key.session_sid}")
    assert ">dead<" in page and "400" in page
    _, _, status = await fetch(http, f"http://{svc.address}/")
    for html in (page, status):
        assert secret_path not in html and "T0KEN" not in html and hook.url not in html


async def test_the_page_reads_like_the_api_reads(
    simulator, make_service, http: aiohttp.ClientSession
) -> None:
    """`admin.read: token`: a browser is asked for the admin token as a Basic password (no
    script, no cookie); with no admin token at all the page is off, never open by accident."""
    sim = await simulator(1)
    admin = "a-long-admin-token-0123456789"
    svc = await make_service(sim.url, sim.keys, admin={"read": "token", "token": admin})
    status, headers, body = await fetch(http, f"http://{svc.address}/")
    assert status == 401 and headers["WWW-Authenticate"].startswith('Basic realm="spmon"')
    assert admin not in body
    for password, status in ((admin, 200), ("wrong", 401)):
        basic = base64.b64encode(f"anyone:{password}".encode()).decode()
        headers = {"Authorization": f"Basic {basic}"}
        async with http.get(f"http://{svc.address}/sessions?list=all", headers=headers) as resp:
            assert resp.status == status
    bearer = {"Authorization": f"Bearer {admin}"}
    async with http.get(f"http://{svc.address}/", headers=bearer) as resp:
        assert resp.status == 200
    async with http.get(f"http://{svc.address}/metrics") as resp:
        assert resp.status == 200  # Prometheus scrapes without a token, as before


async def test_with_no_admin_token_a_token_read_page_is_off(
    simulator, make_service, http: aiohttp.ClientSession
) -> None:
    sim = await simulator(1)
    off = await make_service(sim.url, sim.keys, admin={"read": "token"})
    status, _, body = await fetch(http, f"http://{off.address}/")
    assert status == 403 and "admin.read: open" in body

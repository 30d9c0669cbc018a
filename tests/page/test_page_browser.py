"""The status page in a real headless Chromium: a running spmon polling the simulator
(FakeClock, so "now" is the simulator's truth too), read, clicked through, photographed at
desktop and phone widths, and checked by axe-core for serious and critical violations."""

from __future__ import annotations

from datetime import timedelta

from tests.clockkit import T0
from tests.page.browserkit import DESKTOP, PHONE, Browser, browser, serious
from tests.page.pagekit import calm, overdue_by, truth_overdue
from tests.servicekit import clock, make_service, simulator

__all__ = ["browser", "clock", "make_service", "simulator"]  # fixtures, re-exported for pytest


async def check_page(browser: Browser, name: str) -> None:
    """Screenshots at both widths; no serious axe violation at either; no sideways page."""
    for width_height in (DESKTOP, PHONE):
        await browser.size(width_height)
        shot = await browser.screenshot(name, width_height)
        assert shot.stat().st_size > 0
        found = serious(await browser.axe())
        assert found == [], f"{name} at {width_height[0]} px: {found}"
        assert await browser.overflow() <= 0, f"{name} scrolls sideways at {width_height[0]} px"
    await browser.size(DESKTOP)


async def test_overdue_rows_match_the_simulator_and_click_through_to_history(
    simulator, make_service, browser: Browser
) -> None:
    sim = await simulator(6)
    keys = sim.keys
    for key, late in zip(keys[:4], (3600, 86400 * 2, 300, 7200 * 6), strict=True):
        overdue_by(sim.sim, key, timedelta(seconds=late))
    sim.sim.set(keys[4], reviewRequired=True, reviewed=False,
                reviewByDate=(T0 + timedelta(hours=2)).isoformat())  # fmt: skip
    calm(sim.sim, keys[5])
    labels = {keys[0].session_sid: {"course": "<script>alert(1)</script>", "exam": "Final"}}
    svc = await make_service(sim.url, keys, labels=labels)
    base = f"http://{svc.address}"

    await browser.get(base + "/")  # nothing polled yet: blind, and says so
    assert "6 of 6 sessions not seen yet" in " ".join(await browser.texts(".blind li"))
    assert await browser.texts("#overdue-heading") == ["Overdue reviews: unknown"]
    await check_page(browser, "status-unseen")

    await svc.poller.poll_all()
    await svc.dispatcher.drain(deadline=5)
    await browser.get(base + "/")
    expected = truth_overdue(sim.sim, T0)
    assert len(expected) == 4
    assert await browser.attrs("#overdue tbody tr", "data-sid") == expected
    assert await browser.attrs("#due tbody tr", "data-sid") == [keys[4].session_sid]
    assert await browser.texts("#overdue tbody tr td.late") == ["2d", "12h", "1h", "5m"]
    assert await browser.texts("#overdue-heading") == ["4 reviews overdue"]
    assert "<script>alert(1)</script>" in await browser.texts("#overdue tbody td")  # as text
    assert await browser.texts(".blind") == []
    await check_page(browser, "status")

    await browser.click(f'#overdue a[href="/sessions/{expected[0]}"]')
    assert expected[0] in (await browser.texts("h1"))[0]
    events = await browser.attrs("#timeline > li", "data-event")
    assert events[-1] == "review.overdue"
    assert (await browser.texts("#overdue"))[0].startswith("yes, 2d late")
    deliveries = await browser.texts("#timeline > li:last-child table.deliveries tbody tr")
    assert deliveries and deliveries[0].startswith("alerts delivered 1")
    await check_page(browser, "session")

    await browser.get(base + "/sessions/ES-nobody")
    assert await browser.texts("h1") == ["Not found"]

"""A headless Chromium driven by selenium, and axe-core to check accessibility.

Debian's chromium and chromium-driver (never a downloaded browser: selenium's driver manager
is bypassed by naming both binaries) and axe-core's axe.min.js from the npm registry, found
at $SPMON_AXE_JS or under .cache/axe (`npm install --prefix .cache/axe axe-core`; .ci/run
does it). Where any is missing the browser tests skip with the reason, unless
SPMON_REQUIRE_BROWSER=1 (set by .ci/run): then they fail, so CI cannot pass without them.

Selenium blocks, and the service under test runs on the test's event loop: every driver call
goes through `asyncio.to_thread`, so the loop keeps serving the page meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SPMON_ARTIFACTS") or REPO / "tests" / "artifacts")
"""Screenshots land here (gitignored); CI keeps the directory as the run's artefact."""
PHONE = (390, 844)
DESKTOP = (1280, 900)
BLOCKING = ("serious", "critical")
"""axe impacts that fail a test; "moderate" and "minor" are reported, not failed on."""


def _axe_path() -> Path | None:
    for candidate in (
        os.environ.get("SPMON_AXE_JS"),
        REPO / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js",
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _missing() -> str | None:
    if shutil.which("chromium") is None:
        return "chromium is not installed (Debian package chromium; .ci/run installs it)"
    if shutil.which("chromedriver") is None:
        return "chromedriver is not installed (Debian package chromium-driver; .ci/run installs it)"
    if _axe_path() is None:
        return "axe-core not found: npm install --prefix .cache/axe axe-core (or set SPMON_AXE_JS)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the test extra)"
    return None


class Browser:
    """One Chromium window; every method runs the blocking call in a thread."""

    def __init__(self, driver: Any, axe: str) -> None:
        self.driver, self._axe = driver, axe

    async def call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def get(self, url: str) -> None:
        await self.call(self.driver.get, url)

    async def size(self, width_height: tuple[int, int]) -> None:
        await self.call(self.driver.set_window_size, *width_height)

    async def attrs(self, css: str, name: str) -> list[str]:
        def read() -> list[str]:
            found = self.driver.find_elements("css selector", css)
            return [element.get_attribute(name) for element in found]

        return await self.call(read)

    async def texts(self, css: str) -> list[str]:
        def read() -> list[str]:
            return [element.text for element in self.driver.find_elements("css selector", css)]

        return await self.call(read)

    async def click(self, css: str) -> None:
        await self.call(lambda: self.driver.find_element("css selector", css).click())

    async def screenshot(self, name: str, width_height: tuple[int, int]) -> Path:
        """The whole page at that width (the window grown to the document's height)."""
        path = ARTIFACTS / f"{name}-{width_height[0]}px.png"

        def shoot() -> None:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            self.driver.set_window_size(*width_height)
            height = self.driver.execute_script("return document.documentElement.scrollHeight")
            self.driver.set_window_size(width_height[0], max(width_height[1], int(height) + 100))
            self.driver.save_screenshot(str(path))
            self.driver.set_window_size(*width_height)

        await self.call(shoot)
        return path

    async def overflow(self) -> int:
        """How far the page is wider than the window: tables scroll inside their region."""
        script = "return document.documentElement.scrollWidth - window.innerWidth"
        return int(await self.call(self.driver.execute_script, script))

    async def axe(self) -> list[dict[str, Any]]:
        """axe-core's violations on the page as loaded, of every impact."""

        def run() -> list[dict[str, Any]]:
            self.driver.execute_script(self._axe)
            result: list[dict[str, Any]] = self.driver.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "axe.run(document, {resultTypes: ['violations']})"
                ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact,"
                " help: v.help, nodes: v.nodes.map(n => n.html).slice(0, 3)}))))"
                ".catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e)}]));"
            )
            return result

        return await self.call(run)


def serious(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in violations if v.get("impact") in BLOCKING]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if (why := _missing()) is not None:
        if os.environ.get("SPMON_REQUIRE_BROWSER") == "1":
            pytest.fail(f"SPMON_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--no-first-run",
        "--lang=en-US",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        options.add_argument(argument)
    service = Service(shutil.which("chromedriver") or "chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(15)
    driver.set_script_timeout(15)
    axe = _axe_path()
    assert axe is not None
    try:
        yield Browser(driver, axe.read_text(encoding="utf-8"))
    finally:
        driver.quit()

"""/metrics, /healthz and /readyz of a real service built against a simulator."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest

from monitor import service
from monitor.settings import Settings
from monitor.simulator import Faults, Simulator, make_keys
from tests.conftest import watches_of
from tests.simcount import counted


def settings_for(url: str, keys, state: Path, **extra) -> Settings:
    return Settings(
        api={"base_url": url, "rate_limit": 500, "retries": 0, "timeout": 2},
        poll={"interval": 1},
        state={"path": state},
        http={"listen": "127.0.0.1:0"},
        watches=watches_of(keys),
        **extra,
    )


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


async def run_until(settings: Settings, check) -> object:
    """Run the real service, call `check(svc)` once it is serving, then stop it."""
    stop = asyncio.Event()
    ready: asyncio.Future[service.Service] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(service.run(settings, stop=stop, on_ready=ready.set_result))
    try:
        svc = await asyncio.wait_for(ready, 10)
        return await check(svc)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def until_ready(base: str) -> None:
    async with asyncio.timeout(10):
        while (await get(base + "/readyz"))[0] != 200:
            await asyncio.sleep(0.05)


async def test_metrics_pass_promtool_and_carry_no_session_labels(
    simulator, state_path: Path
) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus; .ci/run installs it)")
    sim = await simulator(5)

    async def check(svc: service.Service) -> str:
        base = f"http://{svc.address}"
        await until_ready(base)
        return (await get(base + "/metrics"))[2]

    text = await run_until(settings_for(sim.url, sim.keys, state_path), check)
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout.strip() == "" and lint.stderr.strip() == ""
    for name in (
        "spmon_build_info", "spmon_up", "spmon_sessions_watched", "spmon_sessions", "spmon_sessions_by_phase",
        "spmon_reviews_pending", "spmon_reviews_overdue", "spmon_reviews_overdue_oldest_age_seconds",
        "spmon_session_changes_total", "spmon_polls_total", "spmon_poll_duration_seconds_bucket",
        "spmon_api_responses_total", "spmon_poll_lag_seconds", "spmon_notifications_total",
        "spmon_outbox_pending", "spmon_outbox_oldest_pending_age_seconds",
        "spmon_api_token_expiry_timestamp_seconds", "spmon_poll_last_success_timestamp_seconds",
    ):  # fmt: skip
        assert f"\n{name}" in text, name
    assert not any(k.session_sid in text or k.exam_sid in text for k in sim.keys)


async def test_openmetrics_is_negotiated(simulator, state_path: Path) -> None:
    sim = await simulator(1)

    async def check(svc: service.Service) -> tuple[int, str, str]:
        return await get(
            f"http://{svc.address}/metrics", {"Accept": "application/openmetrics-text"}
        )

    status, ctype, text = await run_until(settings_for(sim.url, sim.keys, state_path), check)
    assert status == 200 and ctype.startswith("application/openmetrics-text")
    assert text.rstrip().endswith("# EOF")


async def test_probes_stay_green_while_the_api_is_down(simulator, state_path: Path) -> None:
    sim = await simulator(3, faults=Faults(error_rate=1.0))

    async def check(svc: service.Service) -> list[int]:
        base = f"http://{svc.address}"
        await until_ready(base)
        await asyncio.sleep(1.2)
        _, _, metrics = await get(base + "/metrics")
        assert "spmon_up 0.0" in metrics
        return [(await get(base + path))[0] for path in ("/healthz", "/readyz")]

    assert await run_until(settings_for(sim.url, sim.keys, state_path), check) == [200, 200]


async def test_probes_stay_green_while_the_token_is_rejected(simulator, state_path: Path) -> None:
    sim = await simulator(2, token="the-real-token")
    settings = settings_for(sim.url, sim.keys, state_path).model_copy(
        update={
            "api": settings_for(sim.url, sim.keys, state_path).api.model_copy(
                update={"token": None}
            )
        }
    )

    async def check(svc: service.Service) -> tuple[list[int], str]:
        base = f"http://{svc.address}"
        await until_ready(base)
        _, _, metrics = await get(base + "/metrics")
        return [(await get(base + p))[0] for p in ("/healthz", "/readyz")], metrics

    codes, metrics = await run_until(settings, check)
    assert codes == [200, 200]
    assert "spmon_api_auth_failing 1.0" in metrics
    assert 'spmon_polls_total{outcome="auth_failed"}' in metrics


async def test_a_rotated_token_file_is_picked_up_and_401s_stay_few(
    simulator, tmp_path: Path
) -> None:
    sim = await simulator(20, token="new-token")
    token_file = tmp_path / "token"
    token_file.write_text("old-token\n", encoding="utf-8")
    base = settings_for(sim.url, sim.keys, tmp_path / "s.db")
    settings = base.model_copy(
        update={"api": base.api.model_copy(update={"token_file": token_file, "auth_retry": 0.2})}
    )

    async def sample(
        svc: service.Service, name: str, labels: dict[str, str] | None = None
    ) -> float:
        return svc.registry.get_sample_value(name, labels or {}) or 0.0

    async def check(svc: service.Service) -> tuple[float, float]:
        async with asyncio.timeout(10):
            while await sample(svc, "spmon_api_auth_failing") != 1:
                await asyncio.sleep(0.05)
        await asyncio.sleep(2.0)  # two seconds of a rejected token
        refused = await sample(svc, "spmon_api_responses_total", {"code": "401"})
        token_file.write_text("new-token\n", encoding="utf-8")  # the secret is rotated
        async with asyncio.timeout(10):
            while await sample(svc, "spmon_api_auth_failing") != 0:
                await asyncio.sleep(0.05)
        async with asyncio.timeout(10):
            while await sample(svc, "spmon_polls_total", {"outcome": "ok"}) < 20:
                await asyncio.sleep(0.05)
        return refused, await sample(svc, "spmon_polls_total", {"outcome": "ok"})

    refused, ok = await run_until(settings, check)
    # Ungated, 20 sessions retrying every 0.5-1 s would collect 40+ refusals in two seconds;
    # gated, it is the first wave plus one probe per 0.2 s.
    assert refused <= 20 + 2.0 / 0.2 + 2
    assert ok >= 20


@pytest.mark.parametrize("api_down", [False, True])
async def test_readyz_waits_for_every_session_first_poll(state_path: Path, api_down: bool) -> None:
    """Ready once every watch had its first poll attempted, whatever its outcome: 30 sessions
    at 5 requests/s take about 6 s; with the API down it must turn ready all the same."""
    sim = Simulator(make_keys(30, seed=7), evolve=False)
    if api_down:
        sim.faults = Faults(error_rate=1.0)
    async with counted(sim) as api:
        settings = settings_for(api.url, sim.keys, state_path).model_copy(
            update={
                "api": settings_for(api.url, sim.keys, state_path).api.model_copy(
                    update={"rate_limit": 5}
                )
            }
        )

        async def check(svc: service.Service) -> tuple[list[dict], set[str]]:
            base, seen = f"http://{svc.address}", []
            async with asyncio.timeout(20):
                while True:
                    status, _, body = await get(base + "/readyz")
                    seen.append({"status": status, **json.loads(body)})
                    if status == 200:
                        return seen, api.sessions_asked()
                    await asyncio.sleep(0.05)

        seen, asked = await run_until(settings, check)
    not_ready = [s for s in seen if s["status"] == 503]
    assert not_ready, "ready before the first cycle was attempted"
    assert all(s["first_cycle_remaining"] > 0 for s in not_ready)
    assert seen[-1]["first_cycle_remaining"] == 0
    if api_down:
        # Held back by the open breaker counts as a turn: readiness ignores the API's health.
        assert len(asked) < 30
    else:
        assert asked == {k.session_sid for k in sim.keys}

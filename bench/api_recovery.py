"""Recovery after an API outage: how long until every session is polled OK again.

The real service and the built-in simulator run in this process on loopback. For each outage
length: start from a fresh state file, wait until every session was polled OK, make every
session GET answer 500/502/503, wait, heal, and measure from the end of the outage until each
session has had a 200. Also counts the requests the API got while the breaker was open.

    python bench/api_recovery.py                       # 30 s and 5 min outages
    python bench/api_recovery.py --outages 10 --sessions 200 --interval 10 --rate 50
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from monitor import logs, service
from monitor.settings import Settings
from monitor.simulator import Faults, Simulator, make_keys


class Log:
    """Every session GET: (monotonic time, session sid, status)."""

    def __init__(self) -> None:
        self.hits: list[tuple[float, str, int]] = []

    def first_ok_after(self, since: float) -> dict[str, float]:
        first: dict[str, float] = {}
        for at, sid, status in self.hits:
            if at >= since and status == 200:
                first.setdefault(sid, at)
        return first

    def between(self, start: float, end: float) -> int:
        return sum(1 for at, _, _ in self.hits if start <= at < end)


async def serve(sim: Simulator, log: Log) -> tuple[web.AppRunner, str]:
    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        if sid := request.match_info.get("sessionSid"):
            log.hits.append((time.monotonic(), sid, response.status))
        return response

    app = sim.app()
    app.middlewares.append(record)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def wait_all_ok(log: Log, sids: set[str], since: float) -> dict[str, float]:
    while (first := log.first_ok_after(since)).keys() < sids:
        await asyncio.sleep(0.02)
    return first


async def one(args: argparse.Namespace, outage: float) -> dict[str, float]:
    keys = make_keys(args.sessions, seed=3)
    sids = {k.session_sid for k in keys}
    sim, log = Simulator(keys, evolve=False), Log()
    runner, url = await serve(sim, log)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                api={"base_url": url, "rate_limit": args.rate, "timeout": 5},
                poll={"interval": args.interval},
                state={"path": Path(tmp) / "bench.db"},
                http={"listen": ""},
                watches=[
                    {
                        "install_sid": k.install_sid,
                        "exam_sid": k.exam_sid,
                        "session_sid": k.session_sid,
                    }
                    for k in keys
                ],
            )
            stop = asyncio.Event()
            ready: asyncio.Future[service.Service] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(service.run(settings, stop=stop, on_ready=ready.set_result))
            try:
                svc = await ready
                await wait_all_ok(log, sids, 0.0)
                began = time.monotonic()
                sim.faults = Faults(error_rate=1.0)
                while not svc.registry.get_sample_value("spmon_api_breaker_open"):
                    await asyncio.sleep(0.02)
                opened = time.monotonic()
                await asyncio.sleep(began + outage - time.monotonic())
                ended = time.monotonic()
                sim.faults = Faults()
                first = await wait_all_ok(log, sids, ended)
            finally:
                stop.set()
                await task
    finally:
        await runner.cleanup()
    open_for = ended - opened
    return {
        "outage": outage,
        "opened_after": opened - began,
        "probes": log.between(opened + 2.0, ended),
        "open_for": open_for - 2.0,
        "recovery": max(first.values()) - ended,
        "median": sorted(first.values())[len(first) // 2] - ended,
    }


async def main(args: argparse.Namespace) -> None:
    logs.configure("json", "warning", stream=open(os.devnull, "w"))  # noqa: SIM115
    target = args.interval + args.sessions / args.rate
    print(
        f"{args.sessions} sessions, interval {args.interval:g} s, rate limit {args.rate:g}/s: "
        f"target interval + sessions/rate = {target:g} s"
    )
    print(f"{'outage':>8} {'opened':>7} {'requests while open':>22} {'median':>7} {'all OK':>7}")
    for outage in args.outages:
        r = await one(args, outage)
        rate = r["probes"] / r["open_for"] if r["open_for"] > 0 else 0.0
        print(
            f"{r['outage']:>7.0f}s {r['opened_after']:>6.1f}s "
            f"{r['probes']:>7d} in {r['open_for']:>5.0f}s ({rate:.2f}/s) "
            f"{r['median']:>6.2f}s {r['recovery']:>6.2f}s",
            flush=True,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--outages", type=float, nargs="+", default=[30.0, 300.0])
    asyncio.run(main(parser.parse_args()))

"""Alert delivery throughput and latency: the real outbox, dispatcher and signed webhook sink.

A receiver runs in its own process on loopback and notes when each webhook-id arrives, so it
does not share the event loop or the GIL with spmon. Two runs:

- burst: N events committed at once (S sessions, N/S events each, so per-session ordering
  is in play). Throughput is N / (last arrival − commit). Latency includes queueing.
- paced: events committed at a steady rate below capacity, a few at a time, as the poller
  does (commit, then notify). Latency here is what an on-call person sees: detection → POST.

    python bench/delivery.py                     # 10,000 events, 1,000 sessions
    python bench/delivery.py --events 2000 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = "whsec_" + "QmVuY2htYXJrIHNlY3JldCwgbm90IGEgcmVhbCBvbmUh"  # 32 bytes, bench only


# -- the receiver (its own process) ---------------------------------------------------------


def serve(port: int) -> None:
    from aiohttp import web

    arrivals: dict[str, float] = {}

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        arrivals.setdefault(request.headers["webhook-id"], time.time())
        return web.Response(status=204)

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(arrivals)

    async def reset(_request: web.Request) -> web.Response:
        arrivals.clear()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the sender (this process) --------------------------------------------------------------


def events(count: int, sessions: int, offset: int) -> list[Any]:
    from monitor.core.events import Change, Event, EventType, Field, event_id
    from monitor.core.keys import SessionKey

    moment = datetime.now(UTC)
    made = []
    for n in range(offset, offset + count):
        session = n % sessions
        key = SessionKey(f"AI{session:032x}", f"EX{session:032x}", f"ES{session:032x}")
        made.append(
            Event(
                event_id(key.session_sid, n, deployment="bench"),
                EventType.STATUS_CHANGED,
                moment,
                key,
                change=Change(Field.STATUS, "Scheduled", "Closed"),
            )
        )
    return made


async def arrivals(base: str) -> dict[str, float]:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(base + "/stats") as resp:
        found: dict[str, float] = await resp.json()
        return found


async def wait_for(base: str, ids: set[str], within: float) -> dict[str, float]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        seen = await arrivals(base)
        if ids <= set(seen):
            return seen
        await asyncio.sleep(0.2)
    raise SystemExit(f"timed out: {len(ids - set(await arrivals(base)))} events never arrived")


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(name: str, latencies: list[float], span: float, count: int) -> dict[str, Any]:
    return {
        "run": name,
        "events": count,
        "seconds": round(span, 2),
        "events_per_second": round(count / span, 1),
        "latency_p50_ms": round(1000 * percentile(latencies, 0.50), 1),
        "latency_p95_ms": round(1000 * percentile(latencies, 0.95), 1),
        "latency_p99_ms": round(1000 * percentile(latencies, 0.99), 1),
    }


async def burst(args: argparse.Namespace, store: Any, base: str) -> dict[str, Any]:
    batch = events(args.events, args.sessions, 0)
    committed = time.time()
    await store.enqueue([(e, ["hook"]) for e in batch], committed)
    async with dispatching(args, store, base) as dispatcher:
        dispatcher.notify()
        seen = await wait_for(base, {e.id for e in batch}, within=600)
    latencies = [seen[e.id] - committed for e in batch]
    return summary("burst", latencies, max(seen.values()) - committed, len(batch))


async def paced(args: argparse.Namespace, store: Any, base: str) -> dict[str, Any]:
    per_tick = max(1, args.rate // 50)  # commits of a few events, 50 a second
    total = min(args.events, args.rate * 10)
    created: dict[str, float] = {}
    async with dispatching(args, store, base) as dispatcher:
        started = time.time()
        for offset in range(0, total, per_tick):
            batch = events(per_tick, args.sessions, args.events + offset)
            now = time.time()
            await store.enqueue([(e, ["hook"]) for e in batch], now)
            created.update({e.id: now for e in batch})
            dispatcher.notify()
            await asyncio.sleep(max(0.0, started + (offset + per_tick) / args.rate - time.time()))
        seen = await wait_for(base, set(created), within=600)
    latencies = [seen[i] - at for i, at in created.items()]
    return summary(f"paced {args.rate}/s", latencies, max(seen.values()) - started, len(created))


class dispatching:  # noqa: N801  # used as `async with dispatching(...)`, like a function
    def __init__(self, args: argparse.Namespace, store: Any, base: str) -> None:
        from prometheus_client import CollectorRegistry

        from monitor.core.backoff import DELIVERY_SCHEDULE
        from monitor.dispatcher import Dispatcher
        from monitor.metrics import Metrics
        from monitor.sinks import Limits, WebhookSink

        limits = Limits(concurrency=args.concurrency, schedule=DELIVERY_SCHEDULE)
        self.sink = WebhookSink(
            "hook", url=base + "/hook", secrets=[SECRET], limits=limits, allow_private=True
        )
        metrics = Metrics(CollectorRegistry(), sinks=["hook"])
        self.dispatcher = Dispatcher(store=store, sinks=[self.sink], metrics=metrics)
        self.stop = asyncio.Event()

    async def __aenter__(self) -> Any:
        self.task = asyncio.create_task(self.dispatcher.run(self.stop))
        return self.dispatcher

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await self.task
        await self.dispatcher.drain(5.0)
        await self.sink.aclose()


async def main(args: argparse.Namespace, base: str) -> None:
    from monitor import logs
    from monitor.store import SqliteStore

    logs.configure("json", "warning", stream=sys.stderr)
    await ready(base)
    with tempfile.TemporaryDirectory(prefix="spmon-bench-") as tmp:
        path = Path(tmp) / "bench.db"
        async with SqliteStore(path, synchronous=args.synchronous) as store:
            results = [await burst(args, store, base), await paced(args, store, base)]
    print(json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count(), **vars(args)}))
    for result in results:
        print(json.dumps(result))


def run(args: argparse.Namespace) -> None:
    """The receiver in its own process for the whole run, then the two measurements."""
    port = free_port()
    receiver = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        asyncio.run(main(args, f"http://127.0.0.1:{port}"))
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)


async def ready(base: str) -> None:
    import aiohttp

    for _ in range(200):
        try:
            await arrivals(base)
            return
        except aiohttp.ClientError:
            await asyncio.sleep(0.05)
    raise SystemExit("receiver did not start")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=int, default=200, help="Events/s in the paced run.")
    parser.add_argument(
        "--synchronous", default="FULL", choices=["FULL", "NORMAL"], help="SQLite durability."
    )
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.serve is not None:
        serve(parsed.serve)
    else:
        run(parsed)

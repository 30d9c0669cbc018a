"""How soon alerts reach a webhook receiver after it comes back from an outage.

A receiver runs in its own process on loopback (a hook port, and a control port that switches
it between healthy and failing). For each outage length: the receiver fails (500s, or refuses
connections with `--mode refuse`); alerts are committed to a real SQLite outbox as the poller
would (a burst at the start, then one every `--trickle` seconds); the receiver heals; the
figure is the time from healing until every alert committed during the outage has arrived
(the first 2xx for each webhook-id). The sink uses spmon's default settings (retry schedule
0, 5 s, 5 min, …; breaker after 5 failures; 30 s cooldown; 15 s timeout). It also checks that
nothing was lost or dead-lettered and that each session's alerts arrived in order.

    python bench/sink_recovery.py                   # 3 s and 40 s
    python bench/sink_recovery.py --long            # and 10 min
    python bench/sink_recovery.py --outage 3 --json # one JSON line per outage
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = "whsec_" + "QmVuY2htYXJrIHNlY3JldCwgbm90IGEgcmVhbCBvbmUh"  # 32 bytes, bench only


# -- the receiver (its own process) ---------------------------------------------------------


def serve(hook_port: int, control_port: int) -> None:
    from aiohttp import web

    state: dict[str, Any] = {"mode": "ok", "failed": 0}
    arrivals: dict[str, float] = {}
    order: list[str] = []
    hook_runner: web.AppRunner | None = None

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        if state["mode"] != "ok":
            state["failed"] += 1
            return web.Response(status=500)
        event = request.headers["webhook-id"]
        if event not in arrivals:
            arrivals[event] = time.time()
            order.append(event)
        return web.Response(status=204)

    async def start_hook() -> None:
        nonlocal hook_runner
        app = web.Application()
        app.router.add_post("/hook", hook)
        hook_runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await hook_runner.setup()
        await web.TCPSite(hook_runner, "127.0.0.1", hook_port, reuse_address=True).start()

    async def fail(request: web.Request) -> web.Response:
        nonlocal hook_runner
        state["mode"] = request.query.get("mode", "500")
        if state["mode"] == "refuse" and hook_runner is not None:
            await hook_runner.cleanup()  # the port stops listening: connections are refused
            hook_runner = None
        return web.Response(status=204)

    async def heal(_request: web.Request) -> web.Response:
        if hook_runner is None:
            await start_hook()
        state["mode"] = "ok"
        return web.json_response({"at": time.time()})

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response({"arrivals": arrivals, "order": order, "failed": state["failed"]})

    async def reset(_request: web.Request) -> web.Response:
        arrivals.clear()
        order.clear()
        state["failed"] = 0
        return web.Response(status=204)

    async def main() -> None:
        await start_hook()
        control = web.Application()
        control.router.add_post("/fail", fail)
        control.router.add_post("/heal", heal)
        control.router.add_get("/stats", stats)
        control.router.add_post("/reset", reset)
        runner = web.AppRunner(control, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", control_port).start()
        await asyncio.Event().wait()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the sender (this process) --------------------------------------------------------------


async def control(base: str, verb: str, **query: str) -> Any:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        method = http.get if verb == "stats" else http.post
        async with method(f"{base}/{verb}", params=query) as resp:
            return await resp.json() if resp.status == 200 else None


def make_events(sessions: int, per_session: int, start: int) -> list[Any]:
    from datetime import UTC, datetime

    from monitor.core.events import Change, Event, EventType, Field, event_id
    from monitor.core.keys import SessionKey

    moment, made = datetime.now(UTC), []
    for step in range(start, start + per_session):
        for session in range(sessions):
            key = SessionKey(f"AI{session:032x}", f"EX{session:032x}", f"ES{session:032x}")
            change = Change(Field.STATUS, f"s{step - 1}", f"s{step}")
            made.append(
                Event(
                    event_id(key.session_sid, step, deployment="bench"),
                    EventType.STATUS_CHANGED,
                    moment,
                    key,
                    change=change,
                )
            )
    return made


async def outage(args: argparse.Namespace, seconds: float, hook: str, ctl: str) -> dict[str, Any]:
    """One outage of `seconds` against a fresh outbox and a fresh dispatcher."""
    from prometheus_client import CollectorRegistry

    from monitor.dispatcher import Dispatcher
    from monitor.metrics import Metrics
    from monitor.settings import SinkSettings
    from monitor.store import SqliteStore
    from monitor.wiring import build_sinks

    config = SinkSettings(name="hook", type="webhook", url=hook, secret=SECRET, allow_private=True)
    await control(ctl, "reset")
    with tempfile.TemporaryDirectory(prefix="spmon-recovery-") as tmp:
        async with SqliteStore(Path(tmp) / "spmon.db") as store:
            sinks = build_sinks([config])
            metrics = Metrics(CollectorRegistry(), sinks=["hook"])
            dispatcher = Dispatcher(store=store, sinks=sinks, metrics=metrics)
            stop = asyncio.Event()
            task = asyncio.create_task(dispatcher.run(stop))
            try:
                result = await _run_outage(args, seconds, store, dispatcher, ctl)
            finally:
                stop.set()
                await task
                await dispatcher.drain(2.0)
                for sink in sinks:
                    await sink.aclose()
            result["dead"] = (await store.stats()).dead.get("hook", 0)
    return result


async def _run_outage(
    args: argparse.Namespace, seconds: float, store: Any, dispatcher: Any, ctl: str
) -> dict[str, Any]:
    await control(ctl, "fail", mode=args.mode)
    began = time.time()
    committed: list[Any] = []

    async def commit(batch: list[Any]) -> None:
        await store.enqueue([(e, ["hook"]) for e in batch], time.time())
        committed.extend(batch)
        dispatcher.notify()

    await commit(make_events(args.sessions, 2, 1))
    step = 3
    while time.time() - began + args.trickle < seconds:
        await asyncio.sleep(args.trickle)
        await commit(make_events(1, 1, step))
        step += 1
    await asyncio.sleep(max(0.0, began + seconds - time.time()))
    healed = (await control(ctl, "heal"))["at"]
    wanted = {e.id for e in committed}
    deadline = time.time() + seconds + 120
    while True:
        seen = await control(ctl, "stats")
        if wanted <= set(seen["arrivals"]) or time.time() > deadline:
            break
        await asyncio.sleep(0.05)
    arrivals = [seen["arrivals"][i] for i in wanted if i in seen["arrivals"]]
    return {
        "outage_s": seconds,
        "mode": args.mode,
        "alerts": len(wanted),
        "delivered": len(arrivals),
        "recovery_s": round(max(arrivals) - healed, 2) if len(arrivals) == len(wanted) else None,
        "first_after_s": round(min(arrivals) - healed, 2) if arrivals else None,
        "failed_requests": seen["failed"],
        "in_order": _in_order(committed, seen["order"]),
    }


def _in_order(committed: list[Any], order: list[str]) -> bool:
    """Each session's alerts arrived in the order they were committed."""
    position = {event_id: n for n, event_id in enumerate(order)}
    sessions: dict[str, list[int]] = {}
    for event in committed:
        sessions.setdefault(event.key.session_sid, []).append(position.get(event.id, -1))
    return all(seq == sorted(seq) and -1 not in seq for seq in sessions.values())


async def main(args: argparse.Namespace, hook: str, ctl: str) -> list[dict[str, Any]]:
    from monitor import logs

    logs.configure("json", "error", stream=sys.stderr)
    for _ in range(200):
        try:
            await control(ctl, "stats")
            break
        except OSError:
            await asyncio.sleep(0.05)
    return [await outage(args, seconds, hook, ctl) for seconds in args.outages]


def run(args: argparse.Namespace) -> None:
    hook_port, control_port = free_port(), free_port()
    receiver = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(hook_port), str(control_port)]
    )
    try:
        results = asyncio.run(
            main(args, f"http://127.0.0.1:{hook_port}/hook", f"http://127.0.0.1:{control_port}")
        )
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    for result in results:
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            print(
                f"outage {result['outage_s']:g} s ({result['mode']}): {result['delivered']}/"
                f"{result['alerts']} alerts, all delivered {result['recovery_s']} s after the"
                f" receiver recovered (first after {result['first_after_s']} s); in order:"
                f" {result['in_order']}; dead: {result['dead']}",
                flush=True,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--outage", dest="outages", type=float, action="append", help="Seconds (repeatable)."
    )
    parser.add_argument("--long", action="store_true", help="Add the 10-minute outage.")
    parser.add_argument("--mode", choices=["500", "refuse"], default="500")
    parser.add_argument("--sessions", type=int, default=20, help="Sessions in the first burst.")
    parser.add_argument("--trickle", type=float, default=5.0, help="Seconds between later alerts.")
    parser.add_argument("--json", action="store_true", help="One JSON line per outage.")
    parser.add_argument("--serve", type=int, nargs=2, default=None, help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.serve is not None:
        serve(*parsed.serve)
    else:
        parsed.outages = (parsed.outages or [3.0, 40.0]) + ([600.0] if parsed.long else [])
        run(parsed)

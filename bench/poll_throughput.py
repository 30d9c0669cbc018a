"""Poll throughput and memory: spmon's real poll loop vs a bare aiohttp loop, side by side.

The simulator runs in its own process; each client runs in its own process too, so CPU time
and peak RSS are the client's alone. One baseline round per client (every session seen
for the first time: all rows and payloads inserted), then three steady rounds (same data,
digests compared), of which the least CPU is reported.

Two bare loops do the same GETs and decode each body with `resp.json()`:

- burst: every request at once, 32 in flight: the most a bare loop can batch per wake-up.
- paced: requests started on a schedule at the rate spmon achieved in the round reported
  (its baseline round, its least-CPU steady round), as a monitor polls. This is the
  like-for-like yardstick: an event loop that is not saturated wakes more often for fewer
  events, so a request costs more CPU than in a burst.

Each line gives CPU seconds per 1,000 requests and `ratio`: spmon's CPU per poll over the bare
loop's CPU per request, against the paced loop and against the burst loop.

    python bench/poll_throughput.py                    # 1,000 / 10,000 / 100,000 sessions
    python bench/poll_throughput.py --sizes 2000       # quicker
    python bench/poll_throughput.py --loop uvloop      # every client on uvloop (pip install uvloop)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SEED = 11
STEADY_ROUNDS = 3
"""Steady rounds per client; the least CPU of them is reported (the machine is shared, and
noise only ever adds time)."""
CONCURRENCY = 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def bare_child(url: str, n: int, rates: list[float] | None) -> dict[str, Any]:
    """`rates` None: each round a burst; else round i starts its requests at rates[i] per s."""
    import aiohttp

    from monitor.simulator import make_keys

    paths = [k.path for k in make_keys(n, seed=SEED)]
    base_rss = rss_mb()
    rounds = []
    sem = asyncio.Semaphore(CONCURRENCY)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as http:

        async def one(path: str) -> None:
            async with sem, http.get(url + path) as resp:
                await resp.json()

        for i in range(1 + STEADY_ROUNDS):
            cpu, wall = time.process_time(), time.perf_counter()
            if rates is None:
                await asyncio.gather(*(one(path) for path in paths))
            else:
                await _paced(one, paths, rates[i])
            rounds.append({"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall})
    return {"rounds": rounds, "rss": rss_mb(), "base_rss": base_rss}


async def _paced(one: Any, paths: list[str], rate: float) -> None:
    """Start request i at i / rate seconds: sleep until the next one is due, start all that are."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []
    for i, path in enumerate(paths):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(path)))
    await asyncio.gather(*tasks)


async def spmon_child(url: str, n: int) -> dict[str, Any]:
    from monitor import logs, service
    from monitor.settings import Settings
    from monitor.simulator import make_keys

    logs.configure("json", "warning", stream=open(os.devnull, "w"))  # noqa: SIM115
    keys = make_keys(n, seed=SEED)
    base_rss = rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            api={"base_url": url, "rate_limit": 1e6, "concurrency": CONCURRENCY, "retries": 0},
            poll={"interval": 3600},
            state={"path": Path(tmp) / "bench.db"},
            http={"listen": ""},
            watches=[
                {"install_sid": k.install_sid, "exam_sid": k.exam_sid, "session_sid": k.session_sid}
                for k in keys
            ],
        )
        del keys
        async with service.build(settings, serve_http=False) as svc:
            rounds = [await _spmon_round(svc, n, (i + 1) * n) for i in range(1 + STEADY_ROUNDS)]
    return {"rounds": rounds, "rss": rss_mb(), "base_rss": base_rss}


async def _spmon_round(svc: Any, n: int, target: int) -> dict[str, float]:
    polls = svc.metrics.polls
    now = time.time()
    for i, key in enumerate(svc.watchset.entries):  # due one after the other, as in real life
        svc.watchset.heap.push(key, now - i * 1e-6)
    stop = asyncio.Event()
    cpu, wall = time.process_time(), time.perf_counter()
    task = asyncio.create_task(svc.poller.run(stop))
    while sum(polls.labels(o)._value.get() for o in ("ok", "invalid", "error")) < target:
        await asyncio.sleep(0.02)
    stop.set()
    await task
    done = sum(polls.labels(o)._value.get() for o in ("ok", "invalid", "error"))
    # A few sessions get an extra wake-up poll at their review deadline; count what ran.
    result = {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}
    result["polls"] = done - (target - n)
    result["failed"] = done - polls.labels("ok")._value.get()
    return result


def run_child(
    kind: str, url: str, n: int, loop: str, rates: list[float] | None = None
) -> dict[str, Any]:
    paced = ["--rates", *(f"{r:.3f}" for r in rates)] if rates else []
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--url", url, "--n", str(n), "--loop", loop,
         *paced],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(n: int, loop: str) -> list[str]:
    port = free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "monitor", "simulate", "--static", "--sessions", str(n),
         "--seed", str(SEED), "--listen", f"127.0.0.1:{port}"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert sim.stderr is not None
        sim.stderr.readline()  # "spmon simulate: N sessions at URL" once it is serving
        url = f"http://127.0.0.1:{port}"
        burst = run_child("bare", url, n, loop)
        spmon = run_child("spmon", url, n, loop)
        # Paced at the rate of spmon's reported rounds: its baseline, then its least-CPU steady.
        rates = [_rate(spmon["rounds"][0])] + [_rate(_best(spmon["rounds"]))] * STEADY_ROUNDS
        paced = run_child("bare", url, n, loop, rates)
    finally:
        sim.terminate()
        sim.wait()
    return report(n, burst, paced, spmon)


def _rate(r: dict[str, float]) -> float:
    return r["polls"] / r["wall"]


def _best(rounds: list[dict[str, float]]) -> dict[str, float]:
    return min(rounds[1:], key=lambda r: r["cpu"] / r["polls"])


def report(
    n: int, burst: dict[str, Any], paced: dict[str, Any], spmon: dict[str, Any]
) -> list[str]:
    lines = []
    steady = [min(bare["rounds"][1:], key=lambda r: r["cpu"]) for bare in (burst, paced)]
    steady.append(_best(spmon["rounds"]))
    firsts = [burst["rounds"][0], paced["rounds"][0], spmon["rounds"][0]]
    for name, (b, p, s) in (("baseline", firsts), ("steady", steady)):
        polls = s["polls"]
        b_cpu, p_cpu, s_cpu = 1000 * b["cpu"] / n, 1000 * p["cpu"] / n, 1000 * s["cpu"] / polls
        lines.append(
            f"{n:>7}  {name:<8}  spmon {polls / s['wall']:>6.0f}/s {s_cpu:6.3f}   "
            f"paced {n / p['wall']:>6.0f}/s {p_cpu:6.3f}   burst {n / b['wall']:>6.0f}/s "
            f"{b_cpu:6.3f} cpu-s/1k   ratio {s_cpu / p_cpu:4.2f} paced {s_cpu / b_cpu:4.2f} burst"
            + (f"  ({s['failed']:.0f} polls failed)" if s.get("failed") else "")
        )
    per = (spmon["rss"] - spmon["base_rss"]) * 1024 / n
    lines.append(
        f"{n:>7}  memory    bare peak {burst['rss']:.0f} MB   spmon peak {spmon['rss']:.0f} MB "
        f"({per:.2f} KB per watched session above the {spmon['base_rss']:.0f} MB start)"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 100000])
    parser.add_argument("--child", choices=["bare", "spmon"])
    parser.add_argument("--url")
    parser.add_argument("--n", type=int)
    parser.add_argument("--rates", type=float, nargs="*")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()
    if args.child:
        if args.child == "bare":
            coro = bare_child(args.url, args.n, args.rates)
        else:
            coro = spmon_child(args.url, args.n)
        with asyncio.Runner(loop_factory=_loop_factory(args.loop)) as runner:
            print(json.dumps(runner.run(coro)))
        return
    print(
        f"poll throughput, concurrency {CONCURRENCY}, {args.loop} event loop, simulator in its"
        f" own process, {os.cpu_count()} cores; cpu-s/1k: CPU seconds per 1,000 requests"
    )
    for n in args.sizes:
        for line in measure(n, args.loop):
            print(line, flush=True)


def _loop_factory(name: str) -> Any:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


if __name__ == "__main__":
    main()

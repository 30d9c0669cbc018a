"""How long the status page takes at scale: a real service over N simulated sessions (all
polled once, with several hundred overdue), then `/`, `/sessions?list=overdue` and one
`/sessions/{sid}` fetched over HTTP, each a few times; the least time of each is reported
(the machine is shared, and noise only ever adds time).

    python bench/page.py                  # 1,000 and 10,000 sessions
    python bench/page.py --sizes 100000   # slow to set up: every session is polled once first
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp

from monitor import service
from monitor.settings import Settings
from monitor.simulator import Simulator, make_keys, serve

TRIES = 5


async def one(n: int) -> dict[str, float]:
    sim = Simulator(make_keys(n, seed=3), seed=3, evolve=False)
    with tempfile.TemporaryDirectory(prefix="spmon-bench-page-") as tmp:
        async with serve(sim) as url:
            settings = Settings(
                api={"base_url": url, "rate_limit": 100000, "concurrency": 64, "retries": 0},
                poll={"interval": 3600},
                state={"path": Path(tmp) / "spmon.db"},
                http={"listen": "127.0.0.1:0"},
                watches=[
                    {"install_sid": k.install_sid, "exam_sid": k.exam_sid,
                     "session_sid": k.session_sid, "labels": {"course": f"C{i % 40}"}}
                    for i, k in enumerate(sim.keys)
                ],
            )  # fmt: skip
            async with service.build(settings) as svc:
                await svc.poller.poll_all()
                summary = await svc.views.summary()
                base = f"http://{svc.address}"
                paths = {
                    "/": "/",
                    "overdue list": "/sessions?list=overdue",
                    "session": f"/sessions/{sim.keys[0].session_sid}",
                }
                best: dict[str, float] = {"overdue": summary.overdue}
                async with aiohttp.ClientSession() as http:
                    for name, path in paths.items():
                        times = []
                        for _ in range(TRIES):
                            start = time.perf_counter()
                            async with http.get(base + path) as resp:
                                await resp.read()
                                assert resp.status == 200, resp.status
                            times.append(time.perf_counter() - start)
                        best[name] = min(times)
                return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    for n in args.sizes:
        best = asyncio.run(one(n))
        times = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in best.items() if k != "overdue")
        print(f"{n:>7} sessions ({best['overdue']:.0f} overdue): {times}")


if __name__ == "__main__":
    main()

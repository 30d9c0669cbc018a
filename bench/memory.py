"""Where spmon's memory goes at N watched sessions: peak RSS by stage, top allocation sites.

Builds the real service (`service.build(settings, serve_http=False)`) from a config whose
watch file is an N-row CSV, against the simulator in its own process, then polls every
session `--rounds` times (the first inserts every row and payload, the rest compare digests).
Peak RSS is the process's own (`ru_maxrss`), printed after each stage. Like `spmon run`, the
child pins glibc's mmap threshold first (`monitor.malloc`).

Measured (2 cores, shared; 2 consecutive runs): 100,000 sessions peak at 144 and 143 MB on a
first start and 140 and 140 MB on a restart, over 61 MB once imported (no HTTP and no e-mail
sink here: Jinja2 and aiosmtplib are not imported). The first start peaks in its second
round, about 2 MB over the first: the superseded heap tuples of this script's re-push of every
session and the poll times waiting in the committer. The restart peaks at the end of its one
round. Per session about 700 bytes of objects: an Entry (160), its session SID (96), snapshot
(96), key (64), heap tuple and due time (80), digest as an int (48), poll time (24), its slot
in the entries dict (52), a share of review states and settled times; the snapshots' instants
are shared (`core/instants.py`: the simulator's 100,000 sessions name a few dozen).

    python bench/memory.py                      # 100,000 sessions: first start, then restart
    python bench/memory.py --n 20000 --trace    # + tracemalloc's top sites (slower, more RAM)
    DEPTH=6 python bench/memory.py --trace      # sites grouped by their 6 innermost frames
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

# The tree this script is in, not whichever `monitor` an editable install points at: run
# from bench/, the import would otherwise find another checkout's.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEED = 11
CONCURRENCY = 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def smaps() -> str:
    """RSS by kind of mapping: the brk heap (malloc), anonymous maps (pymalloc arenas, big
    mallocs), files (code)."""
    kinds = {"heap": 0, "anon": 0, "file": 0}
    kind = "file"
    with open("/proc/self/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and not parts[0].endswith(":"):
                name = parts[5] if len(parts) > 5 else ""
                kind = "heap" if name == "[heap]" else "file" if name.startswith("/") else "anon"
            elif parts[0] == "Rss:":
                kinds[kind] += int(parts[1])
    return "  ".join(f"{k} {v / 1024:.0f}" for k, v in kinds.items())


def stage(name: str) -> None:
    traced = ""
    if tracemalloc.is_tracing():
        now, most = tracemalloc.get_traced_memory()
        traced = f"   heap {now / 2**20:6.1f} MB (peak {most / 2**20:6.1f})"
    maps = f"   [{smaps()}]" if os.environ.get("SMAPS") else ""
    print(f"{name:<28} rss {rss_mb():6.1f} MB   peak {peak_mb():6.1f} MB{traced}{maps}", flush=True)


def top(snapshot: tracemalloc.Snapshot, limit: int = 15) -> None:
    stats = snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    for stat in stats.statistics("traceback" if os.environ.get("DEPTH") else "lineno")[:limit]:
        where = " < ".join(f"{Path(f.filename).name}:{f.lineno}" for f in stat.traceback)
        print(f"    {stat.size / 2**20:7.1f} MB {stat.count:>8} blocks  {where}")


async def child(url: str, n: int, rounds: int, trace: bool, base: Path) -> None:
    from monitor import logs, malloc, service
    from monitor.settings import load_settings

    malloc.pin_mmap_threshold()  # as `spmon run` does first

    logs.configure("json", "warning", stream=open(os.devnull, "w"))  # noqa: SIM115
    stage("imported")
    if trace:
        tracemalloc.start(int(os.environ.get("DEPTH", "1")))
    restart = (base / "bench.db").exists()
    settings = load_settings(base / "spmon.yaml")
    stage("settings loaded")
    if trace:
        top(tracemalloc.take_snapshot())
    async with service.build(settings, serve_http=False) as svc:
        del settings
        stage("service built" + (" (restart)" if restart else ""))
        if trace:
            top(tracemalloc.take_snapshot())
        for i in range(rounds):
            await poll_round(svc, n, (i + 1) * n)
            stage(f"round {i + 1} polled")
        gc.collect()
        stage("after gc")
        if trace:
            top(tracemalloc.take_snapshot())
        what = "restart" if restart else "first start"
        print(f"{n} sessions, {what}: peak {peak_mb():.0f} MB", flush=True)


def write_config(base: Path, url: str, n: int) -> None:
    from monitor.simulator import make_keys

    with open(base / "watches.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["install_sid", "exam_sid", "session_sid", "course"])
        for i, k in enumerate(make_keys(n, seed=SEED)):
            out.writerow([k.install_sid, k.exam_sid, k.session_sid, f"C{i % 20}"])
    (base / "spmon.yaml").write_text(
        f"api: {{base_url: '{url}', token: t, rate_limit: 1000000, "
        f"concurrency: {CONCURRENCY}, retries: 0}}\n"
        f"poll: {{interval: 3600}}\nstate: {{path: '{base / 'bench.db'}'}}\n"
        "http: {listen: ''}\nwatch_files: [watches.csv]\n"
    )


async def poll_round(svc: Any, n: int, target: int) -> None:
    polls = svc.metrics.polls
    now = time.time()
    for i, key in enumerate(svc.watchset.entries):
        svc.watchset.heap.push(key, now - i * 1e-6)
    stop = asyncio.Event()
    task = asyncio.create_task(svc.poller.run(stop))
    while sum(polls.labels(o)._value.get() for o in ("ok", "invalid", "error")) < target:
        await asyncio.sleep(0.05)
    stop.set()
    await task


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--url")
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    if args.url:
        asyncio.run(child(args.url, args.n, args.rounds, args.trace, args.dir))
        return
    port = free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "monitor", "simulate", "--static", "--sessions", str(args.n),
         "--seed", str(SEED), "--listen", f"127.0.0.1:{port}"],
        stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert sim.stderr is not None
        sim.stderr.readline()
        url = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryDirectory() as tmp:
            write_config(Path(tmp), url, args.n)
            # Two processes on one state file: a first start (every row inserted), then a
            # restart, which reads 100,000 watches and sessions back from the store.
            for rounds in (args.rounds, 1):
                argv = ["--n", str(args.n), "--rounds", str(rounds), "--url", url, "--dir", tmp]
                subprocess.run([sys.executable, __file__, *argv, *(["--trace"] * args.trace)],
                               check=True)  # fmt: skip
    finally:
        sim.terminate()
        sim.wait()


if __name__ == "__main__":
    main()

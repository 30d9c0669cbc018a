"""PostgreSQL fleet mode (issue 12): throughput and takeover time with 1, 2 and 3 replicas.

For each replica count a fresh database (created and dropped in the `--postgres` server), R
`spmon run` processes on it, all watching the same N sessions (a watch file) at a fixed 1 s
interval, far more than `api.rate_limit` allows: the fleet's rate limit is the bottleneck,
and each replica polls at its share of it (shards held / 256). The simulator runs in a child
process of this script (`monitor.simulator.Simulator`, static sessions) with one route added,
`/_bench/stats`: the session GETs it served, in total and per shard, and each shard's last
one. Figures are counted there, not reported by the replicas.

- start: from spawning the R replicas until every shard is held, each of them its fair share.
- polls/s: session GETs served over `--window` seconds, once every session has been polled
  about once since the split (the baseline round, which inserts every row, is over); the
  share is each replica's part of those GETs (shards mapped to their owner at the end).
- takeover (R = 2, 3): the replica holding most shards is SIGKILLed; `leases` is the time
  until all its shards are held by the others (shard_lease), `polls` until each of them has
  been polled again. It is then replaced, the fleet waits for the split, and the replica with
  most shards gets SIGTERM (it releases its leases and NOTIFYs the peers).

    python bench/replicas.py                          # 100,000 sessions
    python bench/replicas.py --sessions 10000         # quicker
    python bench/replicas.py --rate-limit 200 --window 20

Measured (2 cores, shared with other work; `--rate-limit 1000`, 100,000 sessions):

    replicas  start s  polls/s  limit  share %        SIGKILL          SIGTERM
           1      1.6    999.7   1000  100                  -               -
           2      8.4    996.1   1000  50/50          14.2 /  67.7    1.2 /  15.7
           3     12.1    999.7   1000  34/34/33       15.3 /  82.3    1.0 /  82.6

The second figure of a takeover is long because the run is saturated on purpose: 100,000
sessions at 1,000/s make a queue 100 s deep, and a taken-over session waits its turn in it.
Before replicas released their shards ahead of the outbox drain, SIGTERM took 12-14 s here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

SEED = 11
SHARDS = 256  # monitor.core.shards.SHARDS
CAP = 180.0
"""Seconds any one wait may take before the run is called failed (a hang, not a figure)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The simulator, in a child process: the real Simulator with a counting middleware.


async def sim_child(n: int, port: int) -> None:
    from aiohttp import web
    from aiohttp.typedefs import Handler

    from monitor.core.shards import shard_of
    from monitor.simulator import Simulator, make_keys

    keys = make_keys(n, seed=SEED)
    shard = {k.session_sid: shard_of(k.session_sid) for k in keys}
    sim = Simulator(keys, seed=SEED, evolve=False, token="bench")  # noqa: S106
    served = [0] * SHARDS
    last = [0.0] * SHARDS

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        sid = request.match_info.get("sessionSid")
        if sid is not None and (s := shard.get(sid)) is not None:
            served[s] += 1
            last[s] = time.time()
        return await handler(request)

    async def stats(_: web.Request) -> web.Response:
        return web.json_response({"requests": sim.requests, "served": served, "last": last})

    app = sim.app()
    app.middlewares.append(count)
    app.router.add_get("/_bench/stats", stats)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("serving", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


@dataclass
class Stats:
    at: float
    requests: int
    served: list[int]
    last: list[float]


def stats(url: str) -> Stats:
    with urllib.request.urlopen(url + "/_bench/stats", timeout=10) as resp:  # noqa: S310
        doc = json.load(resp)
    return Stats(time.time(), int(doc["requests"]), doc["served"], doc["last"])


# The fleet: replicas on one fresh database.


@dataclass
class Fleet:
    config: Path
    db_url: str
    logs: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self) -> subprocess.Popen[bytes]:
        port = free_port()
        env = {**os.environ, "SPMON_STATE__URL": self.db_url,
               "SPMON_HTTP__LISTEN": f"127.0.0.1:{port}"}  # fmt: skip
        with open(self.logs / f"r{len(self.procs)}.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(self.config)],
                stdout=log, stderr=log, env=env,
            )  # fmt: skip
        self.procs.append(proc)
        return proc

    def live(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def leases(self) -> dict[int, int]:
        """shard → pid of its owner, for shards held unexpired (the leader row left out)."""
        try:
            with psycopg.connect(self.db_url) as conn:
                rows = conn.execute(
                    "SELECT shard, owner FROM shard_lease WHERE shard >= 0"
                    " AND owner IS NOT NULL AND expires_at > now()"
                ).fetchall()
        except psycopg.errors.UndefinedTable:  # the first replica has not made the schema yet
            return {}
        return {int(s): int(owner.split(":")[1]) for s, owner in rows}

    def split(self) -> bool:
        """Every shard held, by the live replicas only, each its fair share (256 ÷ R, up)."""
        held, pids = self.leases(), {p.pid for p in self.live()}
        fair = -(-SHARDS // len(pids))
        counts = [sum(owner == pid for owner in held.values()) for pid in pids]
        return len(held) == SHARDS and set(held.values()) == pids and max(counts) <= fair

    def stop(self) -> None:
        for proc in self.live():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def until(condition: Callable[[], bool], what: str, fleet: Fleet, every: float = 0.05) -> float:
    """Seconds (monotonic) at which `condition` first held; fails after CAP."""
    deadline = time.monotonic() + CAP
    while not condition():
        for proc in fleet.procs:
            if (code := proc.poll()) is not None and code > 0:  # a signal of ours is < 0
                raise RuntimeError(f"a replica exited {code}; logs in {fleet.logs}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"never: {what} (logs in {fleet.logs})")
        time.sleep(every)
    return time.monotonic()


@contextlib.contextmanager
def database(admin: str) -> Iterator[str]:
    name = f"spmon_bench_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_config(base: Path, sim_url: str, n: int, limit: float, interval: float) -> Path:
    from monitor.simulator import make_keys

    with open(base / "watches.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["install_sid", "exam_sid", "session_sid"])
        for k in make_keys(n, seed=SEED):
            out.writerow([k.install_sid, k.exam_sid, k.session_sid])
    config = base / "spmon.yaml"
    config.write_text(
        f"api: {{base_url: '{sim_url}', token: bench, rate_limit: {limit:g}, timeout: 10s,"
        f" retries: 0}}\npoll: {{interval: {interval:g}s, jitter: 0}}\n"
        "log: {format: json, level: info}\nwatch_files: [watches.csv]\n"
    )
    return config


# The measurements.


@dataclass
class Row:
    replicas: int
    start: float = 0.0
    rate: float = 0.0
    shares: list[float] = field(default_factory=list)
    steady: bool = True
    kill: tuple[float, float] | None = None
    term: tuple[float, float] | None = None


def throughput(fleet: Fleet, sim_url: str, n: int, window: float, row: Row) -> None:
    begin = stats(sim_url)
    try:
        until(lambda: stats(sim_url).requests - begin.requests >= n, "a round", fleet, every=1)
    except RuntimeError:
        row.steady = False  # the baseline round took longer than CAP: measure what there is
    first = stats(sim_url)
    time.sleep(window)
    second = stats(sim_url)
    row.rate = (second.requests - first.requests) / (second.at - first.at)
    owner = fleet.leases()
    by_pid: dict[int, int] = {p.pid: 0 for p in fleet.live()}
    for s in range(SHARDS):
        pid = owner.get(s)
        if pid in by_pid:
            by_pid[pid] += second.served[s] - first.served[s]
    total = max(1, sum(by_pid.values()))
    row.shares = sorted((100 * v / total for v in by_pid.values()), reverse=True)


def takeover(fleet: Fleet, sim_url: str, sig: int) -> tuple[float, float]:
    """Signal the replica holding most shards; seconds until the others hold all of them,
    and until each of them has been polled since."""
    held = fleet.leases()
    victim = max(fleet.live(), key=lambda p: sum(pid == p.pid for pid in held.values()))
    lost = [s for s, pid in held.items() if pid == victim.pid]
    sent, wall = time.monotonic(), time.time()
    victim.send_signal(sig)

    def taken() -> bool:
        now = fleet.leases()
        return all(now.get(s) not in (None, victim.pid) for s in lost)

    leased = until(taken, "the others hold the victim's shards", fleet)
    victim.wait(CAP)

    def polled() -> bool:
        last = stats(sim_url).last
        return all(last[s] > wall for s in lost) and taken()

    # Polls of lost shards before `leased` can be the victim's own last ones (SIGTERM drains).
    resumed = until(polled, "the victim's shards polled again", fleet, every=0.1)
    return leased - sent, resumed - sent


def measure(replicas: int, args: argparse.Namespace, sim_url: str, config: Path, logs: Path) -> Row:
    row = Row(replicas)
    with database(args.postgres) as db_url:
        fleet = Fleet(config, db_url, logs / f"x{replicas}")
        fleet.logs.mkdir()
        try:
            spawned = time.monotonic()
            for _ in range(replicas):
                fleet.spawn()
            row.start = until(fleet.split, "every shard held by the fleet", fleet) - spawned
            throughput(fleet, sim_url, args.sessions, args.window, row)
            if replicas > 1:
                row.kill = takeover(fleet, sim_url, signal.SIGKILL)
                fleet.spawn()
                until(fleet.split, "the split after the replacement", fleet)
                time.sleep(2)  # the replacement's first polls under way
                row.term = takeover(fleet, sim_url, signal.SIGTERM)
        finally:
            fleet.stop()
    return row


def report(rows: list[Row], args: argparse.Namespace) -> list[str]:
    limit, n = args.rate_limit, args.sessions

    def pair(t: tuple[float, float] | None) -> str:
        return "       -      " if t is None else f"{t[0]:5.1f} / {t[1]:5.1f}"

    lines = [
        f"{n} sessions, api.rate_limit {limit:g}/s (fleet), poll.interval {args.interval:g} s,"
        f" {os.cpu_count()}"
        " cores; takeover: leases held by the others / the victim's shards polled again (s)",
        "replicas  start s  polls/s  limit  share %        SIGKILL          SIGTERM",
    ]
    for r in rows:
        share = "/".join(f"{s:.0f}" for s in r.shares)
        lines.append(
            f"{r.replicas:>8}  {r.start:7.1f}  {r.rate:7.1f}  {limit:5g}  {share:<12}"
            f"  {pair(r.kill)}  {pair(r.term)}" + ("" if r.steady else "  (baseline unfinished)")
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--replicas", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--rate-limit", type=float, default=300.0)
    parser.add_argument("--window", type=float, default=20.0, help="Seconds polls are counted.")
    parser.add_argument("--interval", type=float, default=1.0, help="poll.interval, seconds.")
    parser.add_argument("--postgres", default=os.environ.get(
        "SPMON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"))  # fmt: skip
    parser.add_argument("--child-sim", type=int, metavar="PORT")
    args = parser.parse_args()
    if args.child_sim:
        asyncio.run(sim_child(args.sessions, args.child_sim))
        return
    port = free_port()
    sim = subprocess.Popen(
        [sys.executable, __file__, "--sessions", str(args.sessions), "--child-sim", str(port)],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    rows: list[Row] = []
    try:
        assert sim.stdout is not None
        sim.stdout.readline()  # "serving"
        sim_url = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryDirectory() as tmp:
            config = write_config(Path(tmp), sim_url, args.sessions, args.rate_limit, args.interval)
            try:
                for replicas in args.replicas:
                    rows.append(measure(replicas, args, sim_url, config, Path(tmp)))
                    print(f"{replicas} replicas measured", file=sys.stderr, flush=True)
            except Exception:
                for log in sorted(Path(tmp).glob("x*/r*.log")):  # gone with tmp: show the ends
                    tail = log.read_text(errors="replace").splitlines()[-5:]
                    print(f"--- {log.parent.name}/{log.name}", *tail, sep="\n", file=sys.stderr)
                raise
    finally:
        sim.terminate()
        sim.wait()
        for line in report(rows, args):
            print(line, flush=True)


if __name__ == "__main__":
    main()

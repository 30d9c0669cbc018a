"""What one /metrics scrape costs at N watched sessions, with and without metrics.by_labels.

Fills a WatchSet in memory (no API, no store): every session has a snapshot, a third of them
with a pending review, half of those overdue. Labels are shared dicts as watch sources make
them (`--courses` distinct sets), or with `--per-session` a dict of its own per watch (a
student label: past core.watches.SHARED_LABEL_SETS every watch has its own). Prints the median
scrape time and the peak memory one scrape allocates (tracemalloc, in a separate pass).

    python bench/scrape.py                        # 100,000 sessions, 40 courses
    python bench/scrape.py --per-session --cap 50
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

# This checkout, not whichever spmon the interpreter has installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import CollectorRegistry, generate_latest

from monitor.core import buckets
from monitor.core.keys import SessionKey
from monitor.core.snapshot import Snapshot
from monitor.core.watches import shared_labels
from monitor.metrics import Metrics
from monitor.watchset import Entry, WatchSet

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def filled(n: int, courses: int, *, per_session: bool, by: buckets.LabelBuckets | None) -> WatchSet:
    watchset = WatchSet(by_labels=by)
    for i in range(n):
        course = f"C{i % courses:03d}"
        labels = (
            shared_labels({"course": course, "student": str(i)})
            if per_session
            else shared_labels({"course": course})
        )
        required = i % 3 == 0
        deadline = NOW + timedelta(hours=-1 if i % 2 else 1)
        snap = Snapshot("Closed", required, False, deadline)
        key = SessionKey("AI" + "0" * 32, f"EX{i // 100:032d}", f"ES{i:032d}")
        watchset.add(Entry(key, labels, 60.0, snapshot=snap), due=float(i))
    return watchset


def measure(registry: CollectorRegistry, rounds: int) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        generate_latest(registry)
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    generate_latest(registry)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times) * 1000, peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--courses", type=int, default=40)
    parser.add_argument("--cap", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--per-session", action="store_true")
    args = parser.parse_args()
    for name, by in (("by_labels: []", None), ("by_labels: [course]", ["course"])):
        buckets_ = buckets.LabelBuckets(by, cap=args.cap) if by else None
        watchset = filled(args.n, args.courses, per_session=args.per_session, by=buckets_)
        registry = CollectorRegistry()
        Metrics(registry).watch_set(watchset)
        ms, kib = measure(registry, args.rounds)
        print(f"{name:<22} {args.n} sessions: scrape {ms:7.1f} ms, peak {kib:8.1f} KiB")


if __name__ == "__main__":
    main()

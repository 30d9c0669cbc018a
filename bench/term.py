"""An exam term, simulated: what spmon's polling policies cost in API calls and in latency.

Simulated time only (no network, no clock): weeks run in seconds, every figure exact for its
seed. The decisions are spmon's own pure code: core.phase (phase_of, track_settled,
interval_for, next_poll; default Intervals), core.rules.evaluate, core.poll (deadline_after,
MISSING_INTERVAL) and core.schedule.first_due.

The term: sessions booked 1–21 days ahead (or at term start), appointments on quarter hours
08:00–20:00, half over the whole term, a quarter each in a midterm and a finals week, the last
week left for reviews. Scheduled → In Progress (minutes late) → Processing → review required
(deadline 2–7 days on) → reviewed → Closed; some cancelled, some with an incident (median
4 min, log-normal: a few under a minute), some needing no review, some deadlines moved
(mostly later; an earlier one anywhere before the old), a quarter reviewed late. A session
answers 404 before its creation.

Policies (every GET counted): fixed 60 s, as today's poller (deadline wake-up, 404 backed off
to MISSING_INTERVAL), jitter 0 so runs of identical polls are counted in closed form (the same
figures as stepping them); adaptive, jitter 0.1, every session watched from term start (the
list known up front, appointments included); discovery, adaptive, each session watched from
the first appointments-report read listing it (every 15 min, one call per page of 100 rows),
kept after it leaves the report.

Latency runs from a change to the first poll seeing it ("live": a status change from or to In
Progress / Incident), and from a deadline to the poll whose evaluation raises review.overdue.
Missed: a change overwritten before any poll saw it, an overdue review done before any poll
noticed it. The last lines check the issue's targets and say by how much one is missed.

    python bench/term.py                            # 10,000 sessions, 8 weeks
    python bench/term.py --sessions 2000 --weeks 2  # quick
"""

from __future__ import annotations

import argparse
import bisect
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.core import phase, poll, rules, schedule
from monitor.core.snapshot import Snapshot

DAY = 86400.0
HOUR = 3600.0
TERM_START = datetime(2025, 9, 1, tzinfo=UTC).timestamp()
REPORT_EVERY = 900.0
REPORT_PAGE = 100
INTERVALS = phase.DEFAULT
RULES = poll.Rules()
FIELDS = ("status", "review_required", "reviewed", "review_by_date")
ORDER = ("Scheduled→Cancelled", "Scheduled→In Progress", "In Progress→Incident",
         "Incident→In Progress", "In Progress→Processing", "Processing→Closed", "review required",
         "deadline moved", "reviewed")  # fmt: skip

# Shares of sessions: cancelled, with an incident, needing no review, deadline moved, late.
CANCELLED, INCIDENT, NO_REVIEW, DEADLINE_MOVED, LATE_REVIEW = 0.04, 0.08, 0.20, 0.10, 0.25

Step = tuple[float, str, dict[str, Any]]
"""When, which change, and the Snapshot fields it sets."""

# The targets: fewer calls than fixed 60 s, live changes p99, overdue p99 (seconds).
TARGET_RATIO, TARGET_LIVE_P99, TARGET_OVERDUE_P99 = 10.0, 60.0, 1.0


@dataclass(frozen=True, slots=True)
class Session:
    """The truth: `times[i]` is when the session became `states[i]`; times[0] its creation."""

    appointment: float
    times: tuple[float, ...]
    states: tuple[Snapshot, ...]
    labels: tuple[str, ...]
    """What changed at times[i], e.g. "In Progress→Incident" or "deadline moved"."""
    overdue_at: float | None
    """The deadline it went past unreviewed; None if never overdue."""
    completed_at: float
    """When it left the appointments report (terminal, no review pending)."""

    def at(self, now: float) -> Snapshot | None:
        index = bisect.bisect_right(self.times, now) - 1
        return self.states[index] if index >= 0 else None


def _at(when: float) -> datetime:
    return datetime.fromtimestamp(when, UTC)


def _appointment(rng: random.Random, days: float) -> float:
    pick = rng.random()
    if pick < 0.5:
        day = rng.uniform(0.5, days - 7)
    elif pick < 0.75:
        day = days / 2 + rng.uniform(-3.5, 3.5)
    else:
        day = days - 14 + rng.uniform(0, 7)
    day = math.floor(min(max(day, 0.5), days - 1))
    return TERM_START + day * DAY + 8 * HOUR + rng.randrange(49) * 900.0


def make_session(rng: random.Random, days: float) -> Session:
    appointment = _appointment(rng, days)
    created = max(TERM_START, appointment - rng.uniform(1, 21) * DAY)
    steps: list[Step] = []
    overdue_at: float | None = None
    if rng.random() < CANCELLED:
        cancelled = rng.uniform(created, appointment)
        steps.append((cancelled, "Scheduled→Cancelled", {"status": "Cancelled"}))
        return _build(appointment, created, steps, None, cancelled)
    started = appointment + min(rng.expovariate(1 / 180), 1800.0)
    ended = started + rng.uniform(0.75, 3) * HOUR
    steps.append((started, "Scheduled→In Progress", {"status": "In Progress"}))
    if rng.random() < INCIDENT:
        begun = started + rng.uniform(0.1, 0.8) * (ended - started)
        over = min(begun + max(rng.lognormvariate(math.log(240), 1.0), 5.0), ended - 60)
        steps.append((begun, "In Progress→Incident", {"status": "Incident"}))
        steps.append((over, "Incident→In Progress", {"status": "In Progress"}))
    steps.append((ended, "In Progress→Processing", {"status": "Processing"}))
    processed = ended + rng.uniform(5, 60) * 60
    if rng.random() < NO_REVIEW:
        steps.append((processed, "Processing→Closed", {"status": "Closed"}))
        return _build(appointment, created, steps, None, processed)
    deadline = math.ceil((processed + rng.uniform(2, 7) * DAY) / HOUR) * HOUR
    steps.append(
        (processed, "review required", {"review_required": True, "review_by_date": _at(deadline)})
    )
    moved = rng.random() < DEADLINE_MOVED
    moved_at = rng.uniform(processed, deadline)
    if moved and rng.random() < 0.8:
        final = deadline + rng.uniform(1, 3) * DAY
    else:
        final = moved_at + rng.random() * (deadline - moved_at) if moved else deadline
    if rng.random() < LATE_REVIEW:
        reviewed = final + rng.lognormvariate(math.log(6 * HOUR), 1.2)
        overdue_at = final
    else:
        reviewed = rng.uniform(processed + 600, final)
    if moved and moved_at < reviewed:
        steps.append((moved_at, "deadline moved", {"review_by_date": _at(final)}))
    closed = reviewed + rng.uniform(0.5, 12) * HOUR
    steps.append((reviewed, "reviewed", {"reviewed": True}))
    steps.append((closed, "Processing→Closed", {"status": "Closed"}))
    return _build(appointment, created, steps, overdue_at, closed)


def _build(
    appointment: float, created: float, steps: list[Step], overdue_at: float | None, done: float
) -> Session:
    current = Snapshot("Scheduled", False, False, None)
    times, states, labels = [created], [current], ["created"]
    for when, label, fields in sorted(steps, key=lambda step: step[0]):
        current = replace(current, **fields)
        times.append(when)
        states.append(current)
        labels.append(label)
    return Session(appointment, tuple(times), tuple(states), tuple(labels), overdue_at, done)


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    fixed: float | None
    """A fixed interval for every session; None: the phase's interval."""
    jitter: float
    discovery: bool


POLICIES = (
    Policy("fixed 60 s", 60.0, 0.0, discovery=False),
    Policy("adaptive", None, RULES.jitter, discovery=False),
    Policy("discovery", None, RULES.jitter, discovery=True),
)


@dataclass(slots=True)
class Tally:
    calls: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    seen: dict[str, list[float]] = field(default_factory=dict)
    """Latencies from a change to the first poll seeing it, by change."""
    overdue: list[float] = field(default_factory=list)
    missed: Counter[str] = field(default_factory=Counter)
    missed_overdue: int = 0


def _phase(
    snapshot: Snapshot | None, appointment: datetime, now: datetime, settled: datetime | None
) -> phase.Phase:
    return phase.phase_of(
        snapshot, appointment=appointment, now=now, settled_since=settled, intervals=INTERVALS
    )


def _is_live(label: str) -> bool:
    return any(part.casefold() in phase.LIVE_STATUSES for part in label.split("→"))


@dataclass(slots=True)
class Watch:
    """What the poller knows of one session, decided at each poll as spmon decides it."""

    s: Session
    pol: Policy
    t: Tally
    interval: float | None
    review: rules.ReviewState = rules.NO_REVIEW
    settled: datetime | None = None
    deadline: float | None = None
    pending: int = 1
    """The first change no poll has been checked against yet."""
    kind: str = ""
    noticed: bool = False

    def decide(self, p: float) -> float:
        """One poll in full at `p`; the next instant at which a poll could decide otherwise."""
        s, t = self.s, self.t
        woke = p == self.deadline
        truth = s.at(p)
        while self.pending < len(s.times) and s.times[self.pending] <= p:
            _seen(s, self.pending, truth, p - s.times[self.pending], t)
            self.pending += 1
        now, appointment = _at(p), _at(s.appointment)
        if truth is None:  # a 404: backed off as core.poll does, no deadline to wake for
            now_phase = _phase(None, appointment, now, None)
            base = self.pol.fixed or phase.interval_for(now_phase, INTERVALS, None)
            self.interval = max(base or 0.0, poll.MISSING_INTERVAL)
            self.kind, self.deadline = "not created yet", None
        else:
            was = self.review.overdue_since
            self.review, _ = rules.evaluate(truth, self.review, now, RULES.policy)
            if was is None and self.review.overdue_since is not None:
                assert s.overdue_at is not None, "a poll sees the truth: no false overdue"
                self.noticed = True
                t.overdue.append(p - s.overdue_at)
            now_phase = _phase(truth, appointment, now, self.settled)
            self.settled = phase.track_settled(now_phase, self.settled, now)
            self.interval = self.pol.fixed or phase.interval_for(now_phase, INTERVALS, None)
            self.deadline = poll.deadline_after(truth, self.review, p, RULES)
            self.kind = now_phase.value
        t.by_kind["deadline wake-up" if woke else self.kind] += 1
        window = INTERVALS.live_window
        edges = [s.appointment - window, s.appointment + window, self.deadline or math.inf]
        if self.settled is not None:
            edges.append(self.settled.timestamp() + INTERVALS.retire_after)
        if self.pending < len(s.times):
            edges.append(s.times[self.pending])
        if truth is None:
            edges.append(s.times[0])  # its creation ends the 404 back-off
        return min((x for x in edges if x > p), default=math.inf)


def simulate(
    s: Session, pol: Policy, start: float, end: float, rng: random.Random, t: Tally
) -> None:
    """Poll one session from `start` to `end`; sessions do not interact, so each runs alone.

    Between two instants at which something can change (the truth, the deadline wake-up, the
    edges of the live window, retirement), every poll sees the same state and so decides the
    same phase and interval: those polls only call `next_poll` (or, with no jitter, are
    counted in closed form); the poll at or after such an instant decides in full."""
    first = _phase(None, _at(s.appointment), _at(start), None)
    interval = pol.fixed or phase.interval_for(first, INTERVALS, None) or INTERVALS.live
    w = Watch(s, pol, t, interval, kind=first.value)
    w.pending = max(1, bisect.bisect_right(s.times, start))
    quick, quiet = 0, -math.inf
    p: float | None = schedule.first_due(start, interval, rng.random())
    while p is not None and p < end:
        if p >= quiet:
            t.by_kind[w.kind] += quick
            quick, quiet = 0, w.decide(p)
        elif w.interval is not None and pol.jitter == 0.0:
            # Fixed: every poll until `quiet` in one step, exactly.
            n = math.ceil((min(quiet, end) - p) / w.interval)
            quick, p = quick + n, p + (n - 1) * w.interval
        else:
            quick += 1
        p = phase.next_poll(p, w.interval, rng.random(), jitter=pol.jitter, deadline=w.deadline)
    t.by_kind[w.kind] += quick
    overdue, done = s.overdue_at, s.completed_at
    if overdue is not None and overdue < end and not w.noticed and done < end:
        t.missed_overdue += 1


def _seen(s: Session, i: int, truth: Snapshot | None, latency: float, t: Tally) -> None:
    before, after = s.states[i - 1], s.states[i]
    changed = [name for name in FIELDS if getattr(before, name) != getattr(after, name)]
    label = s.labels[i]
    if truth is not None and all(getattr(truth, f) == getattr(after, f) for f in changed):
        t.seen.setdefault(label, []).append(latency)
    else:
        t.missed[label] += 1


def discovery(sessions: Sequence[Session], end: float) -> tuple[list[float], int]:
    """Each session's first report read listing it, and the calls all reads cost."""
    created = sorted(s.times[0] for s in sessions)
    completed = sorted(s.completed_at for s in sessions)
    calls, read = 0, TERM_START
    while read < end:
        listed = bisect.bisect_right(created, read) - bisect.bisect_right(completed, read)
        calls += max(1, math.ceil(listed / REPORT_PAGE))
        read += REPORT_EVERY
    starts = [
        TERM_START + math.ceil((s.times[0] - TERM_START) / REPORT_EVERY) * REPORT_EVERY
        for s in sessions
    ]
    return starts, calls


def run(pol: Policy, sessions: Sequence[Session], end: float, seed: int) -> Tally:
    rng = random.Random(f"{seed}:{pol.name}")
    tally = Tally()
    starts = [TERM_START] * len(sessions)
    if pol.discovery:
        starts, reads = discovery(sessions, end)
        tally.by_kind["appointments report"] += reads
    for session, start in zip(sessions, starts, strict=True):
        if start < end:
            simulate(session, pol, start, end, rng, tally)
    tally.calls = sum(tally.by_kind.values())
    return tally


def pct(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def secs(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def grid(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    first, rest = widths[0], widths[1:]
    return [
        "  ".join([row[0].ljust(first), *(c.rjust(w) for c, w in zip(row[1:], rest, strict=True))])
        for row in rows
    ]


def latencies(t: Tally, live: bool) -> list[float]:
    return [x for label, xs in t.seen.items() if _is_live(label) == live for x in xs]


def table(results: Sequence[tuple[Policy, Tally]], days: float) -> list[str]:
    fixed = results[0][1].calls
    rows = [("policy", "calls/day", "calls", "vs fixed", "live p50", "live p99", "other p50",
             "other p99", "overdue p50", "overdue p99", "missed live/other/overdue")]  # fmt: skip
    for pol, t in results:
        live, other = latencies(t, live=True), latencies(t, live=False)
        missed_live = sum(n for label, n in t.missed.items() if _is_live(label))
        rows.append((
            pol.name, f"{t.calls / days:,.0f}", f"{t.calls:,}", f"{fixed / t.calls:.1f}x",
            secs(pct(live, 0.5)), secs(pct(live, 0.99)),
            secs(pct(other, 0.5)), secs(pct(other, 0.99)),
            secs(pct(t.overdue, 0.5)), secs(pct(t.overdue, 0.99)),
            f"{missed_live}/{t.missed.total() - missed_live}/{t.missed_overdue}",
        ))  # fmt: skip
    return grid(rows)


def by_change(results: Sequence[tuple[Policy, Tally]]) -> list[str]:
    """Latency p50 / p99 of each kind of change: where the phases' intervals show."""
    labels = sorted({label for _, t in results for label in t.seen}, key=ORDER.index)
    rows = [("change (seen)", *(f"{pol.name} p50 / p99" for pol, _ in results))]
    for label in labels:
        n = len(results[0][1].seen.get(label, []))
        spreads = [t.seen.get(label, []) for _, t in results]
        cells = [f"{secs(pct(xs, 0.5))} / {secs(pct(xs, 0.99))}" for xs in spreads]
        rows.append((f"{label} ({n:,})", *cells))
    return grid(rows)


def verdicts(results: Sequence[tuple[Policy, Tally]]) -> list[str]:
    fixed, lines = results[0][1].calls, []
    for pol, t in results[1:]:
        ratio = fixed / t.calls
        checks = [(ratio, TARGET_RATIO, f"{ratio:.1f}x fewer calls than fixed (target {TARGET_RATIO:g}x)")]  # fmt: skip
        live, overdue = pct(latencies(t, live=True), 0.99), pct(t.overdue, 0.99)
        if live is not None:
            checks.append((-live, -TARGET_LIVE_P99, f"live changes p99 {secs(live)} (target {TARGET_LIVE_P99:g} s)"))  # fmt: skip
        if overdue is not None:
            checks.append((-overdue, -TARGET_OVERDUE_P99, f"overdue p99 {secs(overdue)} (target {TARGET_OVERDUE_P99:g} s)"))  # fmt: skip
        for value, target, what in checks:  # higher is better: latencies are negated
            if value >= target:
                lines.append(f"{pol.name:>10}: met    {what}")
            elif target > 0:
                lines.append(f"{pol.name:>10}: MISSED {what}: {target / value:.2f}x too many calls")
            else:
                lines.append(f"{pol.name:>10}: MISSED {what}: {target - value:.1f} s too late")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--weeks", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args(argv)
    days = args.weeks * 7
    if days < 14 or args.sessions < 1:
        parser.error("at least 1 session and 2 weeks (a finals week, then a week of reviews)")
    end = TERM_START + days * DAY
    truth_rng = random.Random(args.seed)
    sessions = [make_session(truth_rng, days) for _ in range(args.sessions)]
    began = time.perf_counter()
    results = [(pol, run(pol, sessions, end, args.seed)) for pol in POLICIES]
    changes = sum(len(s.times) - 1 for s in sessions)
    overdue = sum(1 for s in sessions if s.overdue_at is not None and s.overdue_at < end)
    print(f"term: {args.sessions:,} sessions over {days:g} days (seed {args.seed}), "
          f"{changes:,} changes, {overdue:,} reviews overdue\n{INTERVALS}")  # fmt: skip
    print()
    print("\n".join(table(results, days)))
    print()
    print("\n".join(by_change(results)))
    print()
    print("calls by phase (for fixed 60 s: the phase the session is in, polled all the same):")
    for pol, t in results:
        kinds = ", ".join(f"{kind} {n:,}" for kind, n in t.by_kind.most_common() if n)
        print(f"{pol.name:>10}: {kinds}")
    for pol, t in results:
        if t.missed:
            listed = ", ".join(f"{label} {n}" for label, n in t.missed.most_common())
            print(f"{pol.name:>10} missed changes: {listed}")
    print()
    print("\n".join(verdicts(results)))
    print(f"\n(simulated in {time.perf_counter() - began:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

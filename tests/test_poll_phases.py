"""Lifecycle-adaptive polling in the running loop: the simulator as a real server, a real
SQLite file, the poll loop on a FakeClock that the test moves from one due time to the next.

Each test reads poll times off the fake clock (exact) and counts the requests the simulator
actually answered, so "not polled" means no request reached the API."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.api import ApiClient, ClientOptions
from monitor.core import rules
from monitor.core.backoff import Backoff
from monitor.core.events import isoformat
from monitor.core.keys import SessionKey
from monitor.core.phase import DEFAULT, Intervals, Phase
from monitor.metrics import Metrics
from monitor.poller import Poller, PollerOptions, WatchSet
from monitor.settings import ConfigError, Settings, load_settings
from monitor.simulator import Simulator, make_keys
from monitor.store import Committer, SqliteStore
from monitor.wiring import poller_options
from tests.clockkit import T0, FakeClock
from tests.simcount import Counted, counted
from tests.storekit import outbox_rows

NO_APPOINTMENT = {"appointmentDate": None}
LIVE = {"status": "Incident", "reviewRequired": False, "reviewed": False, **NO_APPOINTMENT}
SETTLED = {"status": "Closed", "reviewRequired": False, "reviewed": False, **NO_APPOINTMENT}


@dataclass
class Loop:
    """A running poll loop and what it did: each session's poll times on the fake clock."""

    poller: Poller
    clock: FakeClock
    api: Counted
    polls: dict[SessionKey, list[float]] = field(default_factory=lambda: defaultdict(list))

    @property
    def watchset(self) -> WatchSet:
        return self.poller.watchset

    def asked(self, key: SessionKey) -> int:
        """Requests for `key` the simulator answered."""
        return sum(1 for hit in self.api.hits if hit.sid == key.session_sid)

    def gaps(self, key: SessionKey) -> list[float]:
        times = self.polls[key]
        return [later - earlier for earlier, later in itertools.pairwise(times)]

    async def quiet(self) -> None:
        """Until every session waits for a due time still ahead (its poll committed), or is
        retired: nothing is in flight."""
        ws = self.watchset
        async with asyncio.timeout(10):
            while True:
                now = self.clock.now()
                due = ws.heap.peek()
                waiting = all(
                    key in ws.heap or entry.phase is Phase.RETIRED
                    for key, entry in ws.entries.items()
                )
                if waiting and (due is None or due > now) and not self.poller.committer.backlog:
                    break
                await asyncio.sleep(0.002)
        self._record()

    async def run_until(self, end: float) -> None:
        """Move the clock from one due time to the next up to `end`, letting each poll land."""
        await self.quiet()
        while (due := self.watchset.heap.peek()) is not None and due <= end:
            self.clock.set(due)
            await self.quiet()
        self.clock.set(end)
        await self.quiet()

    def _record(self) -> None:
        for key, entry in self.watchset.entries.items():
            polled = entry.last_poll_at
            if polled is not None and (not self.polls[key] or self.polls[key][-1] != polled):
                self.polls[key].append(polled)


LoopFactory = Callable[..., Awaitable[Loop]]


@pytest.fixture
async def start_loop(state_path: Path) -> AsyncIterator[LoopFactory]:
    async with AsyncExitStack() as stack:

        async def create(
            api: Counted,
            watches: Sequence[tuple[SessionKey, float | None]],
            *,
            clock: FakeClock,
            phases: Intervals = DEFAULT,
            path: Path = state_path,
            within: AsyncExitStack = stack,
        ) -> Loop:
            """A running loop, closed (in order) when `within` closes: the test's end."""
            stack = within
            store = await stack.enter_async_context(SqliteStore(path))
            metrics = Metrics(CollectorRegistry(), sinks=["hook"])
            options = ClientOptions(
                base_url=api.url, token=None, rate_limit=1000, backoff=Backoff(0.01, 0.02, 0)
            )
            client = await stack.enter_async_context(
                ApiClient(options, on_response=metrics.api_response, clock=clock)
            )
            watchset = WatchSet(clock=clock)
            committer = await stack.enter_async_context(Committer(store))
            poller = Poller(
                api=client, store=store, watchset=watchset, committer=committer, metrics=metrics,
                router=lambda _e: ["hook"],
                options=PollerOptions(
                    policy=rules.Policy(overdue_repeat=None),
                    deployment=store.deployment_id,
                    phases=phases,
                ),
                clock=clock, rng=random.Random(5),
            )  # fmt: skip
            metrics.watch_set(watchset)
            await poller.restore([(key, {}, override) for key, override in watches])
            stop = asyncio.Event()
            task = asyncio.create_task(poller.run(stop), name="poller")

            async def halt() -> None:
                stop.set()
                await task

            stack.push_async_callback(halt)
            return Loop(poller, clock, api)

        yield create


@pytest.fixture
async def api() -> AsyncIterator[Callable[[int], Awaitable[Counted]]]:
    async with AsyncExitStack() as stack:

        async def create(n: int) -> Counted:
            sim = Simulator(make_keys(n, seed=9), clock=FakeClock().now)
            return await stack.enter_async_context(counted(sim))

        yield create


def within(gaps: list[float], interval: float, jitter: float = 0.1) -> bool:
    low, high = interval * (1 - jitter), interval * (1 + jitter)
    return bool(gaps) and all(low - 1e-6 <= gap <= high + 1e-6 for gap in gaps)


async def test_each_session_is_polled_at_its_phase_interval_and_an_override_wins(
    api, start_loop
) -> None:
    served = await api(4)
    live, settled, override, scheduled = served.sim.keys
    served.sim.set(live, **LIVE)
    served.sim.set(settled, **SETTLED)
    served.sim.set(override, **SETTLED)
    far_off = isoformat(T0 + timedelta(days=2))
    served.sim.set(scheduled, **{**SETTLED, "status": "Scheduled", "appointmentDate": far_off})
    clock = FakeClock()
    loop = await start_loop(
        served, [(live, None), (settled, None), (override, 45.0), (scheduled, None)], clock=clock
    )
    end = clock.now() + 600
    await loop.run_until(end)

    assert within(loop.gaps(live), DEFAULT.live)
    assert 18 <= loop.asked(live) <= 23
    assert within(loop.gaps(override), 45.0)
    # Never polled before, both were live until their first answer; then one hour / six hours.
    for key, interval in ((settled, DEFAULT.settled), (scheduled, DEFAULT.scheduled)):
        assert loop.asked(key) == len(loop.polls[key]) == 1
        (first,) = loop.polls[key]
        assert first <= T0.timestamp() + DEFAULT.live
        assert loop.watchset.heap.discard(key) >= first + interval * 0.9
    phases = loop.watchset.summary().by_phase
    assert phases == {
        "live": 1, "awaiting_review": 0, "processing": 0, "scheduled": 1, "settled": 2, "retired": 0
    }  # fmt: skip
    registry = loop.poller.metrics.registry
    assert registry.get_sample_value("spmon_sessions_by_phase", {"phase": "settled"}) == 2
    assert registry.get_sample_value("spmon_sessions_by_phase", {"phase": "retired"}) == 0


async def test_the_review_deadline_still_wakes_the_loop_at_the_deadline(api, start_loop) -> None:
    """Awaiting review polls every 5 min, yet the deadline 100 s away is checked at once."""
    served = await api(1)
    (key,) = served.sim.keys
    deadline = T0 + timedelta(seconds=100)
    served.sim.set(key, **{**SETTLED, "reviewRequired": True, "reviewByDate": isoformat(deadline)})
    clock = FakeClock()
    loop = await start_loop(served, [(key, None)], clock=clock)
    await loop.run_until(clock.now() + 900)

    polls = loop.polls[key]
    at_deadline = [t for t in polls if deadline.timestamp() < t <= deadline.timestamp() + 1]
    assert len(at_deadline) == 1
    after = polls[polls.index(at_deadline[0]) + 1 :]
    assert within([b - a for a, b in zip(at_deadline + after, after, strict=False)], 300.0)
    rows = await outbox_rows(loop.poller.store, state=None, limit=10)
    events = [json.loads(row.payload) for row in rows]
    assert [event["type"] for event in events] == ["review.overdue"]
    assert loop.watchset.entries[key].phase is Phase.AWAITING_REVIEW


SHORT = Intervals(
    live=30, awaiting_review=300, processing=300, scheduled=600, settled=600, retire_after=1800
)


async def test_a_settled_session_retires_and_a_revived_one_is_polled_again(api, start_loop) -> None:
    served = await api(1)
    (key,) = served.sim.keys
    served.sim.set(key, **SETTLED)
    clock = FakeClock()
    loop = await start_loop(served, [(key, None)], clock=clock, phases=SHORT)
    await loop.run_until(clock.now() + 4 * 3600)

    entry = loop.watchset.entries[key]
    polls = loop.polls[key]
    assert entry.phase is Phase.RETIRED and key not in loop.watchset.heap
    assert entry.settled_since is not None
    assert polls[-1] - entry.settled_since.timestamp() > SHORT.retire_after
    assert polls[-1] < clock.now() - 3600  # hours without a poll
    assert loop.asked(key) == len(polls)
    assert loop.watchset.summary().by_phase["retired"] == 1

    # A source reports it changed: it is polled at once and settles afresh.
    asked = loop.asked(key)
    assert loop.watchset.revive(key, clock.now())
    assert not loop.watchset.revive(key, clock.now())  # not retired (any more)
    revived_at = clock.now()
    await loop.run_until(clock.now() + SHORT.settled * 0.5)
    assert loop.asked(key) == asked + 1
    assert entry.phase is Phase.SETTLED
    assert entry.settled_since is not None
    assert revived_at <= entry.settled_since.timestamp() <= revived_at + 1
    assert loop.watchset.heap.peek() >= loop.polls[key][-1] + SHORT.settled * 0.9


async def test_settled_since_survives_a_restart_and_a_retired_session_is_not_polled(
    api, start_loop, tmp_path: Path
) -> None:
    served = await api(2)
    settled, live = served.sim.keys
    served.sim.set(settled, **SETTLED)
    served.sim.set(live, **LIVE)
    path = tmp_path / "phases.db"
    month_ago = FakeClock(T0 - timedelta(days=31))
    async with AsyncExitStack() as before:
        first = await start_loop(
            served, [(settled, None)], clock=month_ago, path=path, within=before
        )
        await first.poller.poll_all()
        since = first.watchset.entries[settled].settled_since
        assert since is not None and since.timestamp() == month_ago.now()

    clock = FakeClock()
    loop = await start_loop(served, [(settled, None), (live, None)], clock=clock, path=path)
    entry = loop.watchset.entries[settled]
    assert entry.settled_since == since
    assert entry.phase is Phase.RETIRED and settled not in loop.watchset.heap
    asked = loop.asked(settled)
    await loop.run_until(clock.now() + 300)
    assert loop.asked(settled) == asked  # no request reached the API
    assert loop.asked(live) >= 9
    assert loop.watchset.first_cycle_remaining == 0  # readiness does not wait for a retired session


def test_poll_interval_set_is_fixed_polling_and_unset_follows_the_phases() -> None:
    watch = {"install_sid": "AI" + "1" * 32, "exam_sid": "EX" + "2" * 32}
    watches = [{**watch, "session_sid": "ES" + "3" * 32}, {**watch, "session_sid": "ES" + "4" * 32}]
    watches[1]["interval"] = "45s"
    adaptive = Settings(watches=watches)
    fixed = Settings(watches=watches, poll={"interval": "1s"})
    assert [adaptive.interval_of(w) for w in adaptive.watches] == [None, 45.0]
    assert [fixed.interval_of(w) for w in fixed.watches] == [1.0, 45.0]
    assert poller_options(adaptive, deployment="d").phases == DEFAULT
    custom = Settings(poll={"phases": {"live": "10s", "settled": "1d", "retire_after": "90d"}})
    phases = poller_options(custom, deployment="d").phases
    assert phases == Intervals(live=10, settled=86400, retire_after=90 * 86400)


def test_phase_intervals_that_shrink_are_one_line_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "api: {base_url: 'http://127.0.0.1:1'}\npoll: {phases: {live: 10m}}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert caught.value.lines == [
        "poll.phases: phase intervals must not shrink: live <= awaiting_review <= settled"
    ]


def test_the_capacity_warning_takes_the_running_phase_mix() -> None:
    assert Settings().capacity_warning(needed=4.0) is None
    warning = Settings().capacity_warning(needed=12.5)
    assert warning is not None and "12.5 requests/s" in warning and "poll.phases" in warning


def test_check_config_says_whether_polling_is_fixed_or_by_phase() -> None:
    assert Settings().redacted()["poll"]["interval"] == "unset: by phase (poll.phases)"
    assert Settings(poll={"interval": "2m"}).redacted()["poll"]["interval"] == 120.0
    assert Settings().redacted()["poll"]["phases"]["settled"] == 21600.0

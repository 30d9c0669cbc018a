"""The poll loop: due sessions → API → parse/diff/rules → one store transaction per batch.

The clock is read here, from the one `aio.Clock` the loop was given (its poll step reads the
same); everything it decides with is in `monitor.core` and takes `now` as an argument. This
module schedules; one poll's meaning is `monitor.poll_step`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import structlog

from monitor import aio
from monitor.api import ApiClient
from monitor.core import poll as decide
from monitor.core.breaker import Verdict
from monitor.core.keys import SessionKey
from monitor.metrics import Metrics
from monitor.poll_step import PollerOptions, PollStep, Router
from monitor.store import Committer, SessionStore
from monitor.watchset import Entry, WatchSet

__all__ = ["Entry", "Poller", "PollerOptions", "WatchSet"]

log = structlog.get_logger("spmon.poller")


MAX_BACKLOG = 512
"""Fetched polls waiting for their transaction, at most: one commit batch (`Committer`'s
512), about 1.5 MB of payloads. Twice that raised a first start's peak by the payloads
alone: freed, they left holes in the C heap under longer-lived blocks (bench/memory.py)."""


class Poller:
    """Drains due sessions with at most `concurrency` polls in flight, until `stop` is set."""

    def __init__(
        self,
        *,
        api: ApiClient,
        store: SessionStore,
        watchset: WatchSet,
        committer: Committer,
        metrics: Metrics,
        router: Router,
        options: PollerOptions,
        on_commit: Callable[[], None] = lambda: None,
        token_source: Callable[[], str | None] = lambda: None,
        clock: aio.Clock = aio.SYSTEM,
        rng: random.Random | None = None,
    ) -> None:
        self.api, self.store, self.watchset, self.metrics = api, store, watchset, metrics
        self.options, self.on_commit, self.clock = options, on_commit, clock
        self.rng = rng or random.Random()
        self.committer = committer
        self.heartbeat = 0.0
        self._alarm = aio.Alarm(clock)
        self._inflight = 0
        self._throttled = False
        self._polls: asyncio.TaskGroup | None = None
        self._outcomes: dict[SessionKey, str] | None = None
        self._stop: asyncio.Event | None = None
        self.step = PollStep(
            api=api,
            store=store,
            watchset=watchset,
            metrics=metrics,
            committer=self.committer,
            router=router,
            options=options,
            on_commit=lambda: self.on_commit(),
            token_source=token_source,
            clock=clock,
            rng=self.rng,
        )
        self.restore = self.step.restore
        """Resume from the store: no re-baselining; spread first polls over one interval."""

    @property
    def auth_failing(self) -> bool:
        return self.step.auth_failing

    async def run(self, stop: asyncio.Event) -> None:
        """Poll due sessions until `stop`; in-flight polls finish (and commit) before return."""
        stopper = asyncio.create_task(self._wake_on(stop), name="poller-stop")
        self._stop = stop
        try:
            async with asyncio.TaskGroup() as polls:
                self._polls = polls
                await self._tick_until(stop)
        finally:
            self._polls = None
            stopper.cancel()
            self._alarm.cancel()

    async def poll_all(self) -> dict[SessionKey, str]:
        """Poll every watched session once, now (the `once` command); returns each polled
        session's outcome. A session missing from the answer was not polled (e.g. while the
        token is rejected only one probe goes out)."""
        now = self.clock.now()
        for key in self.watchset.entries:
            self.watchset.heap.push(key, now)
        stop = asyncio.Event()
        self._stop = stop
        outcomes: dict[SessionKey, str] = {}
        self._outcomes = outcomes
        try:
            async with asyncio.TaskGroup() as polls:
                self._polls = polls
                self._launch(now, until=now)
        finally:
            self._polls = None
            self._outcomes = None
        return outcomes

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._alarm.ring()

    async def _tick_until(self, stop: asyncio.Event) -> None:
        """The timer half of scheduling: start what is due, then sleep until the next due time
        (at most a second). The other half is `_launch` from a finishing poll, which keeps a
        busy loop busy without a wake-up per poll."""
        while not stop.is_set():
            now = self.clock.now()
            self.heartbeat = now
            self._launch(now)
            probe = self.step.gate.next_probe() if self.watchset.parked else None
            wakes = [t for t in (self.watchset.heap.peek(), probe) if t is not None]
            delay = 1.0 if not wakes else min(1.0, max(0.0, min(wakes) - now))
            if not stop.is_set():
                await self._alarm.wait(now + (delay if delay > 0 else 0.01))

    def _launch(self, now: float, *, until: float | None = None) -> None:
        """Start as many due polls as there are free slots."""
        polls, stop = self._polls, self._stop
        if polls is None or stop is None or stop.is_set():
            return
        horizon = now if until is None else until
        if not self.step.gate.closed:
            self._probe(polls, now, horizon, until)
            return
        free = self.options.concurrency - self._inflight
        if free <= 0:
            return
        if self.committer.backlog >= MAX_BACKLOG:
            # At the backlog cap the disk is behind the network: each waiting record holds a
            # whole payload, so stop fetching until a transaction lands (the polls it commits
            # launch again as they finish).
            self._throttled = True
            return
        for key, due in self.watchset.heap.pop_due(horizon, free):
            self._inflight += 1
            polls.create_task(self._guarded_poll(key, due, until))

    def _probe(
        self, polls: asyncio.TaskGroup, now: float, horizon: float, until: float | None
    ) -> None:
        """The API is down or refuses the (shared) token: polling every session would only
        collect failures. Due sessions wait, and one probe at a time goes out when the open
        breakers allow; the first good answer lets everyone go (`WatchSet.resume`)."""
        # Overdue still follows the clock meanwhile: each due session is evaluated against
        # its last good snapshot, then waits, coming back at its next deadline.
        for entry, due in self.watchset.hold_due(horizon):
            verdict = decide.held(entry, now, self.step.rules)
            if verdict is None:
                self._park(entry, due, now)
            else:  # in neither heap until it commits: no probe can poll it meanwhile
                polls.create_task(self._commit_held(entry, verdict, due))
        if self._inflight or not self.step.gate.may_probe(now):
            return
        picked = self.watchset.take_probe(horizon)
        if picked is None:
            return
        self.step.gate.start_probe(now)
        if self.auth_failing:
            self.step.auth.reload_token()
        self._inflight += 1
        polls.create_task(self._guarded_poll(*picked, until, probe=True))

    async def _commit_held(self, entry: Entry, verdict: decide.Verdict, due: float) -> None:
        if not await self.step.commit(entry, verdict):
            return
        self.step.apply(entry, verdict)
        self._park(entry, due, self.clock.now())

    def _park(self, entry: Entry, due: float, now: float) -> None:
        if self.step.gate.closed:  # the API came back while this one was committing
            self.watchset.schedule(entry.key, due)
        else:
            wake = decide.deadline_after(entry.snapshot, entry.review, now, self.step.rules)
            self.watchset.park(entry.key, due, wake=wake if wake and wake > now else None)

    async def _guarded_poll(
        self, key: SessionKey, due: float, until: float | None, *, probe: bool = False
    ) -> None:
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._inflight -= 1
                self._launch(self.clock.now(), until=until)

        outcome: str = decide.Outcome.ERROR
        try:
            outcome = await self.step.poll(key, due, fetched=release, probe=probe)
        except Exception:
            # A bug in one poll must not stop the loop: count it, log it, try again later.
            log.exception("poll.crashed", session_sid=key.session_sid)
            self.metrics.poll_outcome(decide.Outcome.ERROR).inc()
            # A probe that never reached a verdict must not hold the next one back forever.
            self.step.judge(
                self.clock.now(), self.rng.random(), api=Verdict.UNKNOWN, auth=Verdict.UNKNOWN
            )
            if (entry := self.watchset.entries.get(key)) is not None:
                self.watchset.schedule(key, self.clock.now() + entry.interval)
        finally:
            release()
            if self._throttled:
                self._throttled = False
                self._launch(self.clock.now(), until=until)
            if (watched := self.watchset.entries.get(key)) is not None:
                self.watchset.attempted(watched)
            if self._outcomes is not None:
                self._outcomes[key] = outcome

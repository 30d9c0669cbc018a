"""The poll loop: due sessions → API → parse/diff/rules → one store transaction per batch.

This is where the clock is read; everything it decides with is in `monitor.core` and takes
`now` as an argument.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo

import structlog

from monitor import aio
from monitor.api import ApiClient, ApiError, AuthFailed, NotFound, RateLimited
from monitor.apigate import ApiGate, Judged, verdicts
from monitor.core import poll as decide
from monitor.core import rules
from monitor.core.breaker import Policy as BreakerPolicy
from monitor.core.breaker import Verdict
from monitor.core.events import Event
from monitor.core.keys import SessionKey
from monitor.index import Entry, Index
from monitor.metrics import Metrics
from monitor.poll_effects import AuthEpisode, PollCounts, record
from monitor.store import Committer, SessionRecord, SessionStore

__all__ = ["Entry", "Index", "Poller"]

log = structlog.get_logger("spmon.poller")
Router = Callable[[Event], Sequence[str]]


MAX_BACKLOG = 1024
"""Fetched polls waiting for their transaction, at most (about 3 MB of payloads)."""


def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class PollerOptions:
    concurrency: int = 32
    jitter: float = 0.1
    policy: rules.Policy = field(default_factory=rules.Policy)
    naive_tz: tzinfo | None = None
    auth_retry: float = 60.0
    deployment: str = ""
    """The state store's deployment id, which scopes every event id."""
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    """The API breaker: 5xx/timeouts in a row across sessions before one probe per cooldown."""

    def decisions(self) -> decide.Rules:
        return decide.Rules(self.policy, self.jitter, self.naive_tz, self.deployment)

    def gate(self, intervals: Sequence[float], metrics: Metrics) -> ApiGate:
        return ApiGate.for_watches(
            intervals, api=self.breaker, auth_retry=self.auth_retry, metrics=metrics
        )


class Poller:
    """Drains due sessions with at most `concurrency` polls in flight, until `stop` is set."""

    def __init__(
        self,
        *,
        api: ApiClient,
        store: SessionStore,
        index: Index,
        metrics: Metrics,
        router: Router,
        options: PollerOptions,
        on_commit: Callable[[], None] = lambda: None,
        token_source: Callable[[], str | None] = lambda: None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.api, self.store, self.index, self.metrics = api, store, index, metrics
        self.router = router
        self.options = options
        self.rules = options.decisions()
        self.on_commit = on_commit
        self.token_source = token_source
        self.gate = options.gate((), metrics)
        self.clock = clock
        self.rng = rng or random.Random()
        self.committer = Committer(store)
        self.committer.flushed = lambda: self._launch(self.clock())
        self.heartbeat = 0.0
        self._wake = asyncio.Event()
        self._inflight = 0
        self._polls: asyncio.TaskGroup | None = None
        self._outcomes: dict[SessionKey, str] | None = None
        self._stop: asyncio.Event | None = None
        self.counts = PollCounts(metrics)
        self.auth = AuthEpisode(
            api=api,
            store=store,
            metrics=metrics,
            route=self._route,
            deployment=options.deployment,
            token_source=token_source,
            on_commit=lambda: self.on_commit(),
        )

    @property
    def auth_failing(self) -> bool:
        return self.gate.auth.is_open

    # -- start-up ------------------------------------------------------------------------

    async def restore(self, watches: Sequence[tuple[SessionKey, Mapping[str, str], float]]) -> None:
        """Resume from the store: no re-baselining; spread first polls over one interval."""
        stored = {record.key: record for record in await self.store.load()}
        self.gate = self.options.gate([interval for _, _, interval in watches], self.metrics)
        now = self.clock()
        if await self.auth.restore():
            self.gate.restore_token_rejected(now)
        for key, labels, interval in watches:
            entry = Entry(key, labels, interval)
            record = stored.get(key)
            if record is not None:
                _restore_entry(entry, record)
            self.index.add(entry, decide.first_due(entry, now, self.rng.random(), self.rules))
        log.info("poller.restored", watched=len(self.index.entries), from_store=len(stored))

    # -- the loop --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Poll due sessions until `stop`; in-flight polls finish (and commit) before return."""
        committer = asyncio.create_task(self.committer.run(), name="committer")
        stopper = asyncio.create_task(self._wake_on(stop), name="poller-stop")
        self._stop = stop
        try:
            async with asyncio.TaskGroup() as polls:
                self._polls = polls
                await self._tick_until(stop)
        finally:
            self._polls = None
            stopper.cancel()
            self.committer.close()
            await committer

    async def poll_all(self) -> dict[SessionKey, str]:
        """Poll every watched session once, now (the `once` command); returns each polled
        session's outcome. A session missing from the answer was not polled (e.g. while the
        token is rejected only one probe goes out)."""
        now = self.clock()
        for key in self.index.entries:
            self.index.heap.push(key, now)
        stop = asyncio.Event()
        committer = asyncio.create_task(self.committer.run(), name="committer")
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
            self.committer.close()
            await committer
        return outcomes

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def _tick_until(self, stop: asyncio.Event) -> None:
        """The timer half of scheduling: start what is due, then sleep until the next due time
        (at most a second). The other half is `_launch` from a finishing poll, which keeps a
        busy loop busy without a wake-up per poll."""
        while not stop.is_set():
            now = self.clock()
            self.heartbeat = now
            self._launch(now)
            probe = self.gate.next_probe() if self.index.parked else None
            wakes = [t for t in (self.index.heap.peek(), probe) if t is not None]
            delay = 1.0 if not wakes else min(1.0, max(0.0, min(wakes) - now))
            self._wake.clear()
            if not stop.is_set():
                await aio.sleep(delay if delay > 0 else 0.01, self._wake)

    def _launch(self, now: float, *, until: float | None = None) -> None:
        """Start as many due polls as there are free slots."""
        polls, stop = self._polls, self._stop
        if polls is None or stop is None or stop.is_set():
            return
        horizon = now if until is None else until
        if not self.gate.closed:
            self._probe(polls, now, horizon, until)
            return
        free = self.options.concurrency - self._inflight
        if free <= 0 or self.committer.backlog >= MAX_BACKLOG:
            # At the backlog cap the disk is behind the network: each waiting record holds a
            # whole payload, so stop fetching until a transaction lands (it calls _launch).
            return
        for key, due in self.index.heap.pop_due(horizon, free):
            self._inflight += 1
            polls.create_task(self._guarded_poll(key, due, until))

    def _probe(
        self, polls: asyncio.TaskGroup, now: float, horizon: float, until: float | None
    ) -> None:
        """The API is down or refuses the (shared) token: polling every session would only
        collect failures. Due sessions wait, and one probe at a time goes out when the open
        breakers allow; the first good answer lets everyone go (`Index.resume`)."""
        # Overdue still follows the clock meanwhile: each due session is evaluated against
        # its last good snapshot, then waits, coming back at its next deadline.
        for entry, due in self.index.hold_due(horizon):
            verdict = decide.held(entry, now, self.rules)
            if verdict is None:
                self._park(entry, due, now)
            else:  # in neither heap until it commits: no probe can poll it meanwhile
                polls.create_task(self._commit_held(entry, verdict, due))
        if self._inflight or not self.gate.may_probe(now):
            return
        picked = self.index.take_probe(horizon)
        if picked is None:
            return
        self.gate.start_probe(now)
        if self.auth_failing:
            self.auth.reload_token()
        self._inflight += 1
        polls.create_task(self._guarded_poll(*picked, until, probe=True))

    async def _commit_held(self, entry: Entry, verdict: decide.Verdict, due: float) -> None:
        try:
            await self.committer.commit(record(entry.key, verdict, self._route))
        except Exception:  # the Committer logged it; evaluate again soon
            self.index.heap.push(entry.key, self.clock() + min(entry.interval, 30.0))
            return
        self._apply(entry, verdict)
        self._park(entry, due, self.clock())

    def _park(self, entry: Entry, due: float, now: float) -> None:
        if self.gate.closed:  # the API came back while this one was committing
            self.index.heap.push(entry.key, due)
        else:
            wake = decide.deadline_after(entry.snapshot, entry.review, now, self.rules)
            self.index.park(entry.key, due, wake=wake if wake and wake > now else None)

    async def _guarded_poll(
        self, key: SessionKey, due: float, until: float | None, *, probe: bool = False
    ) -> None:
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._inflight -= 1
                self._launch(self.clock(), until=until)

        outcome: str = decide.Outcome.ERROR
        try:
            outcome = await self.poll(key, due, fetched=release, probe=probe)
        except Exception:
            # A bug in one poll must not stop the loop: count it, log it, try again later.
            log.exception("poll.crashed", session_sid=key.session_sid)
            self.metrics.poll_outcome(decide.Outcome.ERROR).inc()
            # A probe that never reached a verdict must not hold the next one back forever.
            self._judge(self.clock(), self.rng.random(), api=Verdict.UNKNOWN, auth=Verdict.UNKNOWN)
            entry = self.index.entries[key]
            self.index.heap.push(key, self.clock() + entry.interval)
        finally:
            release()
            self.index.attempted(self.index.entries[key])
            if self._outcomes is not None:
                self._outcomes[key] = outcome

    # -- one poll --------------------------------------------------------------------------

    async def poll(
        self,
        key: SessionKey,
        due: float,
        *,
        fetched: Callable[[], None] = _nothing,
        probe: bool = False,
    ) -> str:
        """Fetch, decide, commit and reschedule one session; returns the outcome label.

        `fetched` is called once the HTTP part is over: the concurrency slot is about requests
        in flight, and holding it through the group commit would throttle polling to the
        commit cadence. A probe makes one request: its cooldown is the retry.
        """
        entry = self.index.entries[key]
        started = time.perf_counter()
        try:
            body = await self.api.fetch(key, retries=0 if probe else None)
        except ApiError as exc:
            verdict = await self._failed(entry, exc)
        else:
            verdict = self._fetched(entry, body)
        finally:
            fetched()
        if verdict.touch_only:
            # Same document as last time: nothing to make durable now (the poll time is written
            # lazily), so no transaction, no record and no waiting.
            self.committer.touch(key.session_sid, verdict.polled_at)
        else:
            try:
                await self.committer.commit(record(entry.key, verdict, self._route))
            except Exception:  # the Committer logged it; keep the old state and retry soon
                self.metrics.poll_outcome(decide.Outcome.ERROR).inc()
                self.index.heap.push(key, self.clock() + min(entry.interval, 30.0))
                return decide.Outcome.ERROR
        self._apply(entry, verdict)
        self.index.heap.push(key, verdict.next_due)
        if self.auth.saved and not self.auth_failing:
            await self.auth.recovered()
        self.counts.count(verdict, time.perf_counter() - started)
        return verdict.outcome

    def _fetched(self, entry: Entry, body: bytes) -> decide.Verdict:
        now = self.clock()
        judge_u = self.rng.random()  # drawn before the schedule's, as the gate always was
        verdict = decide.step(entry, body, now, self.rng.random(), self.rules)
        if (problem := verdict.problem) is not None:
            self._judge(now, judge_u, api=Verdict.UNKNOWN, auth=Verdict.UNKNOWN)
            _log(entry).warning("poll.invalid_response", problem=str(problem), field=problem.field)
        else:
            self._judge(now, judge_u, api=Verdict.UP, auth=Verdict.UP)
        return verdict

    async def _failed(self, entry: Entry, exc: ApiError) -> decide.Verdict:
        now = self.clock()
        api, auth = verdicts(exc)
        judged = self._judge(now, self.rng.random(), api=api, auth=auth)
        answer: decide.Answer
        if isinstance(exc, NotFound):
            verdict = decide.step(entry, decide.MISSING, now, self.rng.random(), self.rules)
            if verdict.events:
                _log(entry).warning("poll.not_found")
            return verdict
        if judged.token_rejected:
            await self.auth.failed(now)
        if isinstance(exc, RateLimited):
            answer = decide.Throttled(exc.retry_after)
        else:
            outage = not self.gate.closed and Verdict.DOWN in (api, auth)
            answer = decide.Failed(decide.Outcome(exc.outcome), outage=outage)
        verdict = decide.step(entry, answer, now, self.rng.random(), self.rules)
        if isinstance(answer, decide.Failed) and not isinstance(exc, AuthFailed):
            _log(entry).warning(
                "poll.failed", error=str(exc), outcome=exc.outcome, failures=verdict.failures
            )
        return verdict

    def _judge(self, now: float, u: float, *, api: Verdict, auth: Verdict) -> Judged:
        judged = self.gate.judge(now, u, api=api, auth=auth)
        if judged.resumed:
            log.info("poller.resumed", waiting=self.index.resume(now))
        return judged

    def _route(self, events: Sequence[Event]) -> tuple[tuple[Event, Sequence[str]], ...]:
        return tuple((event, self.router(event)) for event in events)

    def _apply(self, entry: Entry, verdict: decide.Verdict) -> None:
        entry.last_poll_at = verdict.polled_at
        entry.failures = verdict.failures
        entry.version = verdict.version
        entry.missing = verdict.missing
        if verdict.review is not None:
            entry.review = verdict.review
        if verdict.outcome is decide.Outcome.OK:
            entry.snapshot = verdict.snapshot
            entry.digest = verdict.digest
        if verdict.events:
            self.on_commit()


def _log(entry: Entry) -> structlog.typing.FilteringBoundLogger:
    """A logger bound to the session; built only on the paths that log, not on every poll."""
    key = entry.key
    bound: structlog.typing.FilteringBoundLogger = log.bind(
        session_sid=key.session_sid, exam_sid=key.exam_sid, install_sid=key.install_sid
    )
    return bound


def _restore_entry(entry: Entry, record: SessionRecord) -> None:
    entry.snapshot = record.snapshot
    entry.review = record.review
    entry.version = record.version
    entry.digest = record.digest
    entry.failures = record.failures
    entry.missing = record.missing
    entry.last_poll_at = record.last_poll_at

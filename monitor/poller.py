"""The poll loop: due sessions → API → parse/diff/rules → one store transaction per batch.

This is where the clock is read; everything it decides with is in `monitor.core` and takes
`now` as an argument.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

import structlog

from monitor import aio
from monitor.api import ApiClient, ApiError, AuthFailed, NotFound, RateLimited
from monitor.apigate import ApiGate, Judged, verdicts
from monitor.core import observe, rules, schedule
from monitor.core.breaker import Policy as BreakerPolicy
from monitor.core.breaker import Verdict
from monitor.core.events import Event, EventType, event_id
from monitor.core.keys import SessionKey
from monitor.core.parse import ParseProblem, parse
from monitor.core.snapshot import Snapshot
from monitor.core.token import jwt_expiry
from monitor.index import Entry, Index
from monitor.logs import redactor
from monitor.metrics import Metrics
from monitor.store import Committer, PollRecord, SessionRecord, SessionStore

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
        self._up = -1
        self._auth_saved = False
        self._auth_episode = 0

    @property
    def auth_failing(self) -> bool:
        return self.gate.auth.is_open

    # -- start-up ------------------------------------------------------------------------

    async def restore(self, watches: Sequence[tuple[SessionKey, Mapping[str, str], float]]) -> None:
        """Resume from the store: no re-baselining; spread first polls over one interval."""
        stored = {record.key: record for record in await self.store.load()}
        self.gate = self.options.gate([interval for _, _, interval in watches], self.metrics)
        self._auth_saved = (await self.store.get_meta("auth_failing")) == "1"
        self._auth_episode = int(await self.store.get_meta("auth_episode") or 0)
        now = self.clock()
        if self._auth_saved:
            self.gate.restore_token_rejected(now)
        else:
            self.metrics.auth_failing.set(0)
        for key, labels, interval in watches:
            entry = Entry(key, labels, interval)
            record = stored.get(key)
            if record is not None:
                _restore_entry(entry, record)
            self.index.add(entry, self._first_due(entry, now))
        log.info("poller.restored", watched=len(self.index.entries), from_store=len(stored))

    def _first_due(self, entry: Entry, now: float) -> float:
        due = schedule.first_due(now, entry.interval, self.rng.random())
        if entry.last_poll_at is not None:
            due = max(now, min(due, entry.last_poll_at + entry.interval))
        deadline = self._deadline_after(entry.snapshot, entry.review, now)
        return min(due, deadline) if deadline else due

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
            record = self._held(entry, now)
            if record is None:
                self._park(entry, due, now)
            else:  # in neither heap until it commits: no probe can poll it meanwhile
                polls.create_task(self._commit_held(entry, record, due))
        if self._inflight or not self.gate.may_probe(now):
            return
        picked = self.index.take_probe(horizon)
        if picked is None:
            return
        self.gate.start_probe(now)
        if self.auth_failing:
            self._reload_token()
        self._inflight += 1
        polls.create_task(self._guarded_poll(*picked, until, probe=True))

    def _held(self, entry: Entry, now: float) -> PollRecord | None:
        """What the clock changes for a session the API cannot be asked about; None: nothing."""
        record = self._by_clock(entry, now, "held", entry.failures)
        return record if record.deliveries or record.review != entry.review else None

    async def _commit_held(self, entry: Entry, record: PollRecord, due: float) -> None:
        try:
            await self.committer.commit(record)
        except Exception:  # the Committer logged it; evaluate again soon
            self.index.heap.push(entry.key, self.clock() + min(entry.interval, 30.0))
            return
        self._apply(entry, record)
        self._park(entry, due, self.clock())

    def _park(self, entry: Entry, due: float, now: float) -> None:
        if self.gate.closed:  # the API came back while this one was committing
            self.index.heap.push(entry.key, due)
        else:
            wake = self._deadline_after(entry.snapshot, entry.review, now)
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

        outcome = "error"
        try:
            outcome = await self.poll(key, due, fetched=release, probe=probe)
        except Exception:
            # A bug in one poll must not stop the loop: count it, log it, try again later.
            log.exception("poll.crashed", session_sid=key.session_sid)
            self.metrics.poll_outcome("error").inc()
            # A probe that never reached a verdict must not hold the next one back forever.
            self._judge(self.clock(), api=Verdict.UNKNOWN, auth=Verdict.UNKNOWN)
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
            record, next_due = await self._failed(entry, exc)
        else:
            record, next_due = self._fetched(entry, body)
        finally:
            fetched()
        if unchanged := record.touch_only:
            # Same document as last time: nothing to make durable now (the poll time is written
            # lazily), so no transaction and no waiting.
            self.committer.touch(key.session_sid, record.polled_at)
        try:
            if not unchanged:
                await self.committer.commit(record)
        except Exception:  # the Committer logged it; keep the old state and retry soon
            self.metrics.poll_outcome("error").inc()
            self.index.heap.push(key, self.clock() + min(entry.interval, 30.0))
            return "error"
        self._apply(entry, record)
        self.index.heap.push(key, next_due)
        if self._auth_saved and not self.auth_failing:
            await self._auth_recovered()
        self._count(record, time.perf_counter() - started)
        return record.outcome

    def _fetched(self, entry: Entry, body: bytes) -> tuple[PollRecord, float]:
        now = self.clock()
        digest = hashlib.blake2b(body, digest_size=16).digest()
        parsed: Snapshot | ParseProblem
        if digest == entry.digest and entry.snapshot is not None:
            # Byte-identical to the last valid document: parsing it again cannot say anything new.
            parsed = entry.snapshot
        else:
            parsed = parse(body, entry.key, naive_tz=self.options.naive_tz)
        if isinstance(parsed, ParseProblem):
            self._judge(now, api=Verdict.UNKNOWN, auth=Verdict.UNKNOWN)
            _log(entry).warning("poll.invalid_response", problem=str(parsed), field=parsed.field)
            return self._keep(entry, now, "invalid")
        self._judge(now, api=Verdict.UP, auth=Verdict.UP)
        seen = self._observe(entry, parsed, now)
        unchanged = (
            digest == entry.digest
            and not seen.events
            and seen.review == entry.review
            and entry.failures == 0
            and not entry.missing
        )
        record = PollRecord(
            key=entry.key,
            polled_at=now,
            outcome="ok",
            failures=0,
            snapshot=parsed,
            payload=body if digest != entry.digest else None,
            digest=digest,
            review=seen.review,
            version=seen.version,
            deliveries=self._route(seen.events),
            touch_only=unchanged,
        )
        return record, self._next_due(entry, now, parsed, seen.review)

    def _observe(self, entry: Entry, current: Snapshot, now: float) -> observe.Observation:
        return observe.observe(
            entry.key,
            entry.snapshot,
            current,
            review=entry.review,
            version=entry.version,
            now=datetime.fromtimestamp(now, UTC),
            policy=self.options.policy,
            labels=entry.labels,
            deployment=self.options.deployment,
        )

    def _keep(
        self, entry: Entry, now: float, outcome: str, *, outage: bool = False
    ) -> tuple[PollRecord, float]:
        """A failed poll: the last good snapshot stays, but overdue still follows the clock.

        In an `outage` the failure is the API's, not the session's: no backoff of its own,
        which would keep it away after the API is back (the gate holds it meanwhile)."""
        failures = entry.failures if outage else entry.failures + 1
        record = self._by_clock(entry, now, outcome, failures)
        u = self.rng.random()
        if outage:
            due = schedule.next_due(now, entry.interval, u, jitter=self.options.jitter)
        else:
            due = schedule.retry_due(now, entry.interval, failures, u)
        deadline = self._deadline_after(entry.snapshot, record.review or entry.review, now)
        return record, min(due, deadline) if deadline else due

    def _by_clock(self, entry: Entry, now: float, outcome: str, failures: int) -> PollRecord:
        """No new data: what the clock alone changes, against the last good snapshot."""
        review, version = entry.review, entry.version
        events: tuple[Event, ...] = ()
        if entry.snapshot is not None:
            seen = self._observe(entry, entry.snapshot, now)
            review, version, events = seen.review, seen.version, seen.events
        return PollRecord(
            key=entry.key,
            polled_at=now,
            outcome=outcome,
            failures=failures,
            review=review,
            version=version,
            missing=entry.missing,
            deliveries=self._route(events),
        )

    async def _failed(self, entry: Entry, exc: ApiError) -> tuple[PollRecord, float]:
        now = self.clock()
        api, auth = verdicts(exc)
        judged = self._judge(now, api=api, auth=auth)
        if isinstance(exc, NotFound):
            return self._not_found(entry, now)
        if judged.token_rejected:
            await self._auth_failed(now)
        if isinstance(exc, RateLimited):
            record, _ = self._keep(entry, now, exc.outcome)
            return record, now + exc.retry_after
        outage = not self.gate.closed and Verdict.DOWN in (api, auth)
        if not isinstance(exc, AuthFailed):
            failures = entry.failures + (not outage)
            _log(entry).warning(
                "poll.failed", error=str(exc), outcome=exc.outcome, failures=failures
            )
        return self._keep(entry, now, exc.outcome, outage=outage)

    def _judge(self, now: float, *, api: Verdict, auth: Verdict) -> Judged:
        judged = self.gate.judge(now, self.rng.random(), api=api, auth=auth)
        if judged.resumed:
            log.info("poller.resumed", waiting=self.index.resume(now))
        return judged

    def _not_found(self, entry: Entry, now: float) -> tuple[PollRecord, float]:
        events: tuple[Event, ...] = ()
        version = entry.version
        if not entry.missing:
            version += 1
            moment = datetime.fromtimestamp(now, UTC)
            events = (
                observe.not_found(
                    entry.key,
                    version=version,
                    now=moment,
                    labels=entry.labels,
                    deployment=self.options.deployment,
                ),
            )
            _log(entry).warning("poll.not_found")
        record = PollRecord(
            key=entry.key,
            polled_at=now,
            outcome="not_found",
            failures=entry.failures + 1,
            review=entry.review,
            version=version,
            missing=True,
            deliveries=self._route(events),
        )
        # A vanished session is polled rarely: it may come back, but it is not news every minute.
        return record, now + max(entry.interval, 300.0) * (1.0 + 0.1 * self.rng.random())

    async def _auth_failed(self, now: float) -> None:
        self._auth_episode += 1
        log.error("api.auth_failed", hint="the API token expired or was revoked; set a new one")
        kind = EventType.API_AUTH_FAILED
        event = Event(
            event_id("api", kind, self._auth_episode, deployment=self.options.deployment),
            kind,
            datetime.fromtimestamp(now, UTC),
            None,
            {},
            {"message": "The SmarterProctoring API rejected spmon's token."},
        )
        await self.store.enqueue(list(self._route((event,))), now)
        await self.store.set_meta("auth_episode", str(self._auth_episode))
        await self.store.set_meta("auth_failing", "1")
        self._auth_saved = True
        self.on_commit()

    def _reload_token(self) -> None:
        fresh = self.token_source()
        if fresh and fresh != self.api.token:
            redactor.add([fresh])
            self.api.set_token(fresh)
            self.metrics.token_expiry.set(jwt_expiry(fresh) or 0)
            log.info("api.token_reloaded")

    async def _auth_recovered(self) -> None:
        self._auth_saved = False
        log.info("api.auth_recovered")
        await self.store.set_meta("auth_failing", "0")

    def _route(self, events: Sequence[Event]) -> tuple[tuple[Event, Sequence[str]], ...]:
        return tuple((event, self.router(event)) for event in events)

    def _next_due(
        self, entry: Entry, now: float, snapshot: Snapshot, review: rules.ReviewState
    ) -> float:
        due = schedule.next_due(now, entry.interval, self.rng.random(), jitter=self.options.jitter)
        deadline = self._deadline_after(snapshot, review, now)
        return min(due, deadline) if deadline else due

    def _deadline_after(
        self, snapshot: Snapshot | None, review: rules.ReviewState, now: float
    ) -> float | None:
        if snapshot is None:
            return None
        moment = datetime.fromtimestamp(now, UTC)
        check = rules.next_check(snapshot, review, moment, self.options.policy)
        return check.timestamp() if check is not None else None

    def _apply(self, entry: Entry, record: PollRecord) -> None:
        entry.last_poll_at = record.polled_at
        entry.failures = record.failures
        entry.version = record.version
        entry.missing = record.missing
        if record.review is not None:
            entry.review = record.review
        if record.outcome == "ok":
            entry.snapshot = record.snapshot
            entry.digest = record.digest
        if record.deliveries:
            self.on_commit()

    def _set_up(self, value: int) -> None:
        if value != self._up:
            self._up = value
            self.metrics.up.set(value)

    def _count(self, record: PollRecord, elapsed: float) -> None:
        m = self.metrics
        m.poll_outcome(record.outcome).inc()
        m.poll_duration.observe(elapsed)
        if record.outcome == "ok":
            m.last_success.set(record.polled_at)
            self._set_up(1)
        elif record.outcome != "not_found":
            self._set_up(0)
        for event, _ in record.deliveries:
            field_name = event.data.get("field")
            if field_name is not None:
                m.changes.labels(str(field_name)).inc()


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

"""One poll of one session: fetch, decide, commit, apply — and the start-up restore.

The `Poller` owns one `PollStep` and schedules it; this half never decides *when* to poll,
only what a poll's answer means for the session, the API gate and the token episode.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo

import structlog

from monitor import aio
from monitor.api import ApiClient, ApiError, AuthFailed, NotFound, RateLimited
from monitor.apigate import ApiGate, Judged, verdicts
from monitor.core import phase, rules
from monitor.core import poll as decide
from monitor.core.breaker import Policy as BreakerPolicy
from monitor.core.breaker import Verdict
from monitor.core.events import Event
from monitor.core.keys import SessionKey
from monitor.metrics import Metrics
from monitor.poll_effects import AuthEpisode, PollCounts, record
from monitor.resume import Joining, Wanted
from monitor.store import Committer, Fenced, SessionStore
from monitor.watchset import Entry, WatchSet

__all__ = ["PollStep", "PollerOptions", "Router", "Wanted"]

log = structlog.get_logger("spmon.poller")
Router = Callable[[Event], Sequence[str]]


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
    phases: phase.Intervals | None = None
    """Intervals by lifecycle phase; None polls each session at its watch's interval."""
    link_template: str | None = None

    def decisions(self) -> decide.Rules:
        return decide.Rules(
            self.policy,
            self.jitter,
            self.naive_tz,
            self.deployment,
            self.phases,
            self.link_template,
        )

    def first_interval(self, override: float | None) -> float:
        """Before its first poll a session counts as live: the fastest it may need."""
        if override is not None:
            return override
        return (self.phases or phase.DEFAULT).live

    def gate(self, intervals: Sequence[float], metrics: Metrics) -> ApiGate:
        return ApiGate.for_watches(
            intervals, api=self.breaker, auth_retry=self.auth_retry, metrics=metrics
        )


class PollStep:
    """Fetch, decide, commit and reschedule one session at a time; restore them all at start."""

    def __init__(
        self,
        *,
        api: ApiClient,
        store: SessionStore,
        watchset: WatchSet,
        metrics: Metrics,
        committer: Committer,
        router: Router,
        options: PollerOptions,
        on_commit: Callable[[], None],
        token_source: Callable[[], str | None],
        clock: aio.Clock,
        rng: random.Random,
    ) -> None:
        self.api, self.store, self.watchset, self.metrics = api, store, watchset, metrics
        self.committer = committer
        self.router = router
        self.options = options
        self.rules = options.decisions()
        self.on_commit = on_commit
        self.gate = options.gate((), metrics)
        self.clock = clock
        self.rng = rng
        self.counts = PollCounts(metrics)
        self.auth = AuthEpisode(
            api=api,
            store=store,
            metrics=metrics,
            route=self.route,
            deployment=options.deployment,
            token_source=token_source,
            on_commit=lambda: self.on_commit(),
        )
        self.joining = Joining(
            store=store,
            watchset=watchset,
            first_interval=options.first_interval,
            rules=self.rules,
            clock=clock,
            rng=rng,
        )
        self.rewatch = self.joining.rewatch

    @property
    def auth_failing(self) -> bool:
        return self.gate.auth.is_open

    async def restore(self, watches: list[Wanted]) -> None:
        """Resume from the store: no re-baselining; spread first polls over one interval of
        each session's phase. Each watch's third item is its own interval (None: by phase).
        The list is taken over (`Joining.resume` empties it)."""
        first = self.options.first_interval
        self.gate = self.options.gate([first(o) for _, _, o in watches], self.metrics)
        now = self.clock.now()
        if await self.auth.restore():
            self.gate.restore_token_rejected(now)
        restored = await self.joining.resume(watches, now)
        log.info("poller.restored", watched=len(self.watchset.entries), from_store=restored)

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
        entry = self.watchset.entries[key]
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
        elif not await self.commit(entry, verdict):
            self.metrics.poll_outcome(decide.Outcome.ERROR).inc()
            return decide.Outcome.ERROR
        self.apply(entry, verdict)
        self.watchset.schedule(key, verdict.next_due)
        if verdict.next_due is None:
            # Logged once: a retired session is not polled again until a source revives it.
            _log(entry).info("session.retired", settled_since=str(entry.settled_since))
        if self.auth.saved and not self.auth_failing:
            await self.auth.recovered()
        self.counts.count(verdict, time.perf_counter() - started)
        return verdict.outcome

    def _fetched(self, entry: Entry, body: bytes) -> decide.Verdict:
        now = self.clock.now()
        judge_u = self.rng.random()  # drawn before the schedule's, as the gate always was
        verdict = decide.step(entry, body, now, self.rng.random(), self.rules)
        if (problem := verdict.problem) is not None:
            self.judge(now, judge_u, api=Verdict.UNKNOWN, auth=Verdict.UNKNOWN)
            _log(entry).warning("poll.invalid_response", problem=str(problem), field=problem.field)
        else:
            self.judge(now, judge_u, api=Verdict.UP, auth=Verdict.UP)
        return verdict

    async def _failed(self, entry: Entry, exc: ApiError) -> decide.Verdict:
        now = self.clock.now()
        api, auth = verdicts(exc)
        judged = self.judge(now, self.rng.random(), api=api, auth=auth)
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
            answer = decide.Failed(exc.outcome, outage=outage)
        verdict = decide.step(entry, answer, now, self.rng.random(), self.rules)
        if isinstance(answer, decide.Failed) and not isinstance(exc, AuthFailed):
            _log(entry).warning(
                "poll.failed", error=str(exc), outcome=exc.outcome, failures=verdict.failures
            )
        return verdict

    def judge(self, now: float, u: float, *, api: Verdict, auth: Verdict) -> Judged:
        judged = self.gate.judge(now, u, api=api, auth=auth)
        if judged.resumed:
            log.info("poller.resumed", waiting=self.watchset.resume(now))
        return judged

    def route(self, events: Sequence[Event]) -> tuple[tuple[Event, Sequence[str]], ...]:
        return tuple((event, self.router(event)) for event in events)

    async def commit(self, entry: Entry, verdict: decide.Verdict) -> bool:
        """Make `verdict` durable before it is applied; False if it could not be (the
        Committer logged why): the old state stays and the session is evaluated again soon."""
        try:
            await self.committer.commit(record(entry.key, verdict, self.route))
        except Fenced:
            # Its shard is another replica's (lost just now, or `once` beside replicas):
            # that owner records and delivers it. What was seen still stands, and until a
            # reshard drops the session memory follows the API.
            return True
        except Exception:
            self.watchset.schedule(entry.key, self.clock.now() + min(entry.interval, 30.0))
            return False
        return True

    def apply(self, entry: Entry, verdict: decide.Verdict) -> None:
        entry.last_poll_at = verdict.polled_at
        entry.failures = verdict.failures
        entry.version = verdict.version
        entry.missing = verdict.missing
        life = verdict.life
        entry.phase, entry.settled_since = life.phase, life.settled_since
        if life.interval is not None:
            entry.interval = life.interval
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

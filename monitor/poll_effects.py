"""What a poll does beyond its decision: the row to commit, the token episode, the metrics.

The poll loop owns one of each; neither decides anything about a session.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import structlog

from monitor.api import ApiClient
from monitor.core import observe
from monitor.core.body_digest import stored_digest
from monitor.core.events import Event
from monitor.core.jwt_expiry import jwt_expiry
from monitor.core.keys import SessionKey
from monitor.core.poll import Outcome, Verdict
from monitor.metrics import Metrics
from monitor.store import PollRecord, SessionStore

__all__ = ["AuthEpisode", "PollCounts", "Routed", "record"]

log = structlog.get_logger("spmon.poller")
Routed = Callable[[Sequence[Event]], Sequence[tuple[Event, Sequence[str]]]]


class AuthEpisode:
    """The API refusing spmon's token, across restarts: one api.auth_failed per episode, the
    episode number and whether one is open kept in the store's meta table."""

    def __init__(
        self,
        *,
        api: ApiClient,
        store: SessionStore,
        metrics: Metrics,
        route: Routed,
        deployment: str,
        token_source: Callable[[], str | None],
        on_commit: Callable[[], None],
    ) -> None:
        self.api, self.store, self.metrics = api, store, metrics
        self.route, self.deployment = route, deployment
        self.token_source, self.on_commit = token_source, on_commit
        self.saved = False
        """An episode is open in the store (until the first good answer closes it)."""
        self.number = 0

    async def restore(self) -> bool:
        """Load the stored episode; True when the token was refused before the restart."""
        self.saved = (await self.store.get_meta("auth_failing")) == "1"
        self.number = int(await self.store.get_meta("auth_episode") or 0)
        if not self.saved:
            self.metrics.auth_failing.set(0)
        return self.saved

    async def failed(self, now: float) -> None:
        self.number += 1
        oauth = self.api.renews_tokens
        hint = (
            "a freshly issued token was refused, or the token endpoint refused the client "
            "credentials: check api.auth's client id and secret"
            if oauth
            else "the API token expired or was revoked; set a new one"
        )
        log.error("api.auth_failed", hint=hint)
        moment = datetime.fromtimestamp(now, UTC)
        event = observe.auth_failed(
            self.number, now=moment, deployment=self.deployment, oauth=oauth
        )
        await self.store.enqueue(list(self.route((event,))), now)
        await self.store.set_meta("auth_episode", str(self.number))
        await self.store.set_meta("auth_failing", "1")
        self.saved = True
        self.on_commit()

    def reload_token(self) -> None:
        fresh = self.token_source()
        if fresh and fresh != self.api.token:
            self.api.set_token(fresh)
            self.metrics.token_expiry.set(jwt_expiry(fresh) or 0)
            log.info("api.token_reloaded")

    async def recovered(self) -> None:
        self.saved = False
        log.info("api.auth_recovered")
        await self.store.set_meta("auth_failing", "0")


class PollCounts:
    """The per-poll metrics; `spmon_up` is set only when it changes."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._up = -1

    def count(self, verdict: Verdict, elapsed: float) -> None:
        m = self.metrics
        m.poll_outcome(verdict.outcome).inc()
        m.poll_duration.observe(elapsed)
        if verdict.outcome is Outcome.OK:
            m.last_success.set(verdict.polled_at)
            self._set_up(1)
        elif verdict.outcome is not Outcome.NOT_FOUND:
            self._set_up(0)
        for event in verdict.events:
            if event.change is not None:
                m.changes.labels(event.change.field).inc()

    def _set_up(self, value: int) -> None:
        if value != self._up:
            self._up = value
            self.metrics.up.set(value)


def record(key: SessionKey, verdict: Verdict, route: Routed) -> PollRecord:
    """The store's record of a verdict, each event paired with the sinks it goes to."""
    return PollRecord(
        key=key,
        polled_at=verdict.polled_at,
        outcome=verdict.outcome,
        failures=verdict.failures,
        snapshot=verdict.snapshot,
        payload=verdict.payload,
        digest=stored_digest(verdict.digest),
        review=verdict.review,
        version=verdict.version,
        missing=verdict.missing,
        settled_since=verdict.life.settled_since,
        deliveries=route(verdict.events),
        touch_only=verdict.touch_only,
    )

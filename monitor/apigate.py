"""The API as a whole, seen by the poll loop: is it down, does it refuse the token?

Two breakers share one rule: while either is open, polling every session would only collect
failures, so one probe poll at a time goes out (after each open breaker's cooldown) and the
rest wait. The API breaker opens on 5xx, timeouts and connection errors across sessions and
probes with a doubling, jittered cooldown; the token breaker opens on the first 401/403 and
probes every `auth_retry`. The decisions are `monitor.core.breaker`'s; this applies them to
metrics and logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import structlog

from monitor.api import ApiError, AuthFailed, NotFound, RequestRejected
from monitor.core.breaker import Breaker, Policy, Transition, Verdict
from monitor.metrics import Metrics

__all__ = ["ApiGate", "Judged", "verdicts"]

log = structlog.get_logger("spmon.poller")


@dataclass(frozen=True, slots=True)
class Judged:
    token_rejected: bool = False
    """This result opened the token breaker (the caller raises api.auth_failed)."""
    resumed: bool = False
    """The last open breaker closed: every waiting session may go now."""


class ApiGate:
    def __init__(self, *, api: Policy, auth: Policy, metrics: Metrics) -> None:
        self.api = Breaker(api)
        self.auth = Breaker(auth)
        self.metrics = metrics
        metrics.api_breaker_open.set(0)

    @classmethod
    def for_watches(
        cls, intervals: Sequence[float], *, api: Policy, auth_retry: float, metrics: Metrics
    ) -> ApiGate:
        """Breakers for a watch set with these intervals. With fewer sessions than the
        threshold, the API counts as down once each has failed; probes never wait longer
        than the shortest interval, so the end of an outage is seen within one interval."""
        cap = max(api.base, min(api.cap, min(intervals, default=api.cap)))
        api = replace(api, threshold=min(api.threshold, max(1, len(intervals))), cap=cap)
        auth = Policy(threshold=1, base=auth_retry, cap=auth_retry, jitter=0.0)
        return cls(api=api, auth=auth, metrics=metrics)

    @property
    def closed(self) -> bool:
        return not (self.api.is_open or self.auth.is_open)

    def _open(self) -> tuple[Breaker, ...]:
        return tuple(b for b in (self.api, self.auth) if b.is_open)

    def may_probe(self, now: float) -> bool:
        gates = self._open()
        return bool(gates) and all(b.may_probe(now) for b in gates)

    def start_probe(self, now: float) -> None:
        for gate in self._open():
            gate.start_probe(now)

    def next_probe(self) -> float | None:
        """When a probe may next go; None when the gate is closed or a probe is out."""
        times = [b.next_probe() for b in self._open()]
        if not times or None in times:
            return None
        return max(t for t in times if t is not None)

    def restore_token_rejected(self, now: float) -> None:
        """The token was refused before a restart: probe first, poll everything after."""
        self.auth.trip(now)
        self.metrics.auth_failing.set(1)

    def judge(self, now: float, u: float, *, api: Verdict, auth: Verdict) -> Judged:
        """Feed one poll's result to both breakers; what changed."""
        was_closed = self.closed
        api_change = self.api.record(api, now, u)
        if api_change is not None:
            self._api_changed(api_change)
        auth_change = self.auth.record(auth, now, u)
        if auth_change is not None:
            self.metrics.auth_failing.set(int(auth_change.opened))
        return Judged(
            token_rejected=auth_change is not None and auth_change.opened,
            resumed=not was_closed and self.closed,
        )

    def _api_changed(self, change: Transition) -> None:
        self.metrics.api_breaker_open.set(int(change.opened))
        if change.opened:
            log.warning(
                "api.down",
                failures=self.api.policy.threshold,
                hint="polls wait (overdue still follows the clock); one probe per cooldown",
                next_probe_in=round(
                    (self.api.next_probe() or 0.0) - (self.api.opened_at or 0.0), 2
                ),
            )
        else:
            log.info("api.recovered", outage_seconds=round(change.outage, 1))


def verdicts(exc: ApiError) -> tuple[Verdict, Verdict]:
    """What a failed poll says about the API and about the token, in that order."""
    if exc.retryable:  # 5xx, timeouts, connection errors: the API itself is failing
        return Verdict.DOWN, Verdict.UNKNOWN
    if isinstance(exc, AuthFailed):
        return Verdict.UP, Verdict.DOWN
    if isinstance(exc, (NotFound, RequestRejected)):  # a definite answer about this session
        return Verdict.UP, Verdict.UNKNOWN
    return Verdict.UNKNOWN, Verdict.UNKNOWN  # 429, unusable bodies: says nothing either way

"""Prometheus instruments on an injected registry, plus gauges computed at scrape time.

No series carries a session SID: one process watches up to 100,000 sessions and every label
value here comes from a small, known set (status values are the API's few statuses).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.core.delivery import Notified
from monitor.core.events import Field
from monitor.core.outbox import SETTLED
from monitor.core.poll import Outcome

__all__ = ["OUTCOMES", "Metrics", "WatchSummary", "WatchView"]

NS = "spmon"
OUTCOMES: tuple[Outcome, ...] = tuple(outcome for outcome in Outcome if outcome is not Outcome.HELD)
"""The poll outcomes whose series exist from the start (`held` appears with the first outage)."""
NOTIFY_OUTCOMES = tuple(Notified)
MAX_STATUS_VALUES = 32
"""The status set is open; past this many distinct values the rest count as "other"."""


@dataclass(frozen=True, slots=True)
class WatchSummary:
    watched: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_phase: dict[str, int] = field(default_factory=dict)
    """Every phase, zeros included (the series exist from the start)."""
    reviews_pending: int = 0
    reviews_overdue: int = 0
    oldest_overdue_age: float = 0.0
    poll_lag: float = 0.0
    label_names: tuple[str, ...] = ()
    """`metrics.by_labels`; empty: no per-label series."""
    by_labels: dict[tuple[str, ...], tuple[int, int]] = field(default_factory=dict)
    """(pending, overdue) per tuple of those labels' values (`core.buckets`)."""


class WatchView(Protocol):
    def summary(self) -> WatchSummary: ...


class IndexCollector(Collector):
    """Gauges describing the watch set, read from the in-memory watch set when Prometheus scrapes."""

    def __init__(self, view: WatchView) -> None:
        self._view = view

    def collect(self) -> Iterator[Metric]:
        s = self._view.summary()
        yield _gauge("sessions_watched", "Exam sessions being watched.", s.watched)
        by_status = GaugeMetricFamily(
            f"{NS}_sessions", "Watched sessions by their last known status.", labels=["status"]
        )
        for status, count in sorted(_bounded(s.by_status).items()):
            by_status.add_metric([status], count)
        yield by_status
        by_phase = GaugeMetricFamily(
            f"{NS}_sessions_by_phase",
            "Watched sessions by lifecycle phase (live, awaiting_review, processing, scheduled,"
            " settled, retired), which sets how often each is polled.",
            labels=["phase"],
        )
        for phase, count in s.by_phase.items():
            by_phase.add_metric([phase], count)
        yield by_phase
        yield _gauge(
            "reviews_pending", "Sessions whose review is required and not done.", s.reviews_pending
        )
        yield _gauge(
            "reviews_overdue", "Pending reviews past their reviewByDate.", s.reviews_overdue
        )
        yield _gauge(
            "reviews_overdue_oldest_age_seconds",
            "How long past its reviewByDate the most overdue pending review is (0 when none).",
            s.oldest_overdue_age,
        )
        yield _gauge(
            "poll_lag_seconds",
            "How far behind schedule the most-late due poll is.",
            s.poll_lag,
        )
        yield from _by_labels(s)


def _by_labels(s: WatchSummary) -> Iterator[Metric]:
    # Gauges of their own rather than labels on spmon_reviews_pending/_overdue: the alert rules
    # and dashboards read those as one series each, whatever metrics.by_labels says.
    if not s.label_names:
        return
    names = list(s.label_names)
    pending = GaugeMetricFamily(
        f"{NS}_reviews_pending_by_label",
        "Pending reviews by the watch labels in metrics.by_labels (capped; the rest: other).",
        labels=names,
    )
    overdue = GaugeMetricFamily(
        f"{NS}_reviews_overdue_by_label",
        "Overdue reviews by the watch labels in metrics.by_labels (capped; the rest: other).",
        labels=names,
    )
    for values, (waiting, late) in s.by_labels.items():
        pending.add_metric(list(values), waiting)
        overdue.add_metric(list(values), late)
    yield pending
    yield overdue


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{NS}_{name}", doc, value=value)


def _bounded(by_status: dict[str, int]) -> dict[str, int]:
    if len(by_status) <= MAX_STATUS_VALUES:
        return by_status
    ranked = sorted(by_status.items(), key=lambda item: -item[1])
    kept = dict(ranked[: MAX_STATUS_VALUES - 1])
    kept["other"] = sum(count for _, count in ranked[MAX_STATUS_VALUES - 1 :])
    return kept


class Metrics:
    """Every instrument spmon updates, registered on `registry` (never the global one)."""

    def __init__(self, registry: CollectorRegistry, *, sinks: Sequence[str] = ()) -> None:
        self.registry = registry
        Gauge(f"{NS}_build_info", "Build information.", ["version"], registry=registry).labels(
            __version__
        ).set(1)
        self.up = Gauge(
            f"{NS}_up",
            "1 if the last poll reached the API and parsed; 0 while the API is down.",
            registry=registry,
        )
        self.changes = Counter(
            f"{NS}_session_changes", "Detected changes by field.", ["field"], registry=registry
        )
        self.polls = Counter(f"{NS}_polls", "Polls by outcome.", ["outcome"], registry=registry)
        self.poll_duration = Histogram(
            f"{NS}_poll_duration_seconds",
            "Time of one poll, retries included.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 60),
            registry=registry,
        )
        self.api_responses = Counter(
            f"{NS}_api_responses",
            "API responses by HTTP code (timeout / connection_error when none came).",
            ["code"],
            registry=registry,
        )
        self.last_success = Gauge(
            f"{NS}_poll_last_success_timestamp_seconds",
            "When a poll last succeeded.",
            registry=registry,
        )
        self.auth_failing = Gauge(
            f"{NS}_api_auth_failing", "1 while the API rejects the token.", registry=registry
        )
        self.api_breaker_open = Gauge(
            f"{NS}_api_breaker_open",
            "1 while the API is down (5xx, timeouts across sessions): one probe per cooldown.",
            registry=registry,
        )
        self.token_expiry = Gauge(
            f"{NS}_api_token_expiry_timestamp_seconds",
            "The API token's expiry: its exp claim, or the OAuth grant's (0 when unknown).",
            registry=registry,
        )
        self.token_renews = Gauge(
            f"{NS}_api_token_renews",
            "1 when spmon renews its own token (OAuth): an expiry minutes away is normal.",
            registry=registry,
        )
        self.reload_ok = Gauge(
            f"{NS}_config_last_reload_successful",
            "1 if the last configuration (re)load was valid and applied, 0 if it was refused.",
            registry=registry,
        )
        self.reload_time = Gauge(
            f"{NS}_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully (start-up counts).",
            registry=registry,
        )
        self.notifications = Counter(
            f"{NS}_notifications",
            "Delivery attempts by sink and outcome.",
            ["sink", "outcome"],
            registry=registry,
        )
        self.notification_latency = Histogram(
            f"{NS}_notification_latency_seconds",
            "From an event's detection to its delivery.",
            ["sink"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200),
            registry=registry,
        )
        self.outbox_pending = Gauge(
            f"{NS}_outbox_pending", "Deliveries waiting in the outbox.", ["sink"], registry=registry
        )
        self.outbox_dead = Gauge(
            f"{NS}_outbox_dead", "Dead-lettered deliveries.", ["sink"], registry=registry
        )
        self.sink_disabled = Gauge(
            f"{NS}_sink_disabled",
            "1 while a sink is disabled (its receiver answered 410 Gone); a config change resets it.",
            ["sink"],
            registry=registry,
        )
        self.notifications_held = Gauge(
            f"{NS}_notifications_held",
            "Deliveries held by a sink's quiet hours or maintenance window (sent as one digest"
            " when it ends).",
            ["sink"],
            registry=registry,
        )
        self.digests = Counter(
            f"{NS}_digests",
            "Digest messages delivered (each covers one or more deliveries), by sink.",
            ["sink"],
            registry=registry,
        )
        self.outbox_purged = Counter(
            f"{NS}_outbox_purged",
            "Settled deliveries deleted after outbox.retention, by state (delivered, dead).",
            ["state"],
            registry=registry,
        )
        self.history_purged = Counter(
            f"{NS}_history_purged",
            "Transitions deleted after history.retention.",
            registry=registry,
        )
        self.history_oldest_age = Gauge(
            f"{NS}_history_oldest_age_seconds",
            "Age of the oldest kept transition in the history (0 when none).",
            registry=registry,
        )
        self.outbox_oldest_age = Gauge(
            f"{NS}_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending delivery (0 when none).",
            registry=registry,
        )
        self.shards_owned = Gauge(
            f"{NS}_shards_owned",
            "Shards (of 256) whose sessions this process polls: all of them on SQLite; a"
            " replica's share on PostgreSQL, so the fleet's sum is 256 when every shard is owned.",
            registry=registry,
        )
        self.leader = Gauge(
            f"{NS}_leader",
            "1 where discovery and retention run (the leader, or the only process), else 0.",
            registry=registry,
        )
        self._initialise(sinks)
        self._poll_children = {outcome: self.polls.labels(outcome) for outcome in OUTCOMES}
        self._response_children: dict[str, Any] = {}

    def poll_outcome(self, outcome: Outcome) -> Any:
        """The polls_total child for `outcome`; cached because labels() costs more than inc()."""
        return self._poll_children.get(outcome) or self.polls.labels(outcome)

    def api_response(self, code: str) -> None:
        child = self._response_children.get(code)
        if child is None:
            child = self._response_children[code] = self.api_responses.labels(code)
        child.inc()

    def _initialise(self, sinks: Iterable[str]) -> None:
        # Series exist at 0 from the start, so rate() and absent() behave before the first event.
        for name in Field:
            self.changes.labels(str(name))
        for outcome in OUTCOMES:
            self.polls.labels(outcome)
        for state in SETTLED:
            self.outbox_purged.labels(state)
        for sink in sinks:
            for notified in NOTIFY_OUTCOMES:
                self.notifications.labels(sink, notified)
            self.notification_latency.labels(sink)
            self.outbox_pending.labels(sink)
            self.outbox_dead.labels(sink)
            self.sink_disabled.labels(sink)
            self.notifications_held.labels(sink)

    def fleet(self, owned: Callable[[], int], leading: Callable[[], bool]) -> None:
        """Read at scrape time: the shards held now, and whether this process leads."""
        self.shards_owned.set_function(lambda: float(owned()))
        self.leader.set_function(lambda: float(leading()))

    def watch_set(self, view: WatchView) -> None:
        self.registry.register(IndexCollector(view))

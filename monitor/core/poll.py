"""One poll, decided: what the API's answer (or its absence) changes for one session. Pure.

The poll loop fetches, calls `step`, routes the verdict's events, commits and schedules; every
decision in between is here, with `now`, the random unit and the policy passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Final, Protocol

from monitor.core import observe, phase, rules, schedule
from monitor.core.body_digest import digest_of
from monitor.core.events import Event
from monitor.core.keys import SessionKey
from monitor.core.parse import ParseProblem, parse
from monitor.core.snapshot import Snapshot

__all__ = [
    "HELD",
    "MISSING",
    "Answer",
    "Current",
    "Failed",
    "Held",
    "Missing",
    "Outcome",
    "Rules",
    "Throttled",
    "Verdict",
    "deadline_after",
    "first_due",
    "held",
    "lifecycle",
    "step",
]

MISSING_INTERVAL: Final = 300.0
"""A vanished session is polled at most this often: it may come back, but it is not news every
minute."""


class Outcome(StrEnum):
    """A poll's result, as `spmon_polls_total` labels it."""

    OK = "ok"
    INVALID = "invalid"
    NOT_FOUND = "not_found"
    AUTH_FAILED = "auth_failed"
    RATE_LIMITED = "rate_limited"
    ERROR = "error"
    HELD = "held"
    """Not polled: the API is down; only the clock was evaluated."""


class Current(Protocol):
    """A session's state before this poll (the loop's `Entry`)."""

    @property
    def key(self) -> SessionKey: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def interval(self) -> float:
        """Seconds between polls in its phase now (the phase's interval, or the override)."""

    @property
    def override(self) -> float | None:
        """The watch's own interval, which wins over its phase's."""

    @property
    def settled_since(self) -> datetime | None: ...
    @property
    def snapshot(self) -> Snapshot | None: ...
    @property
    def review(self) -> rules.ReviewState: ...
    @property
    def version(self) -> int: ...
    @property
    def digest(self) -> int | None: ...
    @property
    def failures(self) -> int: ...
    @property
    def missing(self) -> bool: ...
    @property
    def last_poll_at(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Failed:
    """No usable answer. In an `outage` the failure is the API's, not the session's."""

    outcome: Outcome
    outage: bool = False


@dataclass(frozen=True, slots=True)
class Throttled:
    """429: come back after `retry_after` seconds."""

    retry_after: float


@dataclass(frozen=True, slots=True)
class Missing:
    """404: the session is gone (for now)."""


@dataclass(frozen=True, slots=True)
class Held:
    """Not asked: the API is down or refuses the token; only the clock moves."""


MISSING: Final = Missing()
HELD: Final = Held()

Answer = bytes | Failed | Throttled | Missing | Held
"""What the fetch came back with: the body (HTTP 200) or how it failed."""


@dataclass(frozen=True, slots=True)
class Rules:
    """The loop's settings that decide polls."""

    policy: rules.Policy = field(default_factory=rules.Policy)
    jitter: float = 0.1
    naive_tz: tzinfo | None = None
    deployment: str = ""
    """The state store's deployment id, which scopes every event id."""
    phases: phase.Intervals | None = None
    """Each session's interval by its lifecycle phase; None polls each at its own `interval`
    and never retires one (tools and tests that predate phases)."""
    link_template: str | None = None
    """The session link when the API's URL is null (`display.link_template`)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Everything one poll changes, and when the session is due next.

    `snapshot`/`payload` are None when the poll produced no valid data (the last good snapshot
    stays). `touch_only`: nothing but the poll time changed, so nothing need be committed now.
    `next_due` None: the session retired, no poll is due (a source reporting it changed brings
    it back).
    """

    outcome: Outcome
    polled_at: float
    failures: int
    next_due: float | None
    life: phase.Lifecycle
    events: tuple[Event, ...] = ()
    snapshot: Snapshot | None = None
    payload: bytes | None = None
    digest: int | None = None
    review: rules.ReviewState | None = None
    version: int = 0
    missing: bool = False
    touch_only: bool = False
    problem: ParseProblem | None = None
    """Why a 200 was not a session (outcome `invalid`)."""


def step(current: Current, answer: Answer, now: float, u: float, config: Rules) -> Verdict:
    """Decide one poll. `u` is a uniform random number in [0, 1) for the schedule's jitter."""
    if isinstance(answer, bytes):
        return _fetched(current, answer, now, u, config)
    life = lifecycle(current, current.snapshot, now, config)
    if isinstance(answer, Failed):
        return _kept(current, now, u, config, answer.outcome, life, outage=answer.outage)
    if isinstance(answer, Throttled):
        kept = _kept(current, now, u, config, Outcome.RATE_LIMITED, life)
        return _with_due(kept, now + answer.retry_after)
    if isinstance(answer, Missing):
        return _not_found(current, now, u, config, life)
    verdict = _by_clock(current, now, config, Outcome.HELD, current.failures, due=now, life=life)
    wake = deadline_after(current.snapshot, verdict.review or current.review, now, config)
    return _with_due(verdict, wake if wake and wake > now else now + current.interval)


def held(current: Current, now: float, config: Rules) -> Verdict | None:
    """What the clock changes for a session the API cannot be asked about; None: nothing."""
    verdict = step(current, HELD, now, 0.0, config)
    return verdict if verdict.events or verdict.review != current.review else None


def first_due(current: Current, now: float, u: float, config: Rules) -> float:
    """The first poll after start: spread over one interval, no later than one interval after
    the last stored poll, nor than the next review deadline."""
    due = schedule.first_due(now, current.interval, u)
    if current.last_poll_at is not None:
        due = max(now, min(due, current.last_poll_at + current.interval))
    deadline = deadline_after(current.snapshot, current.review, now, config)
    return min(due, deadline) if deadline else due


def lifecycle(
    current: Current, snapshot: Snapshot | None, now: float, config: Rules
) -> phase.Lifecycle:
    """The session's phase and interval with `snapshot` as its last good data, at `now`."""
    return phase.assess(
        snapshot,
        now=datetime.fromtimestamp(now, UTC),
        settled_since=current.settled_since,
        override=current.override,
        intervals=config.phases,
        fixed=current.interval,
    )


def deadline_after(
    snapshot: Snapshot | None, review: rules.ReviewState, now: float, config: Rules
) -> float | None:
    """When the clock alone next changes this session's review state."""
    if snapshot is None:
        return None
    check = rules.next_check(snapshot, review, datetime.fromtimestamp(now, UTC), config.policy)
    return check.timestamp() if check is not None else None


def _fetched(current: Current, body: bytes, now: float, u: float, config: Rules) -> Verdict:
    digest = digest_of(body)
    parsed: Snapshot | ParseProblem
    same = digest == current.digest
    if same and current.snapshot is not None:
        # Byte-identical to the last valid document: parsing it again cannot say anything new.
        parsed = current.snapshot
    else:
        parsed = parse(
            body, current.key, naive_tz=config.naive_tz, link_template=config.link_template
        )
    if isinstance(parsed, ParseProblem):
        life = lifecycle(current, current.snapshot, now, config)
        return replace(_kept(current, now, u, config, Outcome.INVALID, life), problem=parsed)
    seen = _observe(current, parsed, now, config)
    life = lifecycle(current, parsed, now, config)
    return Verdict(
        outcome=Outcome.OK,
        polled_at=now,
        failures=0,
        next_due=phase.next_poll(
            now,
            life.interval,
            u,
            jitter=config.jitter,
            deadline=deadline_after(parsed, seen.review, now, config),
        ),
        life=life,
        events=seen.events,
        # Events carry the reviewer; memory keeps the shared context only.
        snapshot=parsed.kept(),
        payload=None if same else body,
        digest=digest,
        review=seen.review,
        version=seen.version,
        touch_only=(
            same
            and not seen.events
            and seen.review == current.review
            and current.failures == 0
            and not current.missing
            and life.settled_since == current.settled_since
        ),
    )


def _kept(
    current: Current,
    now: float,
    u: float,
    config: Rules,
    outcome: Outcome,
    life: phase.Lifecycle,
    *,
    outage: bool = False,
) -> Verdict:
    """A failed poll: the last good snapshot stays, but overdue still follows the clock.

    In an `outage` there is no backoff of the session's own, which would keep it away after the
    API is back (the loop holds it meanwhile)."""
    failures = current.failures if outage else current.failures + 1
    interval = life.interval
    due: float | None = None
    if interval is not None and outage:
        due = schedule.next_due(now, interval, u, jitter=config.jitter)
    elif interval is not None:
        due = schedule.retry_due(now, interval, failures, u)
    verdict = _by_clock(current, now, config, outcome, failures, due=due, life=life)
    deadline = deadline_after(current.snapshot, verdict.review or current.review, now, config)
    return _with_due(verdict, _capped(due, deadline))


def _by_clock(
    current: Current,
    now: float,
    config: Rules,
    outcome: Outcome,
    failures: int,
    *,
    due: float | None,
    life: phase.Lifecycle,
) -> Verdict:
    """No new data: what the clock alone changes, against the last good snapshot."""
    review, version = current.review, current.version
    events: tuple[Event, ...] = ()
    if current.snapshot is not None:
        seen = _observe(current, current.snapshot, now, config)
        review, version, events = seen.review, seen.version, seen.events
    return Verdict(
        outcome=outcome,
        polled_at=now,
        failures=failures,
        next_due=due,
        life=life,
        events=events,
        review=review,
        version=version,
        missing=current.missing,
    )


def _not_found(
    current: Current, now: float, u: float, config: Rules, life: phase.Lifecycle
) -> Verdict:
    events: tuple[Event, ...] = ()
    version = current.version
    if not current.missing:
        version += 1
        event = observe.not_found(
            current.key,
            version=version,
            now=datetime.fromtimestamp(now, UTC),
            labels=current.labels,
            deployment=config.deployment,
        )
        events = (event,)
    return Verdict(
        outcome=Outcome.NOT_FOUND,
        polled_at=now,
        failures=current.failures + 1,
        next_due=(
            None
            if life.interval is None
            else now + max(life.interval, MISSING_INTERVAL) * (1.0 + 0.1 * u)
        ),
        life=life,
        events=events,
        review=current.review,
        version=version,
        missing=True,
    )


def _observe(current: Current, seen: Snapshot, now: float, config: Rules) -> observe.Observation:
    return observe.observe(
        current.key,
        current.snapshot,
        seen,
        review=current.review,
        version=current.version,
        now=datetime.fromtimestamp(now, UTC),
        policy=config.policy,
        labels=current.labels,
        deployment=config.deployment,
    )


def _capped(due: float | None, deadline: float | None) -> float | None:
    if not deadline:
        return due
    return deadline if due is None else min(due, deadline)


def _with_due(verdict: Verdict, due: float | None) -> Verdict:
    return replace(verdict, next_due=due)

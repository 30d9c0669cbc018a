"""One poll's verdict: which events a new observation causes, with their ids. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from monitor.core import diff, rules
from monitor.core.events import CHANGE_TYPES, Event, EventType, Part, Value, event_id, isoformat
from monitor.core.keys import SessionKey
from monitor.core.snapshot import Snapshot

__all__ = ["AUTH_MESSAGE", "OAUTH_MESSAGE", "Observation", "auth_failed", "not_found", "observe"]

AUTH_MESSAGE: Final = "The SmarterProctoring API rejected spmon's token."
OAUTH_MESSAGE: Final = (
    "The SmarterProctoring API rejected the token spmon got from its token endpoint, "
    "or the endpoint refused spmon's client credentials."
)


@dataclass(frozen=True, slots=True)
class Observation:
    review: rules.ReviewState
    version: int
    events: tuple[Event, ...]


def observe(
    key: SessionKey,
    previous: Snapshot | None,
    current: Snapshot,
    *,
    review: rules.ReviewState,
    version: int,
    now: datetime,
    policy: rules.Policy,
    labels: Mapping[str, str],
    deployment: str,
) -> Observation:
    """Diff against the last good snapshot, run the review rules, and name every event.

    `version` counts commits that emitted events; the new events share version + 1, so the same
    transition detected again after a crash gets the same ids, and a later one never does. An
    id also names what changed (values, deadline): a state file restored from a backup resumes
    old versions, and a different transition at a reused version must still get a new id.
    """
    changes = diff.diff(previous, current)
    before = review
    review, findings = rules.evaluate(current, review, now, policy)
    levels = iter(rules.escalated_levels(before, review))
    if not changes and not findings:
        return Observation(review, version, ())
    version += 1
    deadline = _part(current.review_by_date)
    events = [
        Event(
            id=event_id(
                key.session_sid,
                version,
                CHANGE_TYPES[change.field],
                _part(change.previous),
                _part(change.current),
                deployment=deployment,
            ),
            type=CHANGE_TYPES[change.field],
            observed_at=now,
            key=key,
            labels=labels,
            change=change,
            snapshot=current,
        )
        for change in changes
    ]
    for kind in findings:
        level = next(levels) if kind is EventType.REVIEW_ESCALATED else None
        # The level is part of the id only for escalations: other ids stay what they were.
        parts = (deadline,) if level is None else (deadline, level)
        events.append(
            Event(
                id=event_id(key.session_sid, version, kind, *parts, deployment=deployment),
                type=kind,
                observed_at=now,
                key=key,
                labels=labels,
                snapshot=current,
                level=level,
            )
        )
    return Observation(review, version, tuple(events))


def not_found(
    key: SessionKey, *, version: int, now: datetime, labels: Mapping[str, str], deployment: str
) -> Event:
    """The API answered 404 for a session that existed (or was expected) before."""
    kind = EventType.SESSION_NOT_FOUND
    ident = event_id(key.session_sid, version, kind, deployment=deployment)
    return Event(ident, kind, now, key, labels)


def auth_failed(episode: int, *, now: datetime, deployment: str, oauth: bool = False) -> Event:
    """The API refused spmon's token: one event per episode, about no session. With OAuth
    client credentials, a new token has already been asked for: what a person must fix is
    the client id or secret, not a token file."""
    kind = EventType.API_AUTH_FAILED
    ident = event_id("api", kind, episode, deployment=deployment)
    return Event(ident, kind, now, None, message=OAUTH_MESSAGE if oauth else AUTH_MESSAGE)


def _part(value: Value) -> Part:
    return isoformat(value) if isinstance(value, datetime) else value

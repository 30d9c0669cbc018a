"""The read model's records as JSON documents: what /api/v1 answers and `spmon … --json`
prints, from the running service or a state file alike (one spelling, in one place).

Instants are RFC 3339 UTC strings; what is unknown is null, never a reassuring 0 or false.
Field names are the records' own, so `openapi.py` can be read beside this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from monitor.core.events import isoformat, wire_value
from monitor.core.views import (
    ApiHealth,
    Delivery,
    History,
    Page,
    SessionView,
    SinkHealth,
    Summary,
    Transition,
)
from monitor.core.watches import Watch
from monitor.store.base import OutboxEntry

__all__ = ["history", "outbox_entry", "page", "session", "summary", "watch", "watches"]

Doc = dict[str, Any]


def _when(value: datetime | None) -> str | None:
    return None if value is None else isoformat(value)


def _at(value: float | None) -> str | None:
    return None if value is None else isoformat(datetime.fromtimestamp(value, UTC))


def session(view: SessionView) -> Doc:
    return {
        **view.key._asdict(),
        "labels": dict(view.labels),
        "source": view.source,
        "seen": view.seen,
        "status": view.status,
        "review_required": view.review_required,
        "reviewed": view.reviewed,
        "review_by_date": _when(view.review_by_date),
        "url": view.url,
        "phase": None if view.phase is None else str(view.phase),
        "overdue": view.overdue,
        "overdue_since": _when(view.overdue_since),
        "lateness_seconds": view.lateness,
        "missing": view.missing,
        "last_poll_at": _when(view.last_poll_at),
        "last_outcome": view.last_outcome,
    }


def page(found: Page) -> Doc:
    return {
        "total": found.total,
        "offset": found.offset,
        "limit": found.limit,
        "items": [session(view) for view in found.items],
    }


def _delivery(d: Delivery) -> Doc:
    return {
        "event_id": d.event_id,
        "sink": d.sink,
        "event_type": d.event_type,
        "state": str(d.state),
        "attempts": d.attempts,
        "last_error": d.last_error,
        "created_at": _when(d.created_at),
        "delivered_at": _when(d.delivered_at),
        "next_attempt_at": _when(d.next_attempt_at),
    }


def _transition(t: Transition, deliveries: Iterable[Delivery]) -> Doc:
    return {
        "event_id": t.event_id,
        "type": str(t.type),
        "observed_at": _when(t.observed_at),
        "field": t.field,
        "previous": wire_value(t.previous),
        "current": wire_value(t.current),
        "message": t.message,
        "deliveries": [_delivery(d) for d in deliveries],
    }


def history(found: History) -> Doc:
    """Transitions oldest first, each with its deliveries (one per sink); `deliveries` holds
    those whose transition is no longer kept (retention purged it first)."""
    kept = {t.event_id for t in found.transitions}
    return {
        "session": None if found.session is None else session(found.session),
        "transitions": [_transition(t, found.deliveries_of(t.event_id)) for t in found.transitions],
        "deliveries": [_delivery(d) for d in found.deliveries if d.event_id not in kept],
    }


def _sink(s: SinkHealth) -> Doc:
    return {"name": s.name, "state": s.state, "pending": s.pending, "dead": s.dead}


def _api(a: ApiHealth) -> Doc:
    return {
        "auth_failing": a.auth_failing,
        "breaker_open": a.breaker_open,
        "last_success": _when(a.last_success),
        "token_expiry": _when(a.token_expiry),
        "token_renews": a.token_renews,
    }


def summary(s: Summary) -> Doc:
    return {
        "at": _when(s.at),
        "running": s.running,
        "watched": s.watched,
        "unseen": s.unseen,
        "by_status": dict(s.by_status),
        "by_phase": None if s.by_phase is None else dict(s.by_phase),
        "pending": s.pending,
        "overdue": s.overdue,
        "overdue_known": s.overdue_known,
        "due_soon": s.due_soon,
        "oldest_overdue_seconds": s.oldest_overdue,
        "sinks": [_sink(sink) for sink in s.sinks],
        "api": _api(s.api),
        "oldest_pending_delivery": _when(s.oldest_pending_delivery),
    }


def watch(w: Watch) -> Doc:
    return {**w.key._asdict(), "labels": dict(w.labels), "interval": w.interval, "source": w.source}


def watches(found: Mapping[Any, Watch], *, offset: int, limit: int) -> Doc:
    items = list(found.values())
    return {
        "total": len(items),
        "offset": offset,
        "limit": limit,
        "items": [watch(w) for w in items[offset : offset + limit]],
    }


def outbox_entry(e: OutboxEntry) -> Doc:
    return {
        "id": e.id,
        "event_id": e.event_id,
        "sink": e.sink,
        "session_sid": e.session_sid or None,
        "event_type": e.event_type,
        "state": str(e.state),
        "attempts": e.attempts,
        "created_at": _at(e.created_at),
        "next_attempt_at": _at(e.next_attempt_at),
        "last_error": e.last_error,
    }

"""Request inputs checked once: query strings and JSON bodies into domain values, or an
`Invalid` naming the field (never echoing the value it was given)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from multidict import MultiMapping

from monitor.core import durations
from monitor.core.keys import SESSION_SID, SessionKey
from monitor.core.phase import Phase
from monitor.core.views import SessionQuery, Sort
from monitor.core.watches import NO_LABELS, Watch

__all__ = ["MAX_LIMIT", "Invalid", "interval", "labels", "paging", "session_query", "watch"]

MAX_LIMIT = 1000
"""Rows one page may hold: a bigger list is paged, not one huge answer."""
TRUE, FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})


class Invalid(ValueError):
    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message, self.status = field, message, status


def _flag(query: MultiMapping[str], name: str) -> bool | None:
    text = query.get(name)
    if text is None:
        return None
    if text.lower() in TRUE:
        return True
    if text.lower() in FALSE:
        return False
    raise Invalid(name, "expected true or false")


def _int(query: MultiMapping[str], name: str, default: int, top: int | None = None) -> int:
    text = query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise Invalid(name, "expected a whole number") from None
    if value < 0 or (top is not None and value > top):
        raise Invalid(name, f"expected 0 to {top}" if top else "must not be negative")
    return value


def paging(query: MultiMapping[str], default: int = 100) -> tuple[int, int]:
    """(offset, limit)"""
    return _int(query, "offset", 0, 10**9), _int(query, "limit", default, MAX_LIMIT)


def _duration(query: MultiMapping[str], name: str) -> float | None:
    text = query.get(name)
    if text is None:
        return None
    try:
        seconds = durations.seconds(text)
    except ValueError:
        raise Invalid(name, "expected a duration such as 24h, 30m or seconds") from None
    if not 0 <= seconds < 10**10:
        raise Invalid(name, "out of range")
    return seconds


def _choice(query: MultiMapping[str], name: str, choices: type[Phase] | type[Sort]) -> Any:
    text = query.get(name)
    if text is None:
        return None
    try:
        return choices(text)
    except ValueError:
        raise Invalid(name, f"expected one of {', '.join(map(str, choices))}") from None


def session_query(query: MultiMapping[str]) -> SessionQuery:
    pairs = {}
    for item in query.getall("label", []):
        name, sep, value = item.partition(":")
        if not (sep and name):
            raise Invalid("label", "expected key:value")
        pairs[name] = value
    offset, limit = paging(query)
    return SessionQuery(
        phase=_choice(query, "phase", Phase),
        overdue=_flag(query, "overdue"),
        due_within=_duration(query, "due_within"),
        status=query.get("status"),
        labels=pairs,
        text=query.get("q"),
        sort=_choice(query, "sort", Sort) or Sort.LATENESS,
        limit=limit,
        offset=offset,
    )


def sid(text: str) -> str | None:
    return text if SESSION_SID.fullmatch(text) else None


def labels(value: object, field: str = "labels") -> Mapping[str, str]:
    if value is None:
        return NO_LABELS
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and k.strip() and isinstance(v, str) for k, v in value.items()
    ):
        raise Invalid(field, "expected an object of non-empty names to strings", 422)
    return {k.strip(): v for k, v in value.items()} or NO_LABELS


def interval(value: object, field: str = "interval") -> float | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError
        seconds = durations.seconds(value) if isinstance(value, str) else float(value)
    except ValueError:
        raise Invalid(field, "expected seconds or a duration such as 5m", 422) from None
    if not 0 < seconds < 10**9:
        raise Invalid(field, "must be positive", 422)
    return seconds


def watch(body: object, source: str) -> Watch:
    if not isinstance(body, dict):
        raise Invalid("body", "expected a JSON object", 422)
    parts = []
    for name in SessionKey._fields:
        value = body.get(name)
        if not isinstance(value, str):
            raise Invalid(name, "required (a string)", 422)
        parts.append(value)
    key = SessionKey(*parts)
    if problems := key.problems():
        raise Invalid(problems[0].partition(" ")[0], "does not match its SID pattern", 422)
    if extra := sorted(set(body) - {*SessionKey._fields, "labels", "interval"}):
        raise Invalid(extra[0], "unknown field", 422)
    return Watch(key, labels(body.get("labels")), interval(body.get("interval")), source)

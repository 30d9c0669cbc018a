"""Which sinks an event goes to: filters on event type and watch labels, plus a fallback. Pure.

Each sink has a route. An ordinary route takes the events whose type matches one of its glob
patterns and whose watch labels match all of its `labels`. A *default* route has no filters of
its own: it takes every event that no ordinary route took, so nothing is dropped silently.
`accepts` narrows a route to the types its sink can express (Alertmanager: overdue reviews).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from monitor.core.events import Event, EventType

__all__ = ["SESSIONLESS", "Route", "Router", "warnings"]

SESSIONLESS = frozenset({EventType.API_AUTH_FAILED})
"""Types with no session, hence no watch labels: a label filter never matches them."""


@dataclass(frozen=True, slots=True)
class Route:
    sink: str
    events: tuple[str, ...] = ("*",)
    """Glob patterns over the event type (`review.*`); any one matching is enough."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Every key must be present among the watch labels with a value matching the glob."""
    default: bool = False
    accepts: frozenset[str] | None = None
    """Types the sink can deliver at all; None means every type."""

    def takes_type(self, kind: str) -> bool:
        if self.accepts is not None and kind not in self.accepts:
            return False
        return any(fnmatchcase(kind, pattern) for pattern in self.events)

    def takes_labels(self, labels: Mapping[str, str]) -> bool:
        return all(
            key in labels and fnmatchcase(labels[key], value) for key, value in self.labels.items()
        )

    def takes(self, event: Event) -> bool:
        return self.takes_type(str(event.type)) and self.takes_labels(event.labels)


class Router:
    """`router(event)` → the sink names it goes to, in configuration order, without repeats."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = tuple(routes)
        self._ordinary = tuple(route for route in self.routes if not route.default)
        self._fallback = tuple(route for route in self.routes if route.default)

    def __call__(self, event: Event) -> tuple[str, ...]:
        chosen = tuple(route.sink for route in self._ordinary if route.takes(event))
        if chosen:
            return chosen
        kind = str(event.type)
        return tuple(route.sink for route in self._fallback if route.takes_type(kind))


def warnings(routes: Sequence[Route], types: Iterable[str] = tuple(EventType)) -> list[str]:
    """What `check-config` should point out: types that reach no sink (or only for some
    labels), and patterns that match no known type (a typo routes nothing, silently)."""
    if not routes:
        return []
    known = [str(kind) for kind in types]
    lines = [_unused_pattern(route, pattern) for route in routes for pattern in route.events]
    lines.extend(_idle(route, known) for route in routes)
    lines.extend(_reach(routes, kind) for kind in known)
    return [line for line in lines if line]


def _unused_pattern(route: Route, pattern: str) -> str:
    if any(fnmatchcase(str(kind), pattern) for kind in EventType):
        return ""
    return f"sink {route.sink!r}: events pattern {pattern!r} matches no event type"


def _idle(route: Route, known: Sequence[str]) -> str:
    if any(route.takes_type(kind) for kind in known):
        return ""
    return f"sink {route.sink!r} takes no event type it can deliver (check its events filter)"


def _reach(routes: Sequence[Route], kind: str) -> str:
    """One warning line for `kind`, or "" when every event of that type reaches a sink."""
    if any(route.default and route.takes_type(kind) for route in routes):
        return ""
    typed = [route for route in routes if not route.default and route.takes_type(kind)]
    if any(not route.labels for route in typed):
        return ""
    if kind in SESSIONLESS or not typed:
        return f"event type {kind} reaches no sink"
    where = "; ".join(f"{route.sink}: {_labels(route.labels)}" for route in typed)
    return (
        f"event type {kind} reaches a sink only when labels match ({where}); "
        "other sessions' events go nowhere (mark a sink `default: true` to catch them)"
    )


def _labels(labels: Mapping[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))

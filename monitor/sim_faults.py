"""The simulator's fault injection: which API GETs misbehave, and how a 200 can be unusable."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["MALFORMED_SESSION_KINDS", "Faults", "faults_from", "malformed_session"]

MALFORMED_SESSION_KINDS: Final = 5


@dataclass(frozen=True, slots=True)
class Faults:
    """Which fraction of API GETs misbehave, and how; rates are probabilities in [0, 1]."""

    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after: int = 1
    slow_rate: float = 0.0
    slow_seconds: float = 2.0
    malformed_rate: float = 0.0

    def __post_init__(self) -> None:
        # Checked here so that a bad PUT /_sim/faults is a 400, not a surprise later.
        rates = (self.error_rate, self.rate_limit_rate, self.slow_rate, self.malformed_rate)
        if not all(0.0 <= rate <= 1.0 for rate in rates):
            raise ValueError("fault rates must lie in [0, 1]")
        if self.retry_after < 0 or self.slow_seconds < 0:
            raise ValueError("retry_after and slow_seconds must not be negative")


def faults_from(fields: Mapping[str, Any] | None) -> Faults:
    """PUT semantics: the body replaces all faults, and omitted fields take their defaults."""
    if fields is None:
        raise TypeError("body must be a JSON object")
    if not all(type(value) in (int, float) for value in fields.values()):
        raise TypeError("fault fields take numbers")
    if type(fields.get("retry_after", 1)) is not int:
        raise TypeError("retry_after takes whole seconds")
    return Faults(**fields)


def malformed_session(body: bytes, kind: int) -> bytes:
    """The ways a 200 can still be unusable: cut short, mistyped, not an object, a
    gateway's message instead of a session, or a session document missing a field."""
    if kind == 0:
        return body[: len(body) // 2]
    payload = json.loads(body)
    if kind == 1:
        return json.dumps({**payload, "reviewRequired": "yes"}).encode()
    if kind == 2:
        return json.dumps([payload]).encode()
    if kind == 3:
        return b'{"message": "upstream request timeout"}'
    payload.pop("status")
    return json.dumps(payload).encode()

"""An OAuth 2.0 token endpoint's answer, read once; and when to ask for the next token.

The docs promise `access_token`, `expires_in` (3600 s, fixed, not sliding) and `expires_at`,
and no refresh token: the only way to keep a token is to ask for a new one before this one
expires. `expires_in` counts from the request, on our own clock, so a server clock ahead of
ours cannot make us late; `expires_at` is taken too when it is the earlier of the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.core.jwt_expiry import jwt_expiry

__all__ = ["Grant", "GrantError", "parse"]


class GrantError(ValueError):
    """The answer is not a usable grant; the message names the field, never its value."""


@dataclass(frozen=True, slots=True)
class Grant:
    token: str
    obtained_at: float
    """When the request that got it was sent (epoch seconds)."""
    expires_at: float

    def __repr__(self) -> str:  # a dataclass repr would print the token
        return f"Grant(obtained_at={self.obtained_at}, expires_at={self.expires_at})"

    @property
    def lifetime(self) -> float:
        return self.expires_at - self.obtained_at

    def renew_at(self, renew_before: float) -> float:
        """`renew_before` ahead of expiry, but never past half the lifetime: a short-lived
        token is renewed half-way, leaving the other half for retries."""
        return self.expires_at - min(renew_before, self.lifetime / 2)


def parse(body: Any, *, sent_at: float) -> Grant:
    """The grant in a decoded JSON answer to a request sent at `sent_at`."""
    if not isinstance(body, dict):
        raise GrantError("token endpoint answer is not a JSON object")
    token = body.get("access_token")
    if not isinstance(token, str) or not token.strip():
        raise GrantError("token endpoint answer has no access_token")
    ends = [t for t in (_after(body.get("expires_in"), sent_at), _instant(body)) if t is not None]
    expires_at = min(ends) if ends else jwt_expiry(token)
    if expires_at is None:
        raise GrantError("token endpoint answer has no expires_in, expires_at or exp claim")
    if expires_at <= sent_at:
        raise GrantError("token endpoint issued a token that has already expired")
    return Grant(token.strip(), sent_at, expires_at)


def _after(seconds: object, sent_at: float) -> float | None:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    return sent_at + float(seconds)


def _instant(body: dict[str, Any]) -> float | None:
    text = body.get("expires_at")
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.timestamp() if when.tzinfo is not None else None

"""Read a JWT's expiry without verifying it: it is the API's token, we only watch the date."""

from __future__ import annotations

import base64
import binascii
import json

__all__ = ["jwt_expiry"]


def jwt_expiry(token: str | None) -> float | None:
    """The `exp` claim as epoch seconds, or None when the token is not a JWT or has no exp."""
    if not token or token.count(".") != 2:
        return None
    segment = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        return None
    try:
        return float(exp)
    except OverflowError:
        return None

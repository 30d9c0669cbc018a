"""How an API call can fail, classified once: retryable or not, and what the poller does next."""

from __future__ import annotations

from typing import ClassVar

from monitor.core.poll import Outcome

__all__ = [
    "ApiError",
    "AuthFailed",
    "BadResponse",
    "NotFound",
    "RateLimited",
    "RequestRejected",
    "ServerError",
    "Unreachable",
]


class ApiError(Exception):
    """Base of every API failure. `outcome` is the polls_total label it counts under."""

    outcome: ClassVar[Outcome] = Outcome.ERROR
    retryable = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(ApiError):
    outcome = Outcome.NOT_FOUND


class AuthFailed(ApiError):
    """401/403: the token expired or was revoked; it is shared, so every session is affected."""

    outcome = Outcome.AUTH_FAILED


class RateLimited(ApiError):
    outcome = Outcome.RATE_LIMITED

    def __init__(self, message: str, *, status: int | None = 429, retry_after: float) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ServerError(ApiError):
    retryable = True


class Unreachable(ApiError):
    """Timeouts and connection errors: nothing (usable) came back."""

    retryable = True


class RequestRejected(ApiError):
    """Another 4xx: our request is wrong for this session; retrying at once would not help."""


class BadResponse(ApiError):
    """200 with a body we cannot use (too large, unreadable)."""

    outcome = Outcome.INVALID

"""Talking to the SmarterProctoring API."""

from monitor.api.client import ApiClient, ClientOptions
from monitor.api.errors import (
    ApiError,
    AuthFailed,
    BadResponse,
    NotFound,
    RateLimited,
    RequestRejected,
    ServerError,
    Unreachable,
)

__all__ = [
    "ApiClient",
    "ApiError",
    "AuthFailed",
    "BadResponse",
    "ClientOptions",
    "NotFound",
    "RateLimited",
    "RequestRejected",
    "ServerError",
    "Unreachable",
]

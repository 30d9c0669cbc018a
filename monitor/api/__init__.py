"""Talking to the SmarterProctoring API."""

from monitor.api.client import ApiClient, ClientOptions
from monitor.api.credentials import Header, OAuthOptions, OAuthToken, StaticToken
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
    "Header",
    "NotFound",
    "OAuthOptions",
    "OAuthToken",
    "RateLimited",
    "RequestRejected",
    "ServerError",
    "StaticToken",
    "Unreachable",
]

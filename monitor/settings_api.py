"""`api:` where the SmarterProctoring API is and how to reach it politely (timeouts, concurrency,
rate, retries), with which credentials: a token, a token file, or OAuth client credentials
(`settings_auth`). Reading the credentials' files gives one line per problem, never a value."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator

from monitor.settings_auth import AuthSettings, read_client_files
from monitor.settings_display import known_zone
from monitor.settings_files import read_setting_file
from monitor.settings_types import STRICT, Seconds

__all__ = ["DEFAULT_API_URL", "ApiSettings", "read_api_token"]

DEFAULT_API_URL = "https://api.smarterproctoring.com"


class ApiSettings(BaseModel):
    model_config = STRICT
    base_url: str = DEFAULT_API_URL
    """SmarterProctoring API root (the built-in simulator's URL for the demo)."""
    token: SecretStr | None = None
    """The API JWT. Prefer SPMON_API__TOKEN or token_file over writing it into the YAML."""
    token_file: Path | None = None
    """File holding the JWT (a mounted Kubernetes/Docker secret); read at start-up."""
    auth: AuthSettings = Field(default_factory=AuthSettings)
    """A static token (the two above) or OAuth client credentials, and the header to send."""
    timeout: Annotated[Seconds, Field(gt=0)] = 20.0
    """Total time budget of one request, connect included."""
    connect_timeout: Annotated[Seconds, Field(gt=0)] = 10.0
    concurrency: Annotated[int, Field(gt=0, le=1024)] = 32
    """Requests in flight at once."""
    rate_limit: Annotated[float, Field(gt=0)] = 5.0
    """Requests per second, all sessions together. The API publishes no limit: be polite."""
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    """Extra attempts inside one poll on 5xx, timeouts and connection errors."""
    auth_retry: Annotated[Seconds, Field(gt=0)] = 60.0
    """While the API rejects the token, one probe poll this often instead of every session."""
    naive_date_timezone: str | None = None
    """Zone to assume for API timestamps without an offset; unset rejects them as invalid."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("auth")
    @classmethod
    def _one_scheme(cls, value: AuthSettings, info: ValidationInfo) -> AuthSettings:
        if value.oauth and (info.data.get("token") or info.data.get("token_file")):
            raise ValueError("mode: oauth replaces api.token and api.token_file: remove them")
        return value

    @field_validator("naive_date_timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else known_zone(value)


def read_api_token(api: ApiSettings, base: Path) -> tuple[ApiSettings, list[str]]:
    """The API group with its credentials read (token file or OAuth client files, relative to
    the config's folder), and what is wrong with them: one line each, never the value."""
    if api.auth.oauth:
        auth, problems = read_client_files(api.auth, base)
        return api.model_copy(update={"auth": auth}), problems
    if api.token is None and api.token_file is not None:
        path, text, problem = read_setting_file(api.token_file, base, "api.token_file")
        if text is None:
            return api, [problem]
        api = api.model_copy(update={"token": SecretStr(text), "token_file": path})
    if api.token is not None and not api.token.get_secret_value().strip():
        return api, ["api.token: is empty"]
    if api.token is None and api.base_url == DEFAULT_API_URL:
        return api, ["api.token: required for the SmarterProctoring API (SPMON_API__TOKEN)"]
    return api, []

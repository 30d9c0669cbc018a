"""`http:` the listener of the status page, the JSON API, /metrics and the probes."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, Field, field_validator

from monitor.settings_display import known_zone
from monitor.settings_types import STRICT

__all__ = ["HttpSettings"]


class HttpSettings(BaseModel):
    model_config = STRICT
    listen: str = "127.0.0.1:10317"
    """host:port for the status page, /metrics, /healthz and /readyz; an empty string
    disables the server."""
    page_timezone: str | None = None
    """The old name of `display.timezone`, still read."""
    public_url: str | None = None
    """The status page as its readers reach it (a digest's "and N more" link)."""
    page_refresh: Annotated[int, Field(ge=0, le=3600)] = 30
    """Seconds between the status page's reloads of itself; 0 = never."""

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if value and not re.match(r"^\[?[\w.:-]*\]?:\d{1,5}$", value):
            raise ValueError("expected host:port, e.g. 0.0.0.0:10317")
        return value

    @field_validator("page_timezone")
    @classmethod
    def _page_zone(cls, value: str | None) -> str | None:
        return None if value is None else known_zone(value)

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104  # an empty host means all interfaces

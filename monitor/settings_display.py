"""How spmon shows things to people: the time zone of alerts, the console and the status page,
and the session link alerts carry when the API gives none."""

from __future__ import annotations

import re
import string
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, field_validator

from monitor.settings_types import STRICT

__all__ = ["LINK_FIELDS", "DisplaySettings", "known_zone"]

LINK_FIELDS: Final = frozenset({"install_sid", "exam_sid", "session_sid"})


def known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("unknown time zone") from exc
    return value


class DisplaySettings(BaseModel):
    model_config = STRICT
    timezone: str | None = None
    """IANA zone (America/Chicago) for times in alerts, the console and the status page; UTC
    when unset. `http.page_timezone`, its old name, is still read."""
    link_template: str | None = None
    """The session link when the API's `URL` is null, e.g.
    https://proctoring.example.com/sessions/{session_sid}; {install_sid} and {exam_sid} too."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else known_zone(value)

    @field_validator("link_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/\s{}]+", value):
            raise ValueError("expected an http(s) URL with a host, e.g. https://host/{session_sid}")
        try:
            names = {name for _, name, spec, conv in string.Formatter().parse(value) if name}
            specs = [
                (spec, conv) for _, name, spec, conv in string.Formatter().parse(value) if name
            ]
        except ValueError as exc:
            raise ValueError(f"not a template ({exc})") from None
        unknown = names - LINK_FIELDS
        if unknown or any(spec or conv for spec, conv in specs):
            raise ValueError("placeholders are {install_sid}, {exam_sid} and {session_sid} only")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone or "UTC")

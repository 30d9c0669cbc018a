"""Discovery's settings: which API lists name the sessions to watch, and how often to read them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from monitor.core.keys import ENROLLMENT_SID, EXAM_SID, INSTALL_SID
from monitor.settings_types import STRICT, Seconds

__all__ = ["DiscoverySettings"]


class DiscoverySettings(BaseModel):
    """One list to page through.

    `appointments` is the install-wide report ("List Appointments"); `enrollment_sessions` is
    one enrollment's sessions of one exam. Filters are passed through as given: the report's
    own parameters are not documented legibly, so spmon does not interpret them.
    """

    model_config = STRICT
    list: Literal["appointments", "enrollment_sessions"]
    install_sid: Annotated[str, Field(pattern=INSTALL_SID.pattern)]
    enrollment_sid: Annotated[str, Field(pattern=ENROLLMENT_SID.pattern)] | None = None
    exam_sid: Annotated[str, Field(pattern=EXAM_SID.pattern)] | None = None
    status: tuple[str, ...] = ()
    """`status[]` values (enrollment_sessions only); none means every status."""
    include_active: bool = True
    """`includeActive` (enrollment_sessions only): in-progress sessions too. The API's default
    is false; spmon's is true, since a session in progress is the one most worth watching."""
    params: dict[str, str] = Field(default_factory=dict)
    """Other query parameters, passed through (e.g. the report's date filters)."""
    interval: Annotated[Seconds, Field(ge=60)] = 900.0
    """How often to read the list: the API guide advises 15–30 minutes for install reports."""
    page_size: Annotated[int, Field(ge=1, le=1000)] = 100

    @model_validator(mode="after")
    def _scope(self) -> DiscoverySettings:
        per_enrollment = self.list == "enrollment_sessions"
        if per_enrollment and (self.enrollment_sid is None or self.exam_sid is None):
            raise ValueError("enrollment_sessions needs enrollment_sid and exam_sid")
        if not per_enrollment and (self.enrollment_sid or self.exam_sid or self.status):
            raise ValueError("appointments takes no enrollment_sid, exam_sid or status")
        return self

    @property
    def name(self) -> str:
        if self.list == "enrollment_sessions":
            return f"discovery:enrollment_sessions:{self.enrollment_sid}:{self.exam_sid}"
        return f"discovery:appointments:{self.install_sid}"

"""How often sessions are polled: a fixed interval when one is set, else by lifecycle phase."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, Field, model_validator

from monitor.core import phase
from monitor.settings_types import STRICT, Seconds

__all__ = ["PhaseSettings", "PollSettings"]

_D = phase.DEFAULT
Positive = Annotated[Seconds, Field(gt=0)]


class PhaseSettings(BaseModel):
    """Seconds between polls in each lifecycle phase (`monitor.core.phase`)."""

    model_config = STRICT
    live: Positive = _D.live
    """In progress, incident, or the appointment within `live_window`."""
    awaiting_review: Positive = _D.awaiting_review
    """Review required, not done; the review deadline keeps its exact wake-up besides."""
    processing: Positive = _D.processing
    """Status Processing (the recording is being processed; a review may be required next)."""
    scheduled: Positive = _D.scheduled
    """Booked, appointment further off than `live_window` (or a status spmon does not know)."""
    settled: Positive = _D.settled
    """Closed, cancelled or denied, and the review done or never required."""
    retire_after: Positive = _D.retire_after
    """Settled this long, a session is no longer polled (its history stays in the store)."""
    live_window: Annotated[Seconds, Field(ge=0)] = _D.live_window
    """An appointment this close, before or after, makes the session live."""

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        self.intervals()  # raises ValueError naming the rule: faster phases never poll slower
        return self

    def intervals(self) -> phase.Intervals:
        return phase.Intervals(**self.model_dump())


class PollSettings(BaseModel):
    model_config = STRICT
    interval: Positive = 60.0
    """Set, every session is polled at this fixed interval, as before phases (a watch's own
    `interval` still wins, and settled sessions still retire). Left unset, each session's
    interval follows its phase (`poll.phases`)."""
    jitter: Annotated[float, Field(ge=0, le=0.5)] = 0.1
    """Each interval is stretched or shrunk by up to this fraction, so polls stay spread."""
    phases: PhaseSettings = Field(default_factory=PhaseSettings)

    @property
    def fixed(self) -> float | None:
        """The fixed interval when one was set (in the YAML or SPMON_POLL__INTERVAL)."""
        return self.interval if "interval" in self.model_fields_set else None

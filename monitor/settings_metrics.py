"""`metrics:` what the exposition adds beyond the fixed series: reviews by watch label."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, field_validator

from monitor.settings_types import STRICT

__all__ = ["MetricsSettings"]

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
RESERVED = frozenset({"job", "instance", "le", "quantile"})
"""Prometheus sets job and instance on every scraped series (ours would be renamed
exported_*); le and quantile belong to histograms and summaries."""


def _label_name(name: str) -> str:
    if not _LABEL_NAME.fullmatch(name):
        raise ValueError("must be a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)")
    if name.startswith("__"):
        raise ValueError("names starting with __ are reserved by Prometheus")
    if name in RESERVED:
        raise ValueError(f"{name} is reserved ({', '.join(sorted(RESERVED))} are)")
    return name


class MetricsSettings(BaseModel):
    model_config = STRICT
    by_labels: Annotated[list[Annotated[str, AfterValidator(_label_name)]], Field(max_length=3)] = (
        Field(default_factory=list)
    )
    """Watch labels (e.g. [course]) to split spmon_reviews_pending/_overdue by, as the gauges
    spmon_reviews_{pending,overdue}_by_label; empty: no such series. A watch without the label
    counts as "none"."""
    label_values_max: Annotated[int, Field(ge=1, le=1000)] = 50
    """Distinct values per label with a series of their own (first come, kept until restart);
    later ones count as "other". Series: at most (this + 2) per label, multiplied."""

    @field_validator("by_labels")
    @classmethod
    def _unique(cls, names: list[str]) -> list[str]:
        if len(names) != len(set(names)):
            raise ValueError("each label may be listed once")
        return names

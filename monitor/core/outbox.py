"""An outbox row's life: pending until a sink took it or it was given up on."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = ["SETTLED", "OutboxState"]


class OutboxState(StrEnum):
    """An outbox row's state, as the `state` column and `spmon outbox --state` spell it."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    """Given up on (attempts spent, or rejected); `spmon outbox retry` makes it pending again."""


SETTLED: Final = (OutboxState.DELIVERED, OutboxState.DEAD)
"""The final states, whose rows may be purged after the retention."""

"""A breaker over one dependency that every poll shares (the API, or the token it checks).

Closed, it counts results in a row that show the dependency failing. At `threshold` it opens:
then one probe at a time may go, each after a cooldown that doubles from `base` up to `cap`
(full jitter), and the first result that shows the dependency working closes it. Results that
say nothing either way (a bad body, a 429) neither count nor reset.

Pure: times are passed in as `now`, randomness as `u` in [0, 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

__all__ = ["Breaker", "Policy", "Transition", "Verdict"]


class Verdict(StrEnum):
    """What one poll's result says about the dependency."""

    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Policy:
    threshold: int = 5
    """DOWN results in a row that open the breaker."""
    base: float = 1.0
    """Cooldown before the first probe."""
    cap: float = 30.0
    """Longest cooldown, however many probes failed."""
    jitter: float = 1.0
    """1 is full jitter (uniform in (0, ceiling]); 0 waits exactly the ceiling."""

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise ValueError("threshold must be at least 1")
        if not 0.0 < self.base <= self.cap:
            raise ValueError("cooldowns must satisfy 0 < base <= cap")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must lie in [0, 1]")

    def cooldown(self, failed_probes: int, u: float) -> float:
        """Seconds before the next probe after `failed_probes` failed ones; never 0."""
        ceiling = min(self.cap, self.base * 2.0 ** min(failed_probes, 32))
        # Full jitter can draw a gap of 1e-16 s, which vanishes when added to an epoch time:
        # the probe would be due at the instant of the failure that scheduled it.
        return max(ceiling * (1.0 - self.jitter * u), min(ceiling, MIN_COOLDOWN))


MIN_COOLDOWN = 1e-4
"""Seconds: the shortest gap between probes, well above an epoch float's resolution (2e-7 s)."""


class Transition(NamedTuple):
    opened: bool
    """True: this result opened the breaker; False: it closed it."""
    outage: float
    """When closing, how long the breaker was open (0.0 when opening)."""


class Breaker:
    """`record()` each result; while `is_open`, send a probe only when `may_probe(now)`, and
    call `start_probe(now)` as it goes."""

    __slots__ = ("_failed_probes", "_opened_at", "_probe_at", "_probing", "_streak", "policy")

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._streak = 0
        self._opened_at: float | None = None
        self._probe_at = 0.0
        self._failed_probes = 0
        self._probing = False

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"Breaker({state}, streak={self._streak}, probe_at={self._probe_at})"

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    @property
    def opened_at(self) -> float | None:
        return self._opened_at

    @property
    def probing(self) -> bool:
        return self._probing

    def next_probe(self) -> float | None:
        """When the next probe may start; None while closed or while a probe is out."""
        if self._opened_at is None or self._probing:
            return None
        return self._probe_at

    def may_probe(self, now: float) -> bool:
        return self._opened_at is not None and not self._probing and now >= self._probe_at

    def start_probe(self, now: float) -> None:
        if not self.may_probe(now):
            raise RuntimeError("no probe is due")
        self._probing = True

    def trip(self, now: float) -> bool:
        """Open at once with a probe due now (state restored from before a restart); True
        when it was closed."""
        if self._opened_at is not None:
            return False
        self._open(now, now)
        return True

    def record(self, verdict: Verdict, now: float, u: float) -> Transition | None:
        """Count one result; the transition it caused, if any."""
        if verdict is Verdict.UP:
            return self._up(now)
        if self._opened_at is None:
            if verdict is Verdict.DOWN:
                self._streak += 1
                if self._streak >= self.policy.threshold:
                    self._open(now, now + self.policy.cooldown(0, u))
                    return Transition(opened=True, outage=0.0)
            return None
        if self._probing:
            # Only the probe's own result moves the cooldown: polls that were already in
            # flight when it opened belong to the same outage, not to a longer one.
            self._probing = False
            if verdict is Verdict.DOWN:
                self._failed_probes += 1
            self._probe_at = now + self.policy.cooldown(self._failed_probes, u)
        return None

    def _open(self, now: float, probe_at: float) -> None:
        self._opened_at = now
        self._probe_at = probe_at
        self._failed_probes = 0
        self._probing = False

    def _up(self, now: float) -> Transition | None:
        self._streak = 0
        opened_at = self._opened_at
        if opened_at is None:
            return None
        self._opened_at = None
        self._probing = False
        return Transition(opened=False, outage=max(0.0, now - opened_at))

"""Which exam session a record is about, and what a valid SID looks like."""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["ENROLLMENT_SID", "EXAM_SID", "INSTALL_SID", "SESSION_SID", "SessionKey"]

INSTALL_SID = re.compile(r"^AI[a-f0-9]{32}$")
EXAM_SID = re.compile(r"^EX[a-f0-9]{32}$")
SESSION_SID = re.compile(r"^ES[a-f0-9]{32}$")
ENROLLMENT_SID = re.compile(r"^EN[a-f0-9]{32}$")


class SessionKey(NamedTuple):
    """The three SIDs that address one session in the API.

    A NamedTuple rather than a dataclass: 100,000 of them sit in the index and the heap, and
    tuples are the smallest hashable record Python has.
    """

    install_sid: str
    exam_sid: str
    session_sid: str

    @property
    def path(self) -> str:
        return f"/v1/installs/{self.install_sid}/exams/{self.exam_sid}/sessions/{self.session_sid}"

    def problems(self) -> list[str]:
        """Which SIDs do not match their published pattern (empty when the key is valid)."""
        checks = (
            ("install_sid", INSTALL_SID, self.install_sid),
            ("exam_sid", EXAM_SID, self.exam_sid),
            ("session_sid", SESSION_SID, self.session_sid),
        )
        return [
            f"{name} must match {rx.pattern}"
            for name, rx, value in checks
            if not rx.fullmatch(value)
        ]

"""The simulator's session set: which sessions exist, what tests pinned, and each one's truth.

The session GET and both list endpoints read one document function, so a list row and the
session it names agree at any instant. Sessions are only ever appended (removal marks them), so
an index names one session for good and pagination over a changing set cannot fail.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Final

from monitor.core.keys import SessionKey
from monitor.sim_sessions import STATIC, STATIC_TAIL, State, enrollment_sid, fields_at, state_at

__all__ = ["Catalog", "EnrollmentExam"]

EnrollmentExam = tuple[str, str, str]
"""(install sid, enrollment sid, exam sid): the scope of one enrollment session list."""

_ENROLLMENT: Final = "enrollmentSid"


class Catalog:
    """Sessions by index; documents are computed on demand from (seed, index, instant)."""

    def __init__(
        self,
        keys: Sequence[SessionKey],
        *,
        seed: int,
        evolve: bool,
        change_every: float,
        clock: Callable[[], float],
    ) -> None:
        self.keys: list[SessionKey] = list(keys)
        self.seed = seed
        self.evolve = evolve
        self.change_every = change_every
        self._clock = clock
        self._frozen_at = clock()  # the baseline instant when evolve=False
        self._index = {key: index for index, key in enumerate(self.keys)}
        self._pinned: dict[int, float] = {}
        self._overrides: dict[int, dict[str, object]] = {}
        self._enrollments: dict[int, str] = {}
        self._removed: set[int] = set()
        # Built on the first list request only: a simulator nobody lists pays nothing.
        self._by_install: dict[str, list[int]] | None = None
        self._by_enrollment: dict[EnrollmentExam, list[int]] | None = None

    def add(self, key: SessionKey, *, enrollment: str | None = None) -> int:
        """Append a session (optionally in a given enrollment, e.g. a retake); its index."""
        if key in self._index:
            raise ValueError(f"session {key!r} exists already")
        index = len(self.keys)
        self.keys.append(key)
        self._index[key] = index
        if enrollment is not None:
            self._enrollments[index] = enrollment
        if self._by_install is not None:
            self._by_install.setdefault(key.install_sid, []).append(index)
        self._by_enrollment = None  # rare enough to rebuild on the next enrollment list
        return index

    def remove(self, key: SessionKey) -> None:
        self._removed.add(self.lookup(key))

    def lookup(self, key: SessionKey) -> int:
        try:
            return self._index[key]
        except KeyError:
            raise KeyError(f"unknown session {key!r}") from None

    def live(self, key: SessionKey) -> int | None:
        """The session's index, or None when GET would answer 404."""
        index = self._index.get(key)
        return None if index is None or index in self._removed else index

    def override(self, index: int, fields: dict[str, object], now: float) -> None:
        json.dumps(fields)  # fail here, in the caller's stack, on values JSON cannot carry
        self._pinned.setdefault(index, now)
        self._overrides.setdefault(index, {}).update(fields)
        if _ENROLLMENT in fields:
            self._by_enrollment = None

    def now(self) -> float:
        """The instant an unpinned session is shown at; read once per request."""
        return self._clock() if self.evolve else self._frozen_at

    def document(self, index: int, now: float) -> dict[str, object]:
        return {**self._fields(index, now), **STATIC, **self._overrides.get(index, {})}

    def body(self, index: int, now: float) -> bytes:
        """Splice the per-session JSON onto the shared static tail instead of re-encoding it."""
        if index in self._overrides:
            return json.dumps(self.document(index, now)).encode()
        return (json.dumps(self._fields(index, now))[:-1] + STATIC_TAIL).encode()

    def state(self, index: int, now: float) -> State:
        """The fields the lists filter on, without building a whole document."""
        if index not in self._overrides:
            return state_at(self.seed, index, now, self.change_every)
        document = self.document(index, now)
        return State(
            document["status"], document["reviewRequired"] is True, document["reviewed"] is True
        )

    def in_install(self, install_sid: str) -> list[int]:
        """Live sessions of the install, oldest first."""
        if self._by_install is None:
            self._by_install = {}
            for index, key in enumerate(self.keys):
                self._by_install.setdefault(key.install_sid, []).append(index)
        return self._alive(self._by_install.get(install_sid, ()))

    def in_enrollment(self, scope: EnrollmentExam) -> list[int]:
        """Live sessions of one enrollment for one exam, oldest first."""
        if self._by_enrollment is None:
            self._by_enrollment = {}
            for index, key in enumerate(self.keys):
                found = (key.install_sid, self.enrollment_of(index), key.exam_sid)
                self._by_enrollment.setdefault(found, []).append(index)
        return self._alive(self._by_enrollment.get(scope, ()))

    def enrollment_of(self, index: int) -> str:
        pinned = self._overrides.get(index, {}).get(_ENROLLMENT)
        if isinstance(pinned, str):
            return pinned
        given = self._enrollments.get(index)
        return given or enrollment_sid(self.seed, index, self.keys[index])

    def _fields(self, index: int, now: float) -> dict[str, object]:
        """Identity and lifecycle fields: the part of the payload that differs per session."""
        shown = self._pinned.get(index, now)
        fields = fields_at(self.seed, index, self.keys[index], shown, self.change_every)
        given = self._enrollments.get(index)
        if given is not None:
            fields.update(enrollmentSid=given, userSid="US" + given[2:][::-1])
        return fields

    def _alive(self, indices: Sequence[int]) -> list[int]:
        return [index for index in indices if index not in self._removed]

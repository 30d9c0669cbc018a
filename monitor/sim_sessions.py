"""The simulator's sessions: each document is a pure function of (seed, index, key, instant).

A session cycles through epochs (booking, exam, review); where `now` falls in its epoch picks its
status, dates and review state, so nothing is stored and a fake clock moves every session.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import time
from collections.abc import Mapping
from typing import Final, NamedTuple

from monitor.core.keys import SessionKey

__all__ = ["STATIC", "STATIC_TAIL", "State", "enrollment_sid", "fields_at", "state_at"]

# Milestones of one lifecycle epoch, as fractions of the session's period.
_APPROVED: Final = 0.10
_CHECK_IN: Final = 0.15
_STARTED: Final = 0.20
_PROCESSING: Final = 0.30
_CLOSED: Final = 0.40
_REVIEWED: Final = 0.50
_DUE: Final = 0.60

# Weighted: most sessions just wait for a proctor, a few hit an incident or a denial.
_ACTIVE_STATUSES: Final = ("Needs Proctor", "Needs Proctor", "Incident", "Approval Denied")
_STATUS_REASONS: Final[Mapping[str, str]] = {
    "Incident": "Second person detected in the room",
    "Approval Denied": "Requested time is outside the exam availability window",
}
_MASK64: Final = (1 << 64) - 1

# A student may sit one exam more than once (a retake), so an enrollment's session list for an
# exam holds a few sessions rather than always exactly one.
_SESSIONS_PER_ENROLLMENT: Final = 3
_SUBJECTS: Final = (
    ("MATH", "Linear Algebra"),
    ("BIO", "Cell Biology"),
    ("CHEM", "Organic Chemistry"),
    ("HIST", "Modern Europe"),
    ("PHYS", "Classical Mechanics"),
    ("ECON", "Microeconomics"),
    ("CS", "Data Structures"),
    ("STAT", "Probability"),
)
_EXAM_KINDS: Final = ("Midterm", "Final", "Quiz 1", "Quiz 2", "Practice Exam")


def fields_at(
    seed: int, index: int, key: SessionKey, now: float, change_every: float
) -> dict[str, object]:
    """The per-session fields of session `index` at `now` (STATIC holds the shared ones)."""
    epoch = _epoch(seed, index, now, change_every)
    return {**_identity(seed, index, key), **_lifecycle(epoch)}


class State(NamedTuple):
    """What the list endpoints filter on; equal to those fields of fields_at() at that instant."""

    status: object  # a test's override may put any JSON value here
    review_required: bool
    reviewed: bool


def state_at(seed: int, index: int, now: float, change_every: float) -> State:
    """The filterable part of fields_at(), without building the document (lists scan many)."""
    epoch = _epoch(seed, index, now, change_every)
    return State(_status(epoch), *_review_flags(epoch))


def enrollment_sid(seed: int, index: int, key: SessionKey) -> str:
    """The derived enrollment: neighbouring sessions of one exam share one, as retakes do."""
    group = _mix(seed, index // _SESSIONS_PER_ENROLLMENT, _sid_bits(key.exam_sid))
    return f"EN{_mix(group, 1):016x}{_mix(group, 2):016x}"


class _Epoch(NamedTuple):
    """One turn of a session's lifecycle: from booking, through the exam, to its review."""

    start: float  # the instant the epoch began
    period: float  # seconds per epoch for this session
    age: float  # fraction of the period elapsed, in [0, 1)
    draw: int  # 64 random bits, fixed for this session in this epoch

    def instant(self, fraction: float) -> str:
        return _iso(self.start + fraction * self.period)

    def reached(self, fraction: float) -> str | None:
        """The milestone's date once it has happened; None while it still lies ahead."""
        return self.instant(fraction) if self.age >= fraction else None


def _epoch(seed: int, index: int, now: float, change_every: float) -> _Epoch:
    """Where `now` falls in this session's cycle; periods and phases differ per session."""
    bits = _mix(seed, index)
    period = change_every * (0.75 + (bits & 0xFF) / 512)
    phase = (bits >> 8 & 0xFFFFFF) / 0x1000000
    shifted = now / period + phase
    number = math.floor(shifted)
    return _Epoch((number - phase) * period, period, shifted - number, _mix(seed, index, number))


def _lifecycle(epoch: _Epoch) -> dict[str, object]:
    return {"status": _status(epoch), **_dates(epoch), **_review(epoch)}


def _status(epoch: _Epoch) -> str:
    if epoch.age < _APPROVED:
        return "Pending Approval"
    if epoch.age < _STARTED:
        return "Scheduled"
    if epoch.age < _PROCESSING:
        return _ACTIVE_STATUSES[epoch.draw & 3]
    return "Processing" if epoch.age < _CLOSED else "Closed"


def _dates(epoch: _Epoch) -> dict[str, object]:
    active = _ACTIVE_STATUSES[epoch.draw & 3] if epoch.age >= _STARTED else None
    return {
        "statusReason": _STATUS_REASONS.get(_status(epoch)),
        "createdDate": epoch.instant(0.0),
        "dateApproved": epoch.reached(_APPROVED),
        "dateScheduled": epoch.reached(_APPROVED),
        "appointmentDate": epoch.instant(_STARTED),
        "appointmentEndDate": epoch.instant(_CLOSED),
        "systemCheckStartDate": epoch.reached(_CHECK_IN),
        "systemCheckEndDate": epoch.reached(_STARTED),
        "inProgressDate": epoch.reached(_STARTED),
        "recordingStartDate": epoch.reached(_STARTED),
        "sessionReportCount": 1 if active == "Incident" else 0,
    }


def _review(epoch: _Epoch) -> dict[str, object]:
    required, reviewed = _review_flags(epoch)
    reviewer = f"US{_mix(epoch.draw, 1):016x}{_mix(epoch.draw, 2):016x}"
    return {
        "editDate": epoch.instant(_last_milestone(epoch.age, reviewed=reviewed)),
        "auditStatus": ("Complete" if reviewed else "Pending") if required else None,
        "reviewRequired": required,
        "reviewByDate": epoch.instant(_DUE) if required else None,
        "reviewed": reviewed,
        "reviewCompletedDate": epoch.instant(_REVIEWED) if reviewed else None,
        "reviewByUserSid": reviewer if reviewed else None,
    }


def _review_flags(epoch: _Epoch) -> tuple[bool, bool]:
    """Most closed sessions need a review; half get it before the deadline, half go overdue."""
    required = epoch.age >= _CLOSED and (epoch.draw >> 2) % 5 != 0
    return required, required and bool(epoch.draw >> 8 & 1) and epoch.age >= _REVIEWED


def _last_milestone(age: float, *, reviewed: bool) -> float:
    """When the session last changed, so editDate moves exactly when the payload does."""
    steps = (0.0, _APPROVED, _STARTED, _PROCESSING, _CLOSED, _REVIEWED if reviewed else 0.0)
    return max(step for step in steps if step <= age)


def _identity(seed: int, index: int, key: SessionKey) -> dict[str, object]:
    """SIDs, names and links that belong to the session for good; the sids echo the request."""
    high, low = _mix(seed, index, 1), _mix(seed, index, 2)
    enrollment = enrollment_sid(seed, index, key)
    title, course = _exam_names(seed, key.exam_sid)
    return {
        "sid": key.session_sid,
        "installSid": key.install_sid,
        "examSid": key.exam_sid,
        "enrollmentSid": enrollment,
        "userSid": "US" + enrollment[2:][::-1],  # one student per enrollment
        "courseSid": "CO" + key.exam_sid[2:],  # one course per exam, like a real LMS
        # The session document carries these as strings (session.schema.json); the
        # appointments report nests the same values as exam {title, courseName}.
        "exam": title,
        "course": course,
        "accessKey": f"{high >> 16:012X}",
        "externalAppointmentId": f"apt-{low % 10**9:09d}",
        "URL": f"https://proctoring.example.com/sessions/{key.session_sid}",
    }


@functools.lru_cache(maxsize=4096)  # a few hundred exams serve 100,000 sessions
def _exam_names(seed: int, exam_sid: str) -> tuple[str, str]:
    """(exam title, course name), the same for every session of the exam."""
    bits = _mix(seed, _sid_bits(exam_sid))
    code, name = _SUBJECTS[bits % len(_SUBJECTS)]
    number = 100 + (bits >> 8) % 300
    kind = _EXAM_KINDS[(bits >> 20) % len(_EXAM_KINDS)]
    return f"{code} {number} {kind}", f"{code} {number}: {name} (Fall 2026)"


@functools.lru_cache(maxsize=4096)
def _sid_bits(sid: str) -> int:
    # A digest, not int(sid[2:], 16): keys handed to the simulator need not be valid SIDs.
    return int.from_bytes(hashlib.blake2b(sid.encode(), digest_size=8).digest())


def _constant_sid(prefix: str, name: str) -> str:
    return prefix + hashlib.blake2b(name.encode(), digest_size=16).hexdigest()


# Fields every session shares: encoded once at import and spliced onto each response body.
STATIC: Final[dict[str, object]] = {
    "instructorProctorSid": None,
    "proctorTypeSid": _constant_sid("PT", "automated-with-review"),
    "cancellationPolicySid": _constant_sid("CP", "standard-24h"),
    "cancellationPolicyVersionSid": _constant_sid("CV", "standard-24h-v3"),
    "duration": 120,
    "sessionType": "Remote",
    "schedulingModule": "OnDemand",
    "proctorReviewProcessSid": _constant_sid("PR", "instructor-review"),
    "workflowModule": "AutomatedReview",
    "externalReservedAppointmentId": None,
    "externalReservedAppointmentExpires": None,
    "externalAppointmentSyncDate": None,
    "notes": (
        "Calculator and one page of handwritten notes allowed. Show both sides of the notes "
        "page to the camera before starting. No bathroom breaks."
    ),
    "account": "Example University",
    "install": "Example University - Canvas (production)",
    "deployment": "us-east-1",
    "series": None,
    "reviewCompleteNotificationUrl": "https://lms.example.edu/api/proctoring/review-complete",
    "proctorGroups": "Evening proctors, Overflow",
    "examLocale": "en-US",
    "platformVersion": "2026.11.3",
    "modalityOptions": "webcam;microphone;screen-share;room-scan",
    "enrollment": "Fall 2026, Section 003, Student",
    "examFile": None,
    "returnedFile": None,
    "photos": "id-front.jpg;face.jpg",
    "sessionInfo": "Chrome 142 on Windows 11; 1920x1080; upload 18 Mbit/s; webcam 720p",
    "examConfiguration": (
        "allowCalculator=true; allowNotes=true; allowBathroomBreak=false; secureBrowser=required"
    ),
    "proctor": "Automated proctoring with instructor review",
    "location": "Remote",
    "appointment": "Remote appointment booked through the LMS scheduler",
    "messagingConfirmations": ["email:scheduled", "sms:reminder-24h", "email:reminder-1h"],
    "automated": "faceDetection=on; multipleFaces=flag; phoneDetection=flag; audioAnomaly=flag",
    "interoadsProvisionedExamUrl": None,
    "proctorGroupSid": _constant_sid("PG", "evening-proctors"),
    "mandatoryRoomScanVideo": True,
    "mutedAnnotations": None,
}
STATIC_TAIL: Final = ", " + json.dumps(STATIC)[1:]


def _mix(*parts: int) -> int:
    """SplitMix64 over the parts: cheap, stable across runs, unlike hash() of a tuple."""
    state = 0x9E3779B97F4A7C15
    for part in parts:
        state = ((state ^ (part & _MASK64)) * 0xBF58476D1CE4E5B9) & _MASK64
        state = ((state ^ (state >> 31)) * 0x94D049BB133111EB) & _MASK64
        state ^= state >> 29
    return state


def _iso(instant: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(instant))

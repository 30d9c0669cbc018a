"""Raw API body → Snapshot, or a ParseProblem that names what was wrong.

The pydantic model is tolerant where the API is open (every field nullable, unknown fields
kept, detail blobs of any JSON shape) and strict where a wrong type would mislead us:
`"reviewRequired": "yes"` is a problem, not `True`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from monitor.core.keys import SessionKey
from monitor.core.snapshot import Snapshot

__all__ = ["ParseProblem", "SessionPayload", "parse", "parse_instant"]

# The docs call these "details" and type them as strings; real deployments send objects.
# We never read them, so any JSON shape is accepted rather than failing every poll.
Blob = Any


class SessionPayload(BaseModel):
    """Response body of "Exam Session Details" (session.schema.json)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True, populate_by_name=True)

    sid: str | None = None
    installSid: str | None = None
    examSid: str | None = None
    enrollmentSid: str | None = None
    userSid: str | None = None
    courseSid: str | None = None
    instructorProctorSid: str | None = None
    proctorTypeSid: str | None = None
    cancellationPolicySid: str | None = None
    cancellationPolicyVersionSid: str | None = None
    status: str | None = None
    statusReason: str | None = None
    accessKey: str | None = None
    duration: float | None = None
    sessionType: str | None = None
    schedulingModule: str | None = None
    proctorReviewProcessSid: str | None = None
    workflowModule: str | None = None
    appointmentDate: str | None = None
    appointmentEndDate: str | None = None
    dateApproved: str | None = None
    dateScheduled: str | None = None
    createdDate: str | None = None
    inProgressDate: str | None = None
    externalAppointmentId: str | None = None
    externalReservedAppointmentId: str | None = None
    externalReservedAppointmentExpires: str | None = None
    externalAppointmentSyncDate: str | None = None
    editDate: str | None = None
    notes: str | None = None
    recordingStartDate: str | None = None
    account: Blob = None
    install: Blob = None
    deployment: Blob = None
    sessionReportCount: float | None = None
    series: Blob = None
    reviewByDate: str | None = None
    reviewByUserSid: str | None = None
    reviewCompletedDate: str | None = None
    reviewRequired: bool | None = None
    reviewCompleteNotificationUrl: str | None = None
    reviewed: bool | None = None
    proctorGroups: Blob = None
    url: str | None = Field(default=None, alias="URL")
    examLocale: str | None = None
    platformVersion: str | None = None
    systemCheckStartDate: str | None = None
    systemCheckEndDate: str | None = None
    modalityOptions: Blob = None
    exam: Blob = None
    enrollment: Blob = None
    course: Blob = None
    examFile: Blob = None
    returnedFile: Blob = None
    photos: Blob = None
    sessionInfo: Blob = None
    auditStatus: str | None = None
    examConfiguration: Blob = None
    proctor: Blob = None
    location: Blob = None
    appointment: Blob = None
    messagingConfirmations: list[Blob] | None = None
    automated: Blob = None
    interoadsProvisionedExamUrl: str | None = None
    proctorGroupSid: str | None = None
    mandatoryRoomScanVideo: bool | None = None
    mutedAnnotations: Blob = None


@dataclass(frozen=True, slots=True)
class ParseProblem:
    """Why a body could not become a Snapshot; `field` is the API name when one is to blame."""

    reason: str
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


def parse(
    body: bytes | str, key: SessionKey, *, naive_tz: tzinfo | None = None
) -> Snapshot | ParseProblem:
    """Validate one response body for `key`. Naive timestamps are rejected unless `naive_tz` says
    which zone the API meant: guessing would move every deadline by the UTC offset."""
    try:
        payload = SessionPayload.model_validate_json(body)
    except pydantic.ValidationError as exc:
        return _problem_from(exc)
    echoed = _echo_problem(payload, key)
    if echoed is not None:
        return echoed
    review_by = parse_instant(payload.reviewByDate, naive_tz=naive_tz)
    if isinstance(review_by, ParseProblem):
        return ParseProblem(review_by.reason, "reviewByDate")
    return Snapshot(
        # A handful of statuses across 100,000 sessions: keep one copy of each string.
        status=sys.intern(payload.status) if payload.status else payload.status,
        review_required=payload.reviewRequired,
        reviewed=payload.reviewed,
        review_by_date=review_by,
        url=payload.url,
    )


def parse_instant(
    value: str | None, *, naive_tz: tzinfo | None = None
) -> datetime | ParseProblem | None:
    """ISO 8601 text → aware UTC datetime (None stays None)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return ParseProblem("not an ISO 8601 date-time")
    if parsed.tzinfo is None:
        if naive_tz is None:
            return ParseProblem("date-time has no timezone (set api.naive_date_timezone)")
        parsed = parsed.replace(tzinfo=naive_tz)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. year 9999 at a negative offset: not a real deadline
        return ParseProblem("date-time is out of range")


def _problem_from(exc: pydantic.ValidationError) -> ParseProblem:
    first = exc.errors(include_input=False, include_url=False)[0]
    loc = ".".join(str(part) for part in first["loc"])
    if first["type"] in {"json_invalid", "model_type"}:
        return ParseProblem(f"body is not a JSON object ({first['msg']})")
    return ParseProblem(first["msg"], loc or None)


def _echo_problem(payload: SessionPayload, key: SessionKey) -> ParseProblem | None:
    # A body for another session must never overwrite this one's snapshot.
    for field, expected in (
        ("sid", key.session_sid),
        ("installSid", key.install_sid),
        ("examSid", key.exam_sid),
    ):
        value = getattr(payload, field)
        if value is not None and value != expected:
            return ParseProblem(f"names another session ({value!r})", field)
    return None

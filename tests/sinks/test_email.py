"""The e-mail sink against a real SMTP server on 127.0.0.1 (aiosmtpd): plain, STARTTLS with a
self-signed certificate and AUTH, scripted 4xx/5xx answers, and the dispatcher's retry and
dead-letter rules applied to them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, tzinfo
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from structlog.typing import EventDict

from monitor import wiring
from monitor.core import digest, messages
from monitor.core.backoff import Schedule
from monitor.core.events import EventType
from monitor.settings_sinks import SinkSettings
from monitor.sinks import Delivered, EmailSink, Limits, Rejected, RetryLater, SmtpOptions
from monitor.sinks.email import classify_reply
from tests.conftest import assert_no_secrets
from tests.sinks.sinkkit import bound_socket, make_event, running
from tests.sinks.smtpkit import Mailbox, self_signed, smtp_server
from tests.test_dispatcher import rows_of, until

SENT_AT = datetime(2026, 11, 18, 9, 0, tzinfo=UTC).timestamp()
"""When the test mails go: an hour after make_event's deadline."""
FAST = Schedule((0.0, 0.05, 0.05), jitter=0.0)


def sink(port: int, *, zone: tzinfo | None = None, **options: object) -> EmailSink:
    chosen = {
        "host": "127.0.0.1",
        "port": port,
        "sender": "spmon@example.edu",
        "to": ("coordinators@example.edu", "oncall@example.edu"),
        "tls": "none",
        "allow_private": True,
        "timeout": 5.0,
        **options,
    }
    limits = Limits(concurrency=1, schedule=FAST, breaker_failures=50)
    zoned = {"zone": zone} if zone is not None else {}  # None: the sink's default
    return EmailSink("mail", options=SmtpOptions(**chosen), limits=limits, **zoned)  # type: ignore[arg-type]


async def send(target: EmailSink, kind: EventType = EventType.REVIEW_OVERDUE) -> object:
    try:
        return await target.deliver(make_event(1, 1, kind=kind), b"{}", now=time.time())
    finally:
        await target.aclose()


async def test_a_plain_message_with_text_html_and_the_event_id_as_message_id() -> None:
    with smtp_server(Mailbox()) as box:
        event = make_event(1, 1, kind=EventType.REVIEW_OVERDUE)
        target = sink(box.port)
        try:
            assert await target.deliver(event, b"{}", now=SENT_AT) == Delivered()
        finally:
            await target.aclose()
    (msg,) = box.messages
    assert box.envelopes == [
        ("spmon@example.edu", ["coordinators@example.edu", "oncall@example.edu"])
    ]
    assert msg["Subject"] == "[spmon] Review overdue: course=BIO101"
    assert msg["Message-ID"] == messages.message_id(event.id, "example.edu")
    assert msg["X-Spmon-Event-Id"] == event.id
    assert msg["Auto-Submitted"] == "auto-generated"
    text = msg.get_body(("plain",))
    page = msg.get_body(("html",))
    assert text is not None and "and is 1h late" in text.get_content()
    assert page is not None and "<table>" in page.get_content()


def parts(msg: EmailMessage) -> tuple[str, str]:
    text, page = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and page is not None
    return text.get_content(), page.get_content()


@pytest.mark.parametrize(
    ("zone", "due", "detected"),
    [(None, "08:00 UTC", "09:00 UTC"), (ZoneInfo("America/Chicago"), "02:00 CST", "03:00 CST")],
    ids=["default-utc", "chicago"],
)
async def test_mails_and_digests_show_times_in_the_display_zone(
    zone: tzinfo | None, due: str, detected: str
) -> None:
    events = [make_event(n, 1, kind=EventType.REVIEW_OVERDUE) for n in (1, 2)]
    (found,) = digest.group(enumerate(events, start=1), digest.Policy())
    with smtp_server(Mailbox()) as box:
        target = sink(box.port, zone=zone)
        try:
            assert await target.deliver(events[0], b"{}", now=SENT_AT) == Delivered()
            assert await target.deliver_digest(found, now=SENT_AT, status_url=None) == Delivered()
        finally:
            await target.aclose()
    alert, summary = box.messages
    other = "CST" if due.endswith("UTC") else "UTC"
    for part in parts(alert):
        assert f"The review was due 2026-11-18 {due} and is 1h late." in part
        assert f"detected 2026-11-18 {detected}" in part
        assert other not in part
    for part in parts(summary):
        assert part.count(f"was due 2026-11-18 {due}") == 2
        assert other not in part


async def test_build_sinks_gives_the_mail_sink_the_display_zone() -> None:
    with smtp_server(Mailbox()) as box:
        config = SinkSettings.model_validate(
            {
                "name": "mail",
                "type": "email",
                "allow_private": True,
                "email": {
                    "host": "127.0.0.1",
                    "port": box.port,
                    "tls": "none",
                    "from": "spmon@example.edu",
                    "to": ["desk@example.edu"],
                },
            }
        )
        (target,) = wiring.build_sinks([config], zone=ZoneInfo("Europe/Berlin"))
        try:
            event = make_event(1, 1, kind=EventType.REVIEW_OVERDUE)
            assert await target.deliver(event, b"{}", now=SENT_AT) == Delivered()
        finally:
            await target.aclose()
    (msg,) = box.messages
    assert "The review was due 2026-11-18 09:00 CET" in parts(msg)[0]


async def test_starttls_with_a_login_and_a_private_ca(tmp_path: Path) -> None:
    context, cert = self_signed(tmp_path)
    with smtp_server(Mailbox(), tls=context, auth=True) as box:
        outcome = await send(
            sink(
                box.port,
                tls="starttls",
                ca_file=str(cert),
                username="spmon",
                password="s3cret-smtp-pass",
            )
        )
    assert outcome == Delivered()
    assert box.logins == [("spmon", "s3cret-smtp-pass")]
    assert len(box.messages) == 1


async def test_an_untrusted_certificate_is_a_tls_failure_retried(tmp_path: Path) -> None:
    context, _ = self_signed(tmp_path)
    with smtp_server(Mailbox(), tls=context) as box:
        outcome = await send(sink(box.port, tls="starttls"))
    assert outcome == RetryLater("tls failed (certificate or handshake)")
    assert box.messages == []


async def test_a_wrong_password_is_dead_with_the_servers_words(tmp_path: Path) -> None:
    context, cert = self_signed(tmp_path)
    with smtp_server(Mailbox(), tls=context, auth=True) as box:
        outcome = await send(
            sink(box.port, tls="starttls", ca_file=str(cert), username="spmon", password="nope!!")
        )
    assert isinstance(outcome, Rejected)
    assert outcome.reason.startswith("SMTP 535")
    assert "nope!!" not in outcome.reason


async def test_refused_connection_is_retried() -> None:
    closed = bound_socket()  # bound, not listening: connecting is refused
    try:
        outcome = await send(sink(closed.getsockname()[1]))
    finally:
        closed.close()
    assert outcome == RetryLater("connection failed (connect)")


async def test_a_loopback_server_is_refused_without_allow_private() -> None:
    outcome = await send(sink(25, allow_private=False))
    assert isinstance(outcome, RetryLater)
    assert outcome.reason.startswith("address refused: loopback")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (421, RetryLater("SMTP 421 closing")),
        (450, RetryLater("SMTP 450 closing")),
        (452, RetryLater("SMTP 452 closing")),
        (550, Rejected("SMTP 550 closing")),
        (554, Rejected("SMTP 554 closing")),
    ],
)
def test_reply_codes_4xx_retry_5xx_dead(code: int, expected: object) -> None:
    assert classify_reply(code, "closing\r\n") == expected


async def test_451_then_250_is_retried_and_delivered_once(tmp_path: Path) -> None:
    with smtp_server(Mailbox(script=["451 4.3.0 try again later"] * 2)) as box:
        async with running(tmp_path / "s.db", [sink(box.port)], events=[make_event(1, 1)]) as (
            _,
            store,
        ):
            await until(lambda: _count(store, "delivered"), "delivered after two 451s", within=20.0)
    assert box.attempts == 3
    assert len(box.messages) == 1


async def test_550_is_dead_lettered_at_once(tmp_path: Path, log_events: list[EventDict]) -> None:
    with smtp_server(Mailbox(script=["550 5.1.1 mailbox unavailable"])) as box:
        target = sink(box.port)
        async with running(tmp_path / "s.db", [target], events=[make_event(1, 1)]) as (_, store):
            await until(lambda: _count(store, "dead"), "dead letter", within=20.0)
            (entry,) = await store.entries(state="dead", sink="mail", limit=5)  # type: ignore[arg-type]
    assert entry.last_error == "SMTP 550 5.1.1 mailbox unavailable"
    assert box.attempts == 1
    assert_no_secrets(log_events, "s3cret-smtp-pass")


async def _count(store: object, state: str) -> bool:
    return len((await rows_of(store)).get(state, [])) >= 1  # type: ignore[arg-type]

"""E-mail over SMTP (aiosmtplib): one message per event, plain text with an HTML alternative.

One SMTP session per message, one at a time (`MAIL` limits): an alert is rare enough that a
kept-open connection would mostly be a connection the server has timed out. The server's
answer is classified like an HTTP one, so the dispatcher's retry and dead-letter rules apply
unchanged: a 4xx reply (421 closing, 450/451/452 try later, 454 auth unavailable), a refused
or dropped connection, a timeout or a TLS failure is retried; a 5xx reply (550 no such
mailbox, 535 bad credentials, 554 refused) dead-letters the message with the server's words.

The password never reaches a reason string; the server's reply text may (it is what names
the problem) but is cut short. Without `allow_private` the host is reached on public
addresses only: the name is resolved through the same guard as the HTTP sinks' and the
connection made to an address the guard passed (no second lookup to rebind).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Literal

import aiosmtplib

from monitor.core import addresses, digest, digest_messages, messages
from monitor.core.events import Event
from monitor.sinks.base import MAIL, Delivered, Limits, Outcome, Rejected, RetryLater
from monitor.sinks.guard import AddressRefused, GuardedResolver

__all__ = ["EmailSink", "SmtpOptions", "classify_reply"]

Tls = Literal["starttls", "tls", "none"]
_SNIPPET = 120


@dataclass(frozen=True, slots=True)
class SmtpOptions:
    host: str
    port: int
    sender: str
    to: tuple[str, ...]
    tls: Tls = "starttls"
    """starttls: upgrade on the submission port (587); tls: implicit TLS (465); none: plain
    (a relay on this host or in the cluster)."""
    username: str | None = None
    password: str | None = None
    subject_prefix: str = "[spmon]"
    ca_file: str | None = None
    """A CA bundle to trust instead of the system's (a relay with a private CA)."""
    timeout: float = 15.0
    allow_private: bool = False


class EmailSink:
    def __init__(
        self,
        name: str,
        *,
        options: SmtpOptions,
        limits: Limits = MAIL,
        fingerprint: str = "",
        zone: tzinfo = UTC,
    ) -> None:
        self.name = name
        self.zone = zone
        """The display time zone of the mails' times (the Date header stays an instant)."""
        self.limits = limits
        self.fingerprint = fingerprint
        self.host = options.host
        self._options = options
        self._tls = _tls_context(options) if options.tls != "none" else None
        self._guard: GuardedResolver | None = None

    def message(self, event: Event, now: datetime) -> EmailMessage:
        """The mail for `event`; its Message-ID is the event's, the same on every retry."""
        opts = self._options
        shown = messages.mail(event, now, zone=self.zone, prefix=opts.subject_prefix)
        msg = EmailMessage()
        msg["From"] = opts.sender
        msg["To"] = ", ".join(opts.to)
        msg["Subject"] = shown.subject
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = messages.message_id(event.id, opts.sender.rpartition("@")[2])
        msg["X-Spmon-Event-Id"] = event.id
        msg["X-Spmon-Event-Type"] = str(event.type)
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to alerts
        msg.set_content(shown.text)
        msg.add_alternative(shown.html, subtype="html")
        return msg

    def digest_message(
        self, found: digest.Group, now: datetime, status_url: str | None
    ) -> EmailMessage:
        """One mail for a digest group; its Message-ID is the digest's (the same rows give
        the same id on every retry)."""
        opts = self._options
        shown = digest_messages.mail(
            found, now, status_url, zone=self.zone, prefix=opts.subject_prefix
        )
        msg = EmailMessage()
        msg["From"] = opts.sender
        msg["To"] = ", ".join(opts.to)
        msg["Subject"] = shown.subject
        msg["Date"] = format_datetime(now)
        domain = opts.sender.rpartition("@")[2]
        msg["Message-ID"] = messages.message_id(digest_messages.digest_id(found), domain)
        msg["X-Spmon-Digest-Events"] = str(len(found.events))
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(shown.text)
        msg.add_alternative(shown.html, subtype="html")
        return msg

    async def deliver(self, event: Event, body: bytes, *, now: float) -> Outcome:
        return await self._mail(self.message(event, datetime.fromtimestamp(now, UTC)))

    async def deliver_digest(
        self, found: digest.Group, *, now: float, status_url: str | None
    ) -> Outcome:
        return await self._mail(
            self.digest_message(found, datetime.fromtimestamp(now, UTC), status_url)
        )

    async def _mail(self, msg: EmailMessage) -> Outcome:
        sock = await self._connect()
        if isinstance(sock, RetryLater):
            return sock
        try:
            return await self._send(sock, msg)
        finally:
            sock.close()

    async def _send(self, sock: socket.socket, msg: EmailMessage) -> Outcome:
        opts = self._options
        client = aiosmtplib.SMTP(
            hostname=opts.host,  # for the certificate check and SNI; the socket is connected
            sock=sock,
            use_tls=opts.tls == "tls",
            start_tls=False,  # below, by hand: a failed upgrade must not leak the transport
            tls_context=self._tls,
            timeout=opts.timeout,
        )
        plain = None
        try:
            await client.connect()
            plain = client.transport
            if opts.tls == "starttls":
                await client.starttls()
            if opts.username is not None:
                await client.login(opts.username, opts.password or "")
            # Some recipients refused while others took it is a delivery: retrying would
            # mail the others again. All refused raises, and is classified.
            await client.send_message(msg, recipients=list(opts.to))
            with contextlib.suppress(aiosmtplib.SMTPException):
                await client.quit()
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return _refused_all(exc)
        except aiosmtplib.SMTPResponseException as exc:
            return classify_reply(exc.code, exc.message)
        except (aiosmtplib.SMTPTimeoutError, TimeoutError):
            return RetryLater("timed out")
        except aiosmtplib.SMTPServerDisconnected:
            return RetryLater("connection dropped by the server")
        except aiosmtplib.SMTPConnectError:
            return RetryLater("connection failed (connect)")
        except (ssl.SSLError, ssl.CertificateError):
            return RetryLater("tls failed (certificate or handshake)")
        except aiosmtplib.SMTPException as exc:
            # What is left is the client refusing to go on: no STARTTLS offered, no AUTH
            # mechanism in common. Retried: the breaker keeps it to one try per cooldown.
            return RetryLater(f"smtp failed ({_snippet(exc.message)})")
        except OSError:
            return RetryLater("connection failed")
        finally:
            client.close()
            if plain is not None:
                plain.close()  # a failed STARTTLS leaves the plain transport open otherwise
        return Delivered()

    async def _connect(self) -> socket.socket | RetryLater:
        """A TCP connection to the first address the guard passes, within the timeout."""
        opts = self._options
        if not opts.allow_private and (why := addresses.host_refusal(opts.host)):
            return RetryLater(_address_refused(why))
        if self._guard is None and not opts.allow_private:
            self._guard = GuardedResolver()
        try:
            async with asyncio.timeout(opts.timeout):
                return await _open(opts.host, opts.port, self._guard)
        except AddressRefused as exc:
            return RetryLater(_address_refused(exc.reason))
        except socket.gaierror:
            return RetryLater("dns lookup failed")
        except TimeoutError:
            return RetryLater("timed out (connect)")
        except OSError:
            return RetryLater("connection failed (connect)")

    async def aclose(self) -> None:
        if self._guard is not None:
            await self._guard.close()


def classify_reply(code: int, message: str) -> Outcome:
    """SMTP reply codes (RFC 5321 §4.2.1): 4yz is a transient failure, 5yz a permanent one;
    anything else from a failed command is treated as transient."""
    reason = f"SMTP {code}" + (f" {text}" if (text := _snippet(message)) else "")
    if 500 <= code < 600:
        return Rejected(reason)
    return RetryLater(reason)


def _refused_all(exc: aiosmtplib.SMTPRecipientsRefused) -> Outcome:
    """Every recipient refused: permanent only when every refusal is (a 4xx is greylisting
    or a full mailbox, worth another try)."""
    outcomes = [classify_reply(r.code, r.message) for r in exc.recipients]
    retried = [outcome for outcome in outcomes if isinstance(outcome, RetryLater)]
    return (retried or outcomes or [RetryLater("recipients refused")])[0]


def _tls_context(options: SmtpOptions) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=options.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _address_refused(why: str) -> str:
    return f"address refused: {why} (set allow_private: true if intended)"


def _snippet(text: str) -> str:
    cut = text[:_SNIPPET]
    return "".join(ch if ch.isprintable() else " " for ch in cut).strip()


async def _open(host: str, port: int, guard: GuardedResolver | None) -> socket.socket:
    loop = asyncio.get_running_loop()
    if guard is not None:
        found = await guard.resolve(host, port, socket.AF_UNSPEC)
        targets = [(r["family"], (r["host"], r["port"])) for r in found]
    else:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        targets = [(family, (str(address[0]), int(address[1]))) for family, *_, address in infos]
    last: OSError = OSError("no address")
    for family, address in targets:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        return sock
    raise last

"""Settings → domain values: the one place that reads `Settings` on the way into the service.

The loops and adapters below take plain options, policies and objects; none of them knows the
configuration schema. `monitor.service` assembles these into a running service.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import structlog

from monitor import aio
from monitor.api import ClientOptions, Header, OAuthOptions, OAuthToken
from monitor.core import buckets, delivery, digest, discovery, routing, rules
from monitor.core.backoff import Backoff
from monitor.core.events import Event, EventType
from monitor.core.grant import Grant
from monitor.logs import Redactor
from monitor.metrics import Metrics
from monitor.poll_step import PollerOptions
from monitor.settings import Settings, SinkSettings
from monitor.settings_digest import quiet_schedule
from monitor.sinks import (
    AlertmanagerSink,
    Limits,
    LogSink,
    Sink,
    SlackSink,
    TeamsSink,
    WebhookSink,
)
from monitor.sources import UrlOptions, UrlReader

if TYPE_CHECKING:
    from monitor.sinks.email import SmtpOptions

__all__ = [
    "build_sinks",
    "client_options",
    "credentials",
    "label_buckets",
    "lease",
    "list_sources",
    "policy",
    "poller_options",
    "register_secrets",
    "router",
    "token_source",
    "url_readers",
]

log = structlog.get_logger("spmon.service")


def policy(settings: Settings) -> rules.Policy:
    r = settings.rules
    return rules.Policy(
        overdue_repeat=timedelta(seconds=r.overdue_repeat) if r.overdue_repeat > 0 else None,
        due_soon=timedelta(seconds=r.due_soon) if r.due_soon > 0 else None,
        escalate=tuple(timedelta(seconds=after) for after in escalation_levels(settings)),
    )


def escalation_levels(settings: Settings) -> list[float]:
    """Every sink's `escalate` afters, as one ladder: level n is the n-th shortest."""
    return sorted({level.after for sink in settings.sinks for level in sink.escalate})


def label_buckets(settings: Settings) -> buckets.LabelBuckets | None:
    """The per-label review gauges' state, when metrics.by_labels names any label."""
    m = settings.metrics
    return buckets.LabelBuckets(m.by_labels, cap=m.label_values_max) if m.by_labels else None


def lease(settings: Settings) -> float:
    """Claimed rows stay ours long enough for the slowest sink's whole timeout."""
    return delivery.lease_for(max((sink.timeout for sink in settings.sinks), default=15.0))


def register_secrets(settings: Settings, redactor: Redactor) -> None:
    client = settings.api.auth.client() if settings.api.auth.oauth else None
    sinks = (v for sink in settings.sinks for v in sink.secret_values())
    redactor.add([settings.token(), settings.admin.secret(), *(client or ()), *sinks])
    redactor.add(settings.state.secrets())


def credentials(
    settings: Settings, redactor: Redactor, metrics: Metrics, *, clock: aio.Clock
) -> contextlib.AbstractAsyncContextManager[OAuthToken | None]:
    """OAuth credentials that renew (None for a static token, which the client holds)."""
    api, auth = settings.api, settings.api.auth
    if not auth.oauth:
        return contextlib.nullcontext(None)
    metrics.token_renews.set(1)
    last = auth.client()

    def client() -> tuple[str, str] | None:
        # A rotated secret file is used from the next request on; while it is unreadable
        # (half-written during a rotation), the last one read.
        nonlocal last
        fresh = auth.client()
        redactor.add(fresh or ())
        last = fresh or last
        return last

    def obtained(grant: Grant) -> None:
        redactor.add([grant.token])
        metrics.token_expiry.set(grant.expires_at)

    options = OAuthOptions(
        token_url=auth.token_url,
        client=client,
        header=Header(auth.header),
        renew_before=auth.renew_before,
        timeout=api.timeout,
    )
    return OAuthToken(options, on_token=obtained, clock=clock)


def token_source(settings: Settings, redactor: Redactor) -> Callable[[], str | None]:
    """The token file as it is now, registered with the redactor before anyone can log it."""

    def fresh() -> str | None:
        token = settings.fresh_token()
        redactor.add([token])
        return token

    return fresh


def url_readers(settings: Settings, redactor: Redactor) -> dict[str, UrlReader]:
    """One reader per URL source, by source name; each remembers its last good answer."""
    readers = {}
    for source in settings.sources:
        if source.type != "url" or source.url is None:
            continue
        options = UrlOptions(
            url=source.url,
            name=source.name,
            fmt=source.format,
            timeout=source.timeout,
            allow_private=source.allow_private,
            auth_header=source.auth_header,
            auth=_secret_file(source.auth_file, redactor) if source.auth_file else None,
        )
        readers[source.name] = UrlReader(options)
    return readers


def _secret_file(path: Path, redactor: Redactor) -> Callable[[], str | None]:
    """The file as it is now (a rotated secret), registered before anyone can log it."""

    def read() -> str | None:
        try:
            value = path.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None
        redactor.add([value])
        return value

    return read


def client_options(settings: Settings) -> ClientOptions:
    api = settings.api
    return ClientOptions(
        base_url=api.base_url,
        token=settings.token(),
        header=Header(api.auth.header),
        timeout=api.timeout,
        connect_timeout=api.connect_timeout,
        concurrency=api.concurrency,
        rate_limit=api.rate_limit,
        backoff=Backoff(retries=api.retries),
    )


def poller_options(settings: Settings, *, deployment: str) -> PollerOptions:
    zone = settings.api.naive_date_timezone
    return PollerOptions(
        concurrency=settings.api.concurrency,
        jitter=settings.poll.jitter,
        policy=policy(settings),
        naive_tz=ZoneInfo(zone) if zone else None,
        auth_retry=settings.api.auth_retry,
        deployment=deployment,
        phases=settings.poll.phases.intervals(),
        link_template=settings.display.link_template,
    )


def router(settings: Settings) -> Callable[[Event], Sequence[str]]:
    """Each event to the sinks whose filters take it (else the default sinks); with no sinks
    configured, everything goes to the log sink."""
    routes = [sink.route() for sink in settings.sinks] or [routing.Route("log")]
    chosen = routing.Router(routes)
    ladder = escalation_levels(settings)
    # review.escalated at level n goes to the `to` of every sink that escalates after that
    # long and would take the session's review.overdue itself (its label filters hold).
    escalations = [
        (sink.route(), level.after, level.to) for sink in settings.sinks for level in sink.escalate
    ]

    def escalated(event: Event) -> tuple[str, ...]:
        after = ladder[event.level - 1] if event.level and event.level <= len(ladder) else None
        overdue = str(EventType.REVIEW_OVERDUE)
        return tuple(
            dict.fromkeys(
                to
                for source, level, to in escalations
                if level == after
                and source.takes_type(overdue)
                and source.takes_labels(event.labels)
            )
        )

    def route(event: Event) -> Sequence[str]:
        names = escalated(event) if event.type is EventType.REVIEW_ESCALATED else chosen(event)
        if not names:
            # check-config warns about these; the log keeps a trace of what went nowhere.
            log.info("event.unrouted", type=str(event.type), event_id=event.id)
        return names

    return route


def list_sources(settings: Settings) -> list[discovery.ListSource]:
    return [
        discovery.ListSource(
            name=d.name,
            install_sid=d.install_sid,
            enrollment_sid=d.enrollment_sid,
            exam_sid=d.exam_sid,
            statuses=d.status,
            include_active=d.include_active,
            params=tuple(sorted(d.params.items())),
            interval=d.interval,
            page_size=d.page_size,
        )
        for d in settings.discovery
    ]


def plans(settings: Settings) -> dict[str, digest.Plan]:
    """Each sink's digest, quiet windows and the status-page link of "and N more"."""
    found = {}
    for sink in settings.sinks:
        policy = sink.digest.policy() if sink.digest is not None else None
        schedule = quiet_schedule(sink.quiet, sink.timezone)
        found[sink.name] = digest.Plan(policy, schedule, status_url(settings))
    return found


def status_url(settings: Settings) -> str | None:
    """`http.public_url`, else derived from `http.listen` (an address of all interfaces
    says nothing to a reader elsewhere: then only a loopback link), of the overdue list."""
    http = settings.http
    if http.public_url:
        return http.public_url.rstrip("/") + "/sessions?list=overdue"
    if not http.listen:
        return None
    host, port = http.host_port
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104  # a wildcard, not a bind
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/sessions?list=overdue"


def build_sinks(configs: Sequence[SinkSettings], *, zone: tzinfo = UTC) -> list[Sink]:
    """One Sink per configured entry; with none configured, alerts go to the log. `zone` is
    the display time zone of what people read (the log line, Slack, Teams, e-mail, and their
    digests); the signed webhook and Alertmanager send UTC instants and do not take it."""
    if not configs:
        return [LogSink(zone=zone)]
    return [_sink(config, zone) for config in configs]


def _limits(config: SinkSettings) -> Limits:
    return Limits(
        concurrency=config.effective_concurrency,
        rate=config.effective_rate,
        schedule=config.schedule(),
        breaker_failures=config.breaker_failures,
        breaker_cooldown=config.breaker_cooldown,
    )


def _sink(config: SinkSettings, zone: tzinfo = UTC) -> Sink:
    name, limits, timeout = config.name, _limits(config), config.timeout
    if config.type == "log":
        return LogSink(name, limits=limits, zone=zone)
    if config.type == "email":
        from monitor.sinks.email import EmailSink  # and aiosmtplib: only for e-mail sinks

        return EmailSink(
            name,
            options=smtp_options(config),
            limits=limits,
            fingerprint=config.fingerprint(),
            zone=zone,
        )
    assert config.url is not None  # SinkSettings validation guarantees it
    url, fingerprint = config.url.get_secret_value(), config.fingerprint()
    headers = {k: v.get_secret_value() for k, v in config.headers.items()}
    if config.type in ("slack", "teams"):
        kind = SlackSink if config.type == "slack" else TeamsSink
        return kind(
            name,
            url=url,
            timeout=timeout,
            limits=limits,
            fingerprint=fingerprint,
            allow_private=config.allow_private,
            zone=zone,
        )
    if config.type == "alertmanager":
        return AlertmanagerSink(
            name,
            url=url,
            headers=headers,
            timeout=timeout,
            resend_interval=config.resend_interval,
            hold=config.hold,
            labels=config.alert_labels,
            limits=limits,
            fingerprint=fingerprint,
            allow_private=config.allow_private,
        )
    return WebhookSink(
        name,
        url=url,
        secrets=config.signing_secrets(),
        headers=headers,
        timeout=timeout,
        limits=limits,
        fingerprint=fingerprint,
        allow_private=config.allow_private,
    )


def smtp_options(config: SinkSettings) -> SmtpOptions:
    mail = config.email
    assert mail is not None  # SinkSettings validation guarantees it for type: email
    from monitor.sinks.email import SmtpOptions

    return SmtpOptions(
        host=mail.host,
        port=mail.effective_port,
        sender=mail.sender,
        to=tuple(mail.to),
        tls=mail.tls,
        username=mail.username,
        password=mail.password.get_secret_value() if mail.password else None,
        subject_prefix=mail.subject_prefix,
        ca_file=str(mail.ca_file) if mail.ca_file else None,
        timeout=config.timeout,
        allow_private=config.allow_private,
    )

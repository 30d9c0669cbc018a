"""One alert destination's settings: its URL and secrets, signing, routing, pacing and the
checks that refuse a risky one (private addresses, unsigned webhooks) at start-up."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import pydantic
from pydantic import (
    Field,
    SecretStr,
    field_validator,
)

from monitor.core import addresses, routing
from monitor.core.backoff import DELIVERY_SCHEDULE, Schedule
from monitor.core.events import ALERT_TYPES
from monitor.settings_digest import SinkTiming, batching_problem
from monitor.settings_email import EmailSettings, email_problem
from monitor.settings_types import STRICT, Seconds

__all__ = ["SinkSettings"]


class SinkSettings(SinkTiming):
    """One alert destination: where, how it is signed, which events it takes, how fast."""

    model_config = STRICT
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
    """Appears in metrics and logs instead of the URL."""
    type: Literal["webhook", "slack", "alertmanager", "teams", "email", "log"]
    url: SecretStr | None = None
    """Endpoint (Alertmanager: its base URL); a secret, since URLs often carry credentials."""
    url_file: Path | None = None
    """File holding the url (a mounted Kubernetes/Docker secret), instead of url."""
    secret: SecretStr | None = None
    """Standard Webhooks signing secret, whsec_<base64>."""
    secret_file: Path | None = None
    """File holding the signing secret, instead of secret."""
    secrets: list[SecretStr] = Field(default_factory=list)
    """More signing secrets: during a rotation every one signs (one `v1,` entry each)."""
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    """Extra request headers, e.g. an Authorization bearer."""
    timeout: Annotated[Seconds, Field(gt=0, le=120)] = 15.0
    """Total time budget of one delivery, connect included (connect itself at most 5 s)."""
    allow_http: bool = False
    """Permit plain http:// (an in-cluster receiver); https is required otherwise."""
    allow_private: bool = False
    """Permit loopback, private, link-local and other non-public addresses (an in-cluster
    Alertmanager, a receiver on this host); refused otherwise, at start-up and at connect."""
    unsigned: bool = False
    """Webhook: send without a signature. Required, as a deliberate choice, when there is no
    secret: receivers cannot tell an unsigned delivery from a forged one."""
    events: list[Annotated[str, Field(min_length=1)]] | None = None
    """Glob patterns over event types (`review.*`); unset takes every type."""
    match_labels: dict[str, str] = Field(default_factory=dict)
    """Watch labels an event must carry (values are globs), e.g. {course: BIO101}."""
    default: bool = False
    """Take every event that no other sink took (and nothing else)."""
    concurrency: Annotated[int, Field(ge=1, le=64)] | None = None
    """Deliveries in flight at once (default 4; Slack and Alertmanager 1)."""
    rate_limit: Annotated[float, Field(gt=0)] | None = None
    """Deliveries per second (Slack default and maximum: 1)."""
    retry_schedule: list[Annotated[Seconds, Field(ge=0)]] | None = None
    """Delay of each attempt after the previous one; default the Standard Webhooks schedule
    (0, 5s, 5m, 30m, 2h, 5h, 10h, 10h). After the last one fails, the delivery is dead."""
    retry_jitter: Annotated[float, Field(ge=0, le=0.5)] = 0.1
    """Each retry delay is stretched or shrunk by up to this fraction."""
    breaker_failures: Annotated[int, Field(ge=1)] = 5
    """Failures in a row after which the sink is down: rows wait, one probe at a time
    (deliveries that were in flight together count as one failure)."""
    breaker_cooldown: Annotated[Seconds, Field(gt=0)] = 30.0
    """Longest gap between probes of a failing sink; they start about 1 s apart and grow."""
    resend_interval: Annotated[Seconds, Field(gt=0)] = 60.0
    """Alertmanager: re-post firing alerts this often."""
    hold: Annotated[Seconds, Field(gt=0, le=7 * 86400)] = 3600.0
    """Alertmanager: a firing alert stays active this long after spmon stops (plus one
    resend_interval), so a rollout or drain of up to this long resolves nothing."""
    alert_labels: dict[str, str] = Field(default_factory=dict)
    """Alertmanager: extra labels on every alert, e.g. {severity: page}."""
    email: EmailSettings | None = None
    """E-mail: the SMTP server, sender and recipients (settings_email)."""

    @pydantic.model_validator(mode="after")
    def _url_rules(self) -> SinkSettings:
        if self.type == "email":
            return self._email_rules()
        if self.type == "log":
            return self
        if self.url is None:
            raise ValueError(f"url (or url_file) is required for a {self.type} sink")
        url = self.url.get_secret_value()
        if not url.startswith(("https://", "http://")):
            raise ValueError("url must be http(s)")
        host = urlsplit(url).hostname
        if not host:
            raise ValueError("url has no host")
        refused = addresses.host_refusal(host)
        if refused and not self.allow_private:
            raise ValueError(
                f"url of sink {self.name!r} is a {refused} address; "
                "set allow_private: true if that is intended"
            )
        # Loopback traffic never leaves the host: TLS would protect nothing there.
        if url.startswith("http://") and not (self.allow_http or refused == "loopback"):
            raise ValueError("url is plain http; use https or set allow_http: true")
        return self

    @pydantic.model_validator(mode="after")
    def _type_rules(self) -> SinkSettings:
        own = {
            "webhook": {"secret", "secrets", "unsigned"},
            "alertmanager": {"resend_interval", "hold", "alert_labels"},
            "email": {"email"},
        }
        for kind, fields in own.items():
            misplaced = sorted(fields & self.model_fields_set) if self.type != kind else []
            if misplaced:
                raise ValueError(f"{', '.join(misplaced)} only applies to {kind} sinks")
        batching_problem(self.type, self)
        if self.type == "slack" and (self.concurrency or 1) > 1:
            raise ValueError("concurrency must be 1 for a Slack webhook (one post at a time)")
        if self.type == "slack" and (self.rate_limit or 1.0) > 1.0:
            raise ValueError("rate_limit must be at most 1 for a Slack webhook (1 message/s)")
        if self.type == "teams" and (self.rate_limit or 1.0) > 4.0:
            raise ValueError("rate_limit must be at most 4 for a Teams webhook (4 posts/s)")
        if self.default and (self.events is not None or self.match_labels):
            raise ValueError("a default sink takes what no other sink took; it has no filters")
        if self.retry_schedule is not None and not self.retry_schedule:
            raise ValueError("retry_schedule needs at least one step")
        if self.hold < self.resend_interval:
            raise ValueError("hold must be at least resend_interval")
        return self._signing_rules()

    def _email_rules(self) -> SinkSettings:
        if self.url is not None:
            raise ValueError("url does not apply to an email sink (email.host does)")
        email_problem(self.email, sink=self.name, allow_private=self.allow_private)
        return self

    def _signing_rules(self) -> SinkSettings:
        signed = bool(self.signing_secrets())
        if self.type == "webhook" and not signed and not self.unsigned:
            raise ValueError(
                f"webhook sink {self.name!r} has no secret: set secret (whsec_...), "
                "or unsigned: true to send unsigned deliveries"
            )
        if signed and self.unsigned:
            raise ValueError("unsigned: true contradicts secret/secrets; remove one")
        return self

    def notices(self) -> list[str]:
        """What `check-config` points out about this sink's deliberate opt-outs."""
        found = []
        if self.unsigned:
            found.append(f"sink {self.name!r} sends unsigned deliveries (unsigned: true)")
        if self.allow_private:
            found.append(f"sink {self.name!r} may reach private addresses (allow_private: true)")
        if self.email is not None and self.email.tls == "none":
            found.append(f"sink {self.name!r} sends mail over plain SMTP (email.tls: none)")
        return found

    @field_validator("secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _check_whsec(value.get_secret_value())
        return value

    @field_validator("secrets")
    @classmethod
    def _whsecs(cls, values: list[SecretStr]) -> list[SecretStr]:
        for value in values:
            _check_whsec(value.get_secret_value())
        return values

    def signing_secrets(self) -> list[str]:
        """`secret` first, then `secrets`; each one signs every delivery."""
        listed = [self.secret, *self.secrets] if self.secret else list(self.secrets)
        return [value.get_secret_value() for value in listed]

    def secret_values(self) -> list[str]:
        """Everything the log redactor must never let through for this sink."""
        url = [self.url.get_secret_value()] if self.url else []
        password = self.email.password if self.email else None
        return [
            *url,
            *([password.get_secret_value()] if password else []),
            *self.signing_secrets(),
            *(v.get_secret_value() for v in self.headers.values()),
        ]

    @property
    def effective_concurrency(self) -> int:
        return self.concurrency or (4 if self.type == "webhook" else 1)

    @property
    def effective_rate(self) -> float | None:
        return self.rate_limit or (1.0 if self.type in ("slack", "teams", "email") else None)

    def schedule(self) -> Schedule:
        steps = self.retry_schedule
        return Schedule(
            tuple(steps) if steps is not None else DELIVERY_SCHEDULE.steps, self.retry_jitter
        )

    def route(self) -> routing.Route:
        return routing.Route(
            sink=self.name,
            events=tuple(self.events) if self.events is not None else ("*",),
            labels=dict(self.match_labels),
            default=self.default,
            accepts=ALERT_TYPES if self.type == "alertmanager" else None,
        )

    def fingerprint(self) -> str:
        """A digest of the whole entry, secrets included: a sink disabled by a 410 stays
        disabled across restarts until this changes (a new URL, a new secret...)."""
        dumped = _reveal(self.model_dump())
        text = json.dumps(dumped, sort_keys=True, default=str)
        return hashlib.sha256(b"spmon-sink\x00" + text.encode()).hexdigest()[:16]


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {str(k): _reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_reveal(item) for item in value]
    return value


def _check_whsec(text: str) -> None:
    import base64
    import binascii

    if not text.startswith("whsec_"):
        raise ValueError("must start with whsec_")
    try:
        raw = base64.b64decode(text.removeprefix("whsec_"), validate=True)
    except binascii.Error as exc:
        raise ValueError("is not valid base64 after whsec_") from exc
    if not 24 <= len(raw) <= 64:
        raise ValueError("must decode to 24-64 bytes")

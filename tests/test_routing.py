"""Routing: filters on event type and watch labels, a default sink, and check-config warnings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pydantic import ValidationError

from monitor.cli import main
from monitor.core import routing
from monitor.core.events import Event, EventType
from monitor.core.keys import SessionKey
from monitor.settings import SinkSettings
from monitor.wiring import build_sinks

KEY = SessionKey("AI" + "a" * 32, "EX" + "b" * 32, "ES" + "c" * 32)
NOW = datetime(2026, 11, 18, 9, tzinfo=UTC)
HOOK = "https://hooks.example.com/spmon"
SLACK = "https://hooks.slack.com/services/T000/B000/XXXXXXXX"
VALID_SECRET = "whsec_E5B7N8fWLN2cR4KbRXmGwdfUeRmQhjJXtLvkf078Xt0="


def event(kind: EventType, **labels: str) -> Event:
    key = None if kind is EventType.API_AUTH_FAILED else KEY
    return Event("evt_1", kind, NOW, key, labels if key else {})


def sink(name: str, kind: str = "webhook", **extra: object) -> SinkSettings:
    url = {"webhook": HOOK, "slack": SLACK, "alertmanager": "https://am.example.com"}.get(kind)
    if kind == "webhook" and not {"secret", "secrets"} & extra.keys():
        extra.setdefault("unsigned", True)
    return SinkSettings.model_validate({"name": name, "type": kind, "url": url, **extra})


def router(*sinks: SinkSettings) -> routing.Router:
    return routing.Router([s.route() for s in sinks])


def test_unfiltered_sinks_take_everything() -> None:
    route = router(sink("a"), sink("b"))
    assert route(event(EventType.STATUS_CHANGED)) == ("a", "b")
    assert route(event(EventType.API_AUTH_FAILED)) == ("a", "b")


@pytest.mark.parametrize(
    ("patterns", "kind", "taken"),
    [
        (["review.*"], EventType.REVIEW_OVERDUE, True),
        (["review.*"], EventType.REVIEW_OVERDUE_RESOLVED, True),
        (["review.*"], EventType.STATUS_CHANGED, False),
        (["session.status_changed", "api.*"], EventType.API_AUTH_FAILED, True),
        (["*.not_found"], EventType.SESSION_NOT_FOUND, True),
        (["review.overdue"], EventType.REVIEW_OVERDUE_RESOLVED, False),
    ],
)
def test_event_type_globs(patterns: list[str], kind: EventType, taken: bool) -> None:
    assert router(sink("a", events=patterns))(event(kind)) == (("a",) if taken else ())


def test_label_filters_need_every_label_to_match() -> None:
    bio = sink("bio", match_labels={"course": "BIO*", "term": "fall"})
    route = router(bio)
    assert route(event(EventType.STATUS_CHANGED, course="BIO101", term="fall")) == ("bio",)
    assert route(event(EventType.STATUS_CHANGED, course="BIO101")) == ()
    assert route(event(EventType.STATUS_CHANGED, course="CHEM201", term="fall")) == ()
    assert route(event(EventType.API_AUTH_FAILED)) == ()  # no session, no labels


def test_the_default_sink_takes_only_what_nobody_else_took() -> None:
    route = router(
        sink("bio", "slack", match_labels={"course": "BIO101"}),
        sink("pager", "alertmanager", events=["review.*"]),
        sink("catchall", default=True),
    )
    assert route(event(EventType.STATUS_CHANGED, course="BIO101")) == ("bio",)
    assert route(event(EventType.REVIEW_OVERDUE, course="CHEM201")) == ("pager",)
    assert route(event(EventType.REVIEW_OVERDUE, course="BIO101")) == ("bio", "pager")
    assert route(event(EventType.STATUS_CHANGED, course="CHEM201")) == ("catchall",)
    assert route(event(EventType.API_AUTH_FAILED)) == ("catchall",)


def test_alertmanager_only_ever_takes_overdue_and_resolved() -> None:
    route = router(sink("am", "alertmanager"))
    taken = [kind for kind in EventType if route(event(kind))]
    assert taken == [EventType.REVIEW_OVERDUE, EventType.REVIEW_OVERDUE_RESOLVED]


def test_no_warnings_when_every_type_reaches_a_sink() -> None:
    routes = [sink("a").route(), sink("bio", match_labels={"course": "BIO101"}).route()]
    assert routing.warnings(routes) == []
    assert routing.warnings([]) == []


def test_warnings_name_unreached_types_label_only_routes_and_typos() -> None:
    routes = [
        sink("bio", "slack", match_labels={"course": "BIO101"}).route(),
        sink("pager", "alertmanager", events=["review.*"]).route(),
        sink("typo", events=["reveiw.*"]).route(),
    ]
    lines = routing.warnings(routes)
    assert "sink 'typo': events pattern 'reveiw.*' matches no event type" in lines
    assert "sink 'typo' takes no event type it can deliver (check its events filter)" in lines
    assert "event type api.auth_failed reaches no sink" in lines
    assert any(
        line.startswith("event type session.status_changed reaches a sink only when labels match")
        for line in lines
    )
    assert not any(line.startswith("event type review.overdue ") for line in lines)


def test_a_default_sink_silences_the_reach_warnings() -> None:
    routes = [
        sink("bio", match_labels={"course": "BIO101"}).route(),
        sink("rest", default=True).route(),
    ]
    assert routing.warnings(routes) == []


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"type": "slack", "url": SLACK, "concurrency": 2}, "concurrency must be 1"),
        ({"type": "slack", "url": SLACK, "rate_limit": 5}, "rate_limit must be at most 1"),
        ({"type": "webhook", "url": HOOK, "default": True, "events": ["*"]}, "has no filters"),
        ({"type": "slack", "url": SLACK, "secret": VALID_SECRET}, "only applies to webhook"),
        ({"type": "webhook", "url": HOOK, "resend_interval": 5}, "only applies to alertmanager"),
        ({"type": "alertmanager"}, r"url \(or url_file\) is required for a alertmanager sink"),
        ({"type": "webhook", "url": HOOK, "secrets": ["whsec_c2hvcnQ="]}, "24-64 bytes"),
        ({"type": "webhook", "url": HOOK, "retry_schedule": []}, "at least one step"),
        ({"type": "slack", "url": "http://hooks.example.com/x"}, "plain http"),
    ],
)
def test_sink_settings_reject_bad_entries_naming_the_problem(
    entry: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        SinkSettings.model_validate({"name": "x", **entry})


def test_sink_settings_defaults_and_knobs() -> None:
    slack = sink("s", "slack")
    assert (slack.effective_concurrency, slack.effective_rate) == (1, 1.0)
    assert sink("w").schedule().steps == (
        0.0,
        5.0,
        300.0,
        1800.0,
        7200.0,
        18000.0,
        36000.0,
        36000.0,
    )
    fast = sink("w", retry_schedule=[0, "500ms", "2s"], retry_jitter=0)
    assert fast.schedule().steps == (0.0, 0.5, 2.0)
    assert sink("w").fingerprint() == sink("w").fingerprint()
    assert sink("w").fingerprint() != sink("w", headers={"Authorization": "Bearer b"}).fingerprint()


async def test_build_sinks_makes_one_sink_per_entry_with_its_limits() -> None:
    configs = [
        sink("hook", concurrency=8, rate_limit=20, retry_schedule=[0, 1]),
        sink("slack", "slack"),
        sink("am", "alertmanager", resend_interval="30s", alert_labels={"severity": "page"}),
        SinkSettings(name="log", type="log"),
    ]
    sinks = build_sinks(configs)
    try:
        assert [type(s).__name__ for s in sinks] == [
            "WebhookSink",
            "SlackSink",
            "AlertmanagerSink",
            "LogSink",
        ]
        assert (sinks[0].limits.concurrency, sinks[0].limits.rate) == (8, 20.0)
        assert sinks[0].limits.schedule.steps == (0.0, 1.0)
        assert (sinks[1].limits.concurrency, sinks[1].limits.rate) == (1, 1.0)
        assert sinks[2].resend_interval == 30.0  # type: ignore[attr-defined]
        assert sinks[0].fingerprint == configs[0].fingerprint()
    finally:
        for built in sinks:
            await built.aclose()


def test_check_config_warns_about_events_that_reach_no_sink(tmp_path: Path) -> None:
    config = tmp_path / "spmon.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "api": {"base_url": "http://127.0.0.1:9", "token": "t"},
                "sinks": [
                    {
                        "name": "bio",
                        "type": "slack",
                        "url": SLACK,
                        "match_labels": {"course": "BIO101"},
                    },
                    {"name": "pager", "type": "alertmanager", "url": "https://am.example.com"},
                ],
            }
        )
    )
    result = CliRunner().invoke(main, ["check-config", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "spmon: warning: event type api.auth_failed reaches no sink" in result.stderr
    assert "XXXXXXXX" not in result.output  # the Slack URL is a secret

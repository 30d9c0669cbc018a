"""`digest`, `quiet`, `timezone` and `escalate` on sinks: what they become, and the one-line
refusals (a digest on a machine sink, an unknown zone or escalation target)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest

from monitor import wiring
from monitor.core import quiet
from monitor.settings import load_settings
from tests.settingskit import problems

LOCAL = {"api": {"base_url": "http://127.0.0.1:9", "token": "t"}}
SECRET = "whsec_E5B7N8fWLN2cR4KbRXmGwdfUeRmQhjJXtLvkf078Xt0="
SLACK = {"name": "slack", "type": "slack", "url": "https://hooks.slack.com/services/T/B/x"}


def write(path: Path, sinks: list[dict[str, Any]], text: str = "") -> Path:
    import yaml

    body = yaml.safe_dump({**LOCAL, "sinks": sinks})
    path.write_text(body + text, encoding="utf-8")
    return path


def test_a_digest_and_quiet_nights_become_a_plan(tmp_path: Path) -> None:
    # Unquoted 22:00 is what people write; PyYAML reads it as the base-60 number 1320.
    extra = "http: {public_url: 'https://spmon.example.edu/'}\n"
    config = tmp_path / "c.yaml"
    config.write_text(
        "api: {base_url: 'http://127.0.0.1:9', token: t}\n" + extra + "sinks:\n"
        "- {name: slack, type: slack, url: 'https://hooks.slack.com/services/T/B/x',\n"
        "   digest: {window: 2m, group_by: [course], max_items: 5},\n"
        "   quiet: [{days: [sat, sun]}, {from: 22:00, to: 07:00}, {start: 2026-12-20, end: 2027-01-04}],\n"
        "   timezone: America/Chicago}\n",
        encoding="utf-8",
    )
    plan = wiring.plans(load_settings(config))["slack"]
    assert plan.digest is not None and plan.digest.window == 120.0
    assert plan.digest.group_by == ("course",) and plan.digest.max_items == 5
    assert plan.status_url == "https://spmon.example.edu/sessions?list=overdue"
    assert plan.quiet is not None
    assert quiet.Daily(time(22), time(7)) in plan.quiet.windows
    saturday = datetime(2026, 11, 21, 12, 0, tzinfo=UTC).timestamp()
    assert quiet.until(plan.quiet, saturday) is not None


def test_status_url_is_derived_from_listen(tmp_path: Path) -> None:
    config = write(tmp_path / "c.yaml", [SLACK], "http: {listen: '0.0.0.0:8080'}\n")
    assert wiring.plans(load_settings(config))["slack"].status_url == (
        "http://127.0.0.1:8080/sessions?list=overdue"
    )


@pytest.mark.parametrize(
    ("sink", "said"),
    [
        ({"name": "hook", "type": "webhook", "url": "https://r.example.com/", "secret": SECRET,
          "digest": {"window": "1m"}}, "digest only applies to slack, teams, email and log"),
        ({"name": "am", "type": "alertmanager", "url": "https://am.example.com/",
          "digest": {}}, "digest only applies"),
        ({**SLACK, "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({**SLACK, "quiet": [{"days": ["caturday"]}]}, "unknown day 'caturday'"),
        ({**SLACK, "quiet": [{"from": "22:00"}]}, "needs both from and to"),
        ({**SLACK, "quiet": [{"start": "2027-01-04", "end": "2026-12-20"}]}, "ends before"),
        ({**SLACK, "quiet": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}]},
         "never ends"),
        ({**SLACK, "quiet": [{"from": "00:00", "to": "01:00"}, {"from": "01:00", "to": "00:00"}]},
         "sinks[0].quiet: covers every hour of every day, nothing would ever be sent"),
        ({**SLACK, "escalate": [{"after": "4h", "to": "nobody"}]}, "unknown sink 'nobody'"),
        ({**SLACK, "escalate": [{"after": "4h", "to": "slack"}, {"after": "1h", "to": "slack"}]},
         "increasing after"),
    ],
)  # fmt: skip
def test_refusals_are_one_line(tmp_path: Path, sink: dict[str, Any], said: str) -> None:
    (line,) = problems(write(tmp_path / "c.yaml", [sink]))
    assert said in line and "sinks" in line

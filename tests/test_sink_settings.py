"""Sink settings that are deliberate opt-outs: private addresses, unsigned webhooks, and the
Alertmanager hold. Each refusal is one line naming the sink and the key, never the URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from monitor.cli import main
from monitor.settings import load_settings
from tests.settingskit import problems

LOCAL = {"api": {"base_url": "http://127.0.0.1:9", "token": "t"}}
SECRET = "whsec_E5B7N8fWLN2cR4KbRXmGwdfUeRmQhjJXtLvkf078Xt0="
KINDS: dict[str, dict[str, Any]] = {
    "webhook": {"secret": SECRET},
    "slack": {},
    "alertmanager": {},
}


def write(path: Path, sinks: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({**LOCAL, "sinks": sinks}), encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://127.0.0.1:9000/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://2130706433/hook", "loopback"),
        ("https://0x7f.1/hook", "loopback"),
        ("https://localhost/hook", "loopback"),
        ("https://10.20.30.40/hook", "private"),
        ("https://[fd00::5]/hook", "unique-local"),
        ("https://[::ffff:169.254.169.254]/hook", "link-local"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://[ff02::1]/hook", "multicast"),
    ],
)
def test_non_public_literals_stop_start_up_naming_the_sink_and_key(
    tmp_path: Path, kind: str, url: str, reason: str
) -> None:
    secret_url = url + "/s3cret"
    sink = {"name": "target", "type": kind, "url": secret_url, **KINDS[kind]}
    (line,) = problems(write(tmp_path / "c.yaml", [sink]))
    assert line.startswith("sinks[0]: ")
    assert f"sink 'target' is a {reason} address" in line and "allow_private: true" in line
    assert "s3cret" not in line and url.split("/")[2] not in line


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_allow_private_lets_a_sink_reach_private_addresses(tmp_path: Path, kind: str) -> None:
    sinks = [
        {"name": "local", "type": kind, "url": "http://127.0.0.1:9093", "allow_private": True},
        {
            "name": "cluster",
            "type": kind,
            "url": "http://10.0.0.7:9093",
            "allow_private": True,
            "allow_http": True,
        },
    ]
    for sink in sinks:
        sink.update(KINDS[kind])
    settings = load_settings(write(tmp_path / "c.yaml", sinks))
    assert [s.allow_private for s in settings.sinks] == [True, True]


def test_private_but_not_loopback_still_needs_allow_http_for_plain_http(tmp_path: Path) -> None:
    sink = {"name": "am", "type": "alertmanager", "url": "http://10.0.0.7", "allow_private": True}
    (line,) = problems(write(tmp_path / "c.yaml", [sink]))
    assert "allow_http" in line


def test_a_webhook_without_a_secret_needs_unsigned(tmp_path: Path) -> None:
    hook = {"name": "ops", "type": "webhook", "url": "https://hooks.example.com/x"}
    (line,) = problems(write(tmp_path / "c.yaml", [hook]))
    assert line.startswith("sinks[0]: webhook sink 'ops' has no secret")
    assert "unsigned: true" in line
    assert load_settings(write(tmp_path / "c.yaml", [{**hook, "unsigned": True}])).sinks[0].unsigned
    (both,) = problems(write(tmp_path / "c.yaml", [{**hook, "unsigned": True, "secret": SECRET}]))
    assert "unsigned: true contradicts secret" in both
    slack = {"name": "s", "type": "slack", "url": "https://hooks.slack.com/x", "unsigned": True}
    (misplaced,) = problems(write(tmp_path / "c.yaml", [slack]))
    assert "unsigned only applies to webhook sinks" in misplaced


def test_hold_defaults_to_an_hour_and_is_validated(tmp_path: Path) -> None:
    am = {"name": "am", "type": "alertmanager", "url": "https://am.example.com"}
    assert load_settings(write(tmp_path / "c.yaml", [am])).sinks[0].hold == 3600.0
    assert load_settings(write(tmp_path / "c.yaml", [{**am, "hold": "2h"}])).sinks[0].hold == 7200
    bad = [
        ({**am, "hold": 0}, "sinks[0].hold: Input should be greater than 0"),
        ({**am, "hold": "30s", "resend_interval": "1m"}, "hold must be at least resend_interval"),
        (
            {"name": "w", "type": "webhook", "url": "https://h.example.com", "hold": "1h"},
            "hold only applies to alertmanager sinks",
        ),
    ]
    for sink, expected in bad:
        lines = problems(write(tmp_path / "c.yaml", [sink]))
        assert any(expected in line for line in lines), lines


def test_check_config_points_out_unsigned_and_private_sinks(tmp_path: Path) -> None:
    sinks = [
        {"name": "ops", "type": "webhook", "url": "https://hooks.example.com/x", "unsigned": True},
        {
            "name": "am",
            "type": "alertmanager",
            "url": "http://127.0.0.1:9093",
            "allow_private": True,
        },
    ]
    result = CliRunner().invoke(
        main, ["check-config", "--config", str(write(tmp_path / "c.yaml", sinks))]
    )
    assert result.exit_code == 0, result.output
    assert "spmon: warning: sink 'ops' sends unsigned deliveries (unsigned: true)" in result.stderr
    assert "spmon: warning: sink 'am' may reach private addresses" in result.stderr
    assert "unsigned: true" in result.stdout and "allow_private: true" in result.stdout

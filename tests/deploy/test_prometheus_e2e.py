"""End to end: a real Prometheus scrapes a real spmon polling the simulator, and the
ExamReviewsOverdue alert from deploy/prometheus/rules.yml goes to firing.

The rules are the shipped ones with `for:` removed (a `for` of minutes only delays the
same transition) and evaluated every second. Read back through Prometheus's HTTP API.
"""

from __future__ import annotations

import base64
import json
import shutil
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploykit import (
    DEPLOY,
    Proc,
    Stack,
    child_env,
    dashboard_exprs,
    free_port,
    http_get,
    load_json,
    wait_until,
)

ALERT_TIMEOUT = 90.0


def _rules_without_for(target: Path) -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text(encoding="utf-8"))
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            rule.pop("for", None)
    target.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Factory: start Prometheus scraping spmon at host:port every second; its base URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip(
            "prometheus is not installed (Debian package prometheus; .ci/deploy_checks.sh installs it)"
        )
    procs: list[Proc] = []

    def start(target: str) -> str:
        _rules_without_for(tmp_path / "rules.yml")
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": ["rules.yml"],
            "scrape_configs": [{"job_name": "spmon", "static_configs": [{"targets": [target]}]}],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        port = free_port()
        proc = Proc(
            "prometheus",
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            logs=tmp_path,
            env=child_env(),
            cwd=tmp_path,
        )
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        wait_until(
            f"Prometheus to become ready\n{proc.describe()}",
            lambda: proc.alive() and http_get(f"{base}/-/ready")[0] == 200,
            timeout=30,
        )
        return base

    yield start
    for proc in procs:
        proc.stop(grace=10)


def _api(base: str, path: str) -> Any:
    status, body = http_get(f"{base}{path}")
    assert status == 200, f"GET {path}: {status} {body[:500]}"
    payload = json.loads(body)
    assert payload["status"] == "success", payload
    return payload["data"]


def _firing(base: str, name: str) -> dict[str, Any] | None:
    for alert in _api(base, "/api/v1/alerts")["alerts"]:
        if alert["labels"]["alertname"] == name and alert["state"] == "firing":
            return dict(alert)
    return None


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_exam_reviews_overdue_fires_in_a_real_prometheus(
    spmon_stack: Callable[..., Stack], prometheus: Callable[[str], str]
) -> None:
    # Sessions move through their lifecycle every 10 s, so some reviews pass their
    # review-by date within the first minute; polling every second sees it at once.
    # The token expires in 3 days, so SpmonTokenExpiringSoon must fire as well.
    token = _jwt(exp=int(time.time()) + 3 * 86400)
    stack = spmon_stack(
        sessions=8,
        seed=3,
        change_every=10,
        settings_env={"SPMON_POLL__INTERVAL": "1s", "SPMON_API__TOKEN": token},
    )
    base = prometheus(stack.base_url.removeprefix("http://"))

    started = time.monotonic()

    def diagnose() -> str:
        targets = _api(base, "/api/v1/targets")["activeTargets"]
        overdue = _api(base, "/api/v1/query?query=spmon_reviews_overdue")["result"]
        alerts = _api(base, "/api/v1/alerts")["alerts"]
        return (
            f"targets={[(t['scrapeUrl'], t['health'], t['lastError']) for t in targets]}\n"
            f"spmon_reviews_overdue={overdue}\nalerts={alerts}\n{stack.describe()}"
        )

    try:
        alert = wait_until(
            "ExamReviewsOverdue to fire",
            lambda: _firing(base, "ExamReviewsOverdue"),
            timeout=ALERT_TIMEOUT,
            every=1.0,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{diagnose()}") from None

    assert time.monotonic() - started < ALERT_TIMEOUT
    assert alert["labels"]["job"] == "spmon"
    assert alert["labels"]["severity"] == "info"  # a count; per-session alerts page
    assert alert["annotations"]["runbook_url"].endswith("docs/runbook.md#examreviewsoverdue")
    assert float(alert["value"]) >= 1
    assert "exam session(s)" in alert["annotations"]["description"]

    expiring = wait_until(
        "SpmonTokenExpiringSoon to fire",
        lambda: _firing(base, "SpmonTokenExpiringSoon"),
        timeout=15,
        every=1.0,
    )
    assert expiring["annotations"]["runbook_url"].endswith("#spmontokenexpiringsoon")

    # The overdue count Prometheus alerted on is what spmon itself reported. Over the last
    # minute, not at this instant: the simulator keeps moving and may resolve it by now.
    query = urllib.parse.quote("max_over_time(spmon_reviews_overdue[1m])")
    (sample,) = _api(base, f"/api/v1/query?query={query}")["result"]
    assert float(sample["value"][1]) >= 1
    # spmon itself is healthy and scraped: the operational alerts stay quiet.
    (target,) = _api(base, "/api/v1/targets")["activeTargets"]
    assert target["health"] == "up", diagnose()
    # With `for:` stripped, an absent()-based rule can fire on an evaluation that ran before
    # the first scrape landed; it must clear on the next evaluations, and stay clear.
    quiet = ("SpmonDown", "SpmonApiAuthFailing", "SpmonPollErrorsHigh")
    wait_until(
        "the operational alerts to be quiet",
        lambda: all(_firing(base, name) is None for name in quiet),
        timeout=15,
        every=1.0,
    )

    # Every dashboard query is valid PromQL for this Prometheus and finds data.
    _dashboard_queries_find_data(base)


def _jwt(*, exp: int) -> str:
    """An unsigned-looking JWT with an exp claim; spmon reads exp without verifying."""

    def part(value: dict[str, Any]) -> str:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'exp': exp})}.c2lnbmF0dXJl"


def _grafana_to_promql(expr: str) -> str:
    """Substitute the dashboard's template variables the way Grafana would."""
    return (
        expr.replace("$__rate_interval", "15s")
        .replace('instance=~"$instance"', 'instance=~".+"')
        .replace("$job", "spmon")
    )


def _dashboard_queries_find_data(base: str) -> None:
    # rate() needs two scrapes inside its window: on a loaded machine the first seconds of
    # a run may not have them yet, so an empty answer is retried before it counts.
    dashboard = load_json(DEPLOY / "grafana" / "dashboards" / "spmon.json")
    queries = [
        (where, expr)
        for where, expr in dashboard_exprs(dashboard)
        if not expr.startswith("label_values(")
    ]
    empty: list[str] = []

    def all_have_data() -> bool:
        empty[:] = [
            f"{where}: {expr}"
            for where, expr in queries
            if not _api(
                base, f"/api/v1/query?query={urllib.parse.quote(_grafana_to_promql(expr))}"
            )["result"]
        ]
        return not empty

    try:
        wait_until("every dashboard query to find data", all_have_data, timeout=30, every=1.0)
    except AssertionError:
        raise AssertionError("dashboard queries without data:\n" + "\n".join(empty)) from None

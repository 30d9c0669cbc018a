"""One paging path per overdue review: a real Alertmanager with deploy/compose/alertmanager.yml
inhibits the aggregate ExamReviewsOverdue rule while a per-session ExamReviewOverdue alert (what
spmon's Alertmanager sink posts) fires, and lets it through when none does."""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from deploykit import DEPLOY, Proc, child_env, free_port, http_get, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.skip("prometheus-alertmanager is not installed (.ci/run installs it)")
    port = free_port()
    proc = Proc(
        "alertmanager",
        [
            binary,
            f"--config.file={DEPLOY / 'compose' / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'am'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        logs=tmp_path,
        env=child_env(),
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until("Alertmanager ready", lambda: http_get(base + "/-/ready")[0] == 200, timeout=30)
        yield base
    finally:
        proc.stop(grace=10)


def post(base: str, labels: dict[str, str]) -> None:
    now = datetime.now(UTC)
    alert = {
        "labels": labels,
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
    }
    request = urllib.request.Request(  # noqa: S310 - a loopback URL built by the test
        base + "/api/v2/alerts",
        data=json.dumps([alert]).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
        assert response.status == 200


def aggregate(base: str) -> dict[str, Any] | None:
    _, body = http_get(base + "/api/v2/alerts?inhibited=true")
    found = [
        a for a in json.loads(body or "[]") if a["labels"]["alertname"] == "ExamReviewsOverdue"
    ]
    return found[0] if found else None


def test_per_session_alerts_inhibit_the_aggregate_rule(alertmanager: str) -> None:
    post(alertmanager, {"alertname": "ExamReviewsOverdue", "severity": "info", "job": "spmon"})
    alone = wait_until("the aggregate alert", lambda: aggregate(alertmanager), timeout=20)
    assert alone["status"]["state"] == "active"  # no per-session alert: it is the signal

    post(
        alertmanager,
        {"alertname": "ExamReviewOverdue", "session": "ES" + "a" * 32, "severity": "warning"},
    )
    muted = wait_until(
        "the aggregate alert inhibited",
        lambda: (a := aggregate(alertmanager)) and a["status"]["inhibitedBy"] and a,
        timeout=20,
    )
    assert muted["status"]["state"] == "suppressed"

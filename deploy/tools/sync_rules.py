"""Write deploy/kubernetes/base/prometheusrule.yaml from deploy/prometheus/rules.yml.

The Prometheus rule file is the source of truth (promtool checks and unit-tests it);
Prometheus Operator users get the same groups wrapped in a PrometheusRule. The copy is
textual, so comments and block scalars survive. tests/deploy checks the two agree.

    python deploy/tools/sync_rules.py           # rewrite the PrometheusRule
    python deploy/tools/sync_rules.py --check   # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main", "render"]

DEPLOY = Path(__file__).resolve().parent.parent
SOURCE = DEPLOY / "prometheus" / "rules.yml"
TARGET = DEPLOY / "kubernetes" / "base" / "prometheusrule.yaml"

HEADER = """\
# GENERATED from deploy/prometheus/rules.yml by deploy/tools/sync_rules.py: do not edit.
# Prometheus Operator picks this up if its ruleSelector matches; for
# kube-prometheus-stack add the label release: <helm release> in an overlay.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: spmon
spec:
"""


def render(rules_text: str) -> str:
    """Wrap the `groups:` document of a rule file in a PrometheusRule `spec`."""
    lines = rules_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("groups:"))
    body = [f"  {line}" if line else "" for line in lines[start:]]
    return HEADER + "\n".join(body) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report a stale copy")
    args = parser.parse_args(argv)
    wanted = render(SOURCE.read_text(encoding="utf-8"))
    if args.check:
        if TARGET.read_text(encoding="utf-8") != wanted:
            print(f"{TARGET} is stale: run python deploy/tools/sync_rules.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Helpers for the deployment tests: PromQL names, Dockerfile parsing, spmon subprocesses.

Kept in one small module (not conftest) so that tests can import the plain functions;
the fixtures that own processes live in conftest.py.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEPLOY",
    "REPO",
    "Instruction",
    "Proc",
    "Stack",
    "Stage",
    "child_env",
    "dashboard_exprs",
    "dockerfile_stages",
    "dockerignore_excludes",
    "free_port",
    "http_get",
    "load_json",
    "load_yaml_docs",
    "metric_names",
    "python_module_argv",
    "rule_exprs",
    "wait_until",
]

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"

# --- PromQL ----------------------------------------------------------------------------

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VARS = re.compile(r"\$\{[^}]*\}|\$\w+")
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "atan2", "group_left", "group_right", "inf", "nan"}
)
# Grafana's label_values(metric{matchers}, label): the label is not a metric.
_LABEL_VALUES = re.compile(
    r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)?\s*(?:\{[^}]*\})?\s*(?:,\s*\w+\s*)?\)"
)


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression (or a Grafana variable query) selects.

    Not a parser: it strips what cannot hold a metric name (strings, label matchers, range
    selectors, grouping clauses), then keeps identifiers that are not function calls,
    keywords or the unit of a number/duration. Good enough for the expressions we write,
    and tests/deploy/test_metric_names.py pins its behaviour on tricky cases.
    """
    names = {name for name in _LABEL_VALUES.findall(expr) if name}
    text = _LABEL_VALUES.sub(" ", expr)
    for pattern in (_STRINGS, _GRAFANA_VARS, _MATCHERS, _RANGES, _GROUPING):
        text = pattern.sub(" ", text)
    for match in _IDENT.finditer(text):
        token = match.group(0)
        before = text[match.start() - 1] if match.start() else " "
        after = text[match.end() :].lstrip()
        if before.isdigit() or before == ".":
            continue  # 5m, 1e3, 0.5
        if after.startswith("(") or token.lower() in _KEYWORDS:
            continue
        names.add(token)
    return names


def rule_exprs(groups_doc: Mapping[str, Any]) -> dict[str, str]:
    """{alert or record name: expr} of a rule file's `groups` document."""
    out: dict[str, str] = {}
    for group in groups_doc["groups"]:
        for rule in group["rules"]:
            out[rule.get("alert") or rule["record"]] = rule["expr"]
    return out


def dashboard_exprs(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(where, expr) for every panel target and every query variable of a dashboard."""
    found: list[tuple[str, str]] = []

    def walk(panels: Sequence[Mapping[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((f"panel {panel['title']!r}", target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            found.append((f"variable {variable['name']!r}", text))
    return found


def load_yaml_docs(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# --- Dockerfile ------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction, or None for shell form."""
        text = self.args
        if self.keyword == "HEALTHCHECK":
            text = text.split(" CMD ", 1)[1] if " CMD " in f" {text}" else ""
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(text.strip())
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
        return None

    def env_pairs(self) -> dict[str, str]:
        """KEY=VALUE pairs of an ENV instruction (the legacy `ENV KEY VALUE` form too)."""
        words = shlex.split(self.args)
        if words and "=" not in words[0]:
            return {words[0]: " ".join(words[1:])}
        return dict(word.split("=", 1) for word in words)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for instruction in self.all("ENV"):
            merged.update(instruction.env_pairs())
        return merged


def _logical_lines(text: str) -> Iterator[str]:
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue  # comment inside a continuation
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        yield (current + line).strip()
        current = ""
    if current:
        yield current.strip()


def dockerfile_stages(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages of a Dockerfile (no variable expansion)."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(path.read_text(encoding="utf-8")):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        args = " ".join(args.split())
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif not stages:
            if keyword == "ARG" and "=" in args:
                key, value = args.split("=", 1)
                global_args[key] = value
        else:
            stages[-1].instructions.append(Instruction(keyword, args))
    return global_args, stages


def dockerignore_excludes(patterns: Sequence[str], path: str) -> bool:
    """Whether .dockerignore `patterns` keep `path` (relative, /-separated) out of the context.

    Later patterns win; `!` re-includes; a pattern that matches a directory covers its
    contents; `**/` matches any number of leading directories. That subset is what our
    .dockerignore uses.
    """
    excluded = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in patterns:
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        if any(_glob_match(prefix, pattern) for prefix in prefixes):
            excluded = not negate
    return excluded


def _glob_match(path: str, pattern: str) -> bool:
    if pattern.startswith("**/"):
        tail = pattern[3:]
        pieces = path.split("/")
        return any(fnmatch.fnmatchcase("/".join(pieces[i:]), tail) for i in range(len(pieces)))
    # Docker's globs do not let * cross a /.
    return len(path.split("/")) == len(pattern.split("/")) and all(
        fnmatch.fnmatchcase(p, q) for p, q in zip(path.split("/"), pattern.split("/"), strict=True)
    )


# --- processes and HTTP -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, *, timeout: float = 3.0) -> tuple[int, str]:
    """(status, body) of a GET; connection problems come back as status 0."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URLs built by the tests
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return 0, ""


def wait_until(what: str, check: Any, *, timeout: float, every: float = 0.25) -> Any:
    """Call `check()` until it returns something truthy; fail with `what` after `timeout` s.

    Subprocesses give us no readiness event to await, so this bounded poll is the one
    place the tests wait on wall time.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


class Proc:
    """A child process with its output in a file, stopped with SIGTERM then SIGKILL."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        logs: Path,
        env: Mapping[str, str],
        cwd: Path,
        preexec_user: tuple[int, int] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = logs / f"{name}.log"
        self._log = self.log_path.open("wb")
        extra: dict[str, Any] = {}
        if preexec_user is not None:
            uid, gid = preexec_user
            extra.update(user=uid, group=gid, extra_groups=[])
        self.popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            **extra,
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self, limit: int = 4000) -> str:
        self._log.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return text[-limit:]

    def describe(self) -> str:
        state = "running" if self.alive() else f"exited {self.popen.returncode}"
        return f"--- {self.name} ({state}): {shlex.join(self.argv)}\n{self.output()}"

    def stop(self, *, grace: float = 30.0) -> int:
        """SIGTERM, wait up to `grace` seconds, then SIGKILL; the exit code (negative: signal)."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self._log.close()
        return int(self.popen.returncode)


@dataclass
class Stack:
    simulator: Proc
    spmon: Proc
    config: Path
    state_dir: Path
    base_url: str
    hook_url: str

    @property
    def metrics_url(self) -> str:
        return f"{self.base_url}/metrics"

    def describe(self) -> str:
        return f"{self.simulator.describe()}\n{self.spmon.describe()}"


def child_env(**overrides: str) -> dict[str, str]:
    """The test's environment without any SPMON_ setting that could leak in, plus overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPMON_")}
    env.update(overrides)
    return env


def python_module_argv() -> list[str]:
    return [sys.executable, "-m", "monitor"]

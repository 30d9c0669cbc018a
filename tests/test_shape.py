"""The size limits the code keeps (docs/ARCHITECTURE.md): no module over 400 lines, no class
over 200. A module or class that grows past them has found a seam to split along."""

from __future__ import annotations

import ast
from pathlib import Path

MONITOR = Path(__file__).resolve().parents[1] / "monitor"


def test_no_module_over_400_lines_and_no_class_over_200() -> None:
    modules, classes = {}, {}
    for path in sorted(MONITOR.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(MONITOR.parent).as_posix()
        modules[where] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                classes[f"{where}:{node.name}"] = node.end_lineno - node.lineno + 1
    assert len(modules) > 50  # the walk found the package
    assert {m: n for m, n in modules.items() if n > 400} == {}
    assert {c: n for c, n in classes.items() if n > 200} == {}


def test_a_sqlite_process_never_imports_psycopg() -> None:
    """psycopg costs every process about 9 MB: it is imported where a PostgreSQL URL is
    opened, never by the CLI or the service on their own."""
    import subprocess
    import sys

    code = "import sys, monitor.cli, monitor.service; print('psycopg' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"


def test_the_cli_imports_tabulate_only_for_its_tables() -> None:
    """tabulate (about 2 MB) is for `spmon status|sessions|history`: `spmon run` never loads
    it, and `spmon --help` still lists those commands."""
    import subprocess
    import sys

    code = "import sys, monitor.cli; print('tabulate' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"
    helped = subprocess.run(
        [sys.executable, "-m", "monitor", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    listed = {line.split()[0] for line in helped.stdout.splitlines() if line.startswith("  ")}
    assert {"status", "sessions", "history", "run"} <= listed

"""Sink secrets kept out of the YAML: `${NAME}` from the environment, `*_file` from files.

Both are resolved in the raw YAML of `sinks:` before validation, so every check (https only,
whsec_ format, the address guard) applies to the value itself, and the value is a SecretStr
from then on. A problem names the key and the variable or path, never a value. A ConfigMap
can then hold the whole configuration while the URLs and passwords come from a Secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monitor.settings_files import read_setting_file

__all__ = ["resolve_sinks"]

_FILES = {"url_file": "url", "secret_file": "secret"}
"""A sink's own keys read from a file, and the key each one fills."""
_EMAIL_FILES = {"password_file": "password"}
_REFERENCE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


def resolve_sinks(
    raw: object, *, base: Path, environ: Mapping[str, str]
) -> tuple[object, list[str]]:
    """The `sinks:` list with references substituted and files read; and the problems, one
    line each. Relative paths are under `base`, the config file's folder."""
    if not isinstance(raw, list):
        return raw, []
    problems: list[str] = []
    resolved: list[object] = []
    for index, entry in enumerate(raw):
        where = f"sinks[{index}]"
        if not isinstance(entry, dict):
            resolved.append(entry)
            continue
        sink = _substitute(entry, where, environ, problems)
        sink = _read_files(sink, _FILES, where=where, base=base, problems=problems)
        if isinstance(sink.get("email"), dict):
            sink["email"] = _read_files(
                sink["email"], _EMAIL_FILES, where=f"{where}.email", base=base, problems=problems
            )
        resolved.append(sink)
    return resolved, problems


def _substitute(value: Any, where: str, environ: Mapping[str, str], problems: list[str]) -> Any:
    """`${NAME}` in any string of the entry becomes the variable's value; `$${NAME}` stays a
    literal `${NAME}`; an unset variable is a problem (an empty URL would fail later, vaguely)."""
    if isinstance(value, dict):
        return {k: _substitute(v, f"{where}.{k}", environ, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, f"{where}[{i}]", environ, problems) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        escaped, name = match.group(1), match.group(2)
        if escaped:
            return "${" + name + "}"
        if name not in environ:
            problems.append(f"{where}: environment variable {name} is not set")
            return ""
        return environ[name]

    return _REFERENCE.sub(one, value)


def _read_files(
    entry: dict[str, Any],
    keys: Mapping[str, str],
    *,
    where: str,
    base: Path,
    problems: list[str],
) -> dict[str, Any]:
    found = dict(entry)
    for file_key, key in keys.items():
        name = found.get(file_key)
        if name is None:
            continue
        if not isinstance(name, str) or not name:
            problems.append(f"{where}.{file_key}: must be a path")
            continue
        if found.get(key) is not None:
            problems.append(f"{where}.{file_key}: give {key} or {file_key}, not both")
            continue
        path, text, problem = read_setting_file(name, base, f"{where}.{file_key}")
        if text is None:
            problems.append(problem)
            continue
        if not text:
            problems.append(f"{where}.{file_key}: {path} is empty")
            continue
        found[key], found[file_key] = text, str(path)
    return found

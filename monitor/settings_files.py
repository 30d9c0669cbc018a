"""A setting's file (a token, a secret, a URL) read once at load: resolved against the config's
folder, stripped, and a read failure as one line naming the key and the path, never the text."""

from __future__ import annotations

from pathlib import Path

__all__ = ["read_setting_file"]


def read_setting_file(name: Path | str, base: Path, key: str) -> tuple[Path, str | None, str]:
    """(the resolved path, its text stripped or None, the problem or "")."""
    path = Path(name)
    if not path.is_absolute():
        path = base / path
    try:
        return path, path.read_text(encoding="utf-8").strip(), ""
    except OSError as exc:
        return path, None, f"{key}: cannot read {path} ({exc.strerror})"
    except UnicodeDecodeError:
        return path, None, f"{key}: {path} is not UTF-8 text"

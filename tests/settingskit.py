"""What settings tests share: a config file written from a dict, and the one-line problems a
bad one stops start-up with."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monitor.settings import ConfigError, load_settings

__all__ = ["LOCAL", "problems", "write"]

LOCAL = {"api": {"base_url": "http://127.0.0.1:9"}}
"""A local API, so no token is required."""


def write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return caught.value.lines

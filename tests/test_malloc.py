"""The allocator tuning `spmon run` applies first: glibc's mmap threshold held fixed."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from monitor import malloc

GLIBC = platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_pins_the_threshold_on_glibc() -> None:
    # In a process of its own: the setting lasts for the life of the process.
    code = "from monitor import malloc; print(malloc.pin_mmap_threshold())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert malloc.pin_mmap_threshold() is False

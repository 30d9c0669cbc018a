"""The C allocator's tuning for a long-lived process holding 100,000 sessions.

glibc raises its mmap threshold each time a large block served by mmap is freed, so that
later large blocks (a dict of 100,000 sessions as it doubles, 5,000 store rows at a time, a
CSV listing) come from the main heap instead, where the holes they leave when freed are never
given back. Pinning the threshold keeps every block of 128 KiB or more in its own mapping,
returned to the system when freed: at 100,000 sessions a restart peaks about 20 MB lower
(bench/memory.py). The same as `MALLOC_MMAP_THRESHOLD_=131072` in the environment, which,
when set, wins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Final

__all__ = ["MMAP_THRESHOLD", "pin_mmap_threshold"]

MMAP_THRESHOLD: Final = 128 * 1024
"""glibc's own default, kept fixed instead of sliding up to 32 MiB."""
_M_MMAP_THRESHOLD: Final = -3
"""mallopt's parameter number, from glibc's malloc.h."""


def pin_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold; False where there is no glibc (musl, macOS) or the
    environment already sets it."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        if not hasattr(libc, "gnu_get_libc_version"):
            return False  # musl's mallopt does nothing; say so
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))

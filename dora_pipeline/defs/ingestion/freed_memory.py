"""Give the memory a source's extraction freed back to the operating system.

A refresh runs its steps one after another in one process, and dbt's build then runs beside it
in a process of its own. After a large extraction (at a million deployments, GitLab's and
Gearset's) Python has freed its objects, but glibc's allocator keeps the freed pages in its arenas:
the refresh's process went on holding about 700 MB through dbt's build, a third of the whole
refresh's peak. `malloc_trim` hands those pages back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import cache


@cache
def _malloc_trim():
    """glibc's `malloc_trim`, or None on a C library without it (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    return getattr(ctypes.CDLL(name), "malloc_trim", None)


def release_freed_memory() -> None:
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)

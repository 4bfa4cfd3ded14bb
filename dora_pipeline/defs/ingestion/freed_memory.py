"""Keep the memory the sources' extraction frees from staying with the refresh's process.

A refresh runs its steps in one process, and dbt's build then runs beside it in a process of its
own. After a large extraction (at a million deployments, GitLab's and Gearset's) Python has freed
its objects, but the allocators keep the freed pages: glibc's in its arenas (one per thread that
allocated, up to eight per core: the sources extract in threads of their own) and Arrow's in its
pool (dlt writes Parquet through it). At a million deployments the refresh's process held 700 to
900 MB through dbt's build. Two arenas for the process instead of one per thread (glibc's
`mallopt(M_ARENA_MAX)`) and `malloc_trim` plus Arrow's `release_unused` after the extraction hand
most of that back: about 120 MB less at 30 % of that size for the arenas alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import cache

# glibc's mallopt parameter number for the most arenas the allocator may create
M_ARENA_MAX = -8
ARENAS = 2


@cache
def _libc():
    """glibc, or None on a C library without its allocator's controls (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def share_allocator_arenas() -> None:
    """Before the sources' threads start: they share a couple of arenas rather than each taking
    its own, which it keeps half-empty once its source is done."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, ARENAS)


def release_freed_memory() -> None:
    gc.collect()
    import pyarrow

    pyarrow.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)

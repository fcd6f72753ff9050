"""Giving freed memory back to the operating system between the big steps of a study."""
from __future__ import annotations


def release_memory() -> None:
    """Give freed memory back to the system: Arrow's pool (mimalloc) and glibc keep it otherwise, so that a
    table read and dropped would count against the process's resident memory for the rest of a study."""
    import ctypes
    import gc

    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass

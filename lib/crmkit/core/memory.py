"""Give freed memory back to the system, for a process that goes on after dropping big frames.

Dropping a frame frees it to the allocators, not to the system: glibc's ``malloc`` and pyarrow's
memory pool (which holds pandas' pyarrow strings) keep the pages for the next allocation. A
process that has dropped a million customers' history and goes on with other work (the runner
after saving the inputs, a kernel between two workbooks) would hold the peak to its end. Written
by hand because no library does this small thing: three calls, each skipped where it does not
apply.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys

__all__ = ["release_unused"]


def release_unused() -> None:
    """Collect garbage, then return the pages the allocators hold unused to the system."""
    gc.collect()
    if "pyarrow" in sys.modules:  # never imported only for this
        sys.modules["pyarrow"].default_memory_pool().release_unused()
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc (macOS, musl): the pages stay with the process until it ends

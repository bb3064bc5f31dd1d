"""release_unused gives freed memory back to the system (what the runner and kernels rely on)."""

import platform
import subprocess
import sys

import pytest

# Two megabyte-sized blocks in a hundred stay: glibc cannot shrink its heap past them, so the
# freed pages between them go back to the system only when asked (malloc_trim).
SCATTERED = """
import gc, psutil
from crmkit.core.memory import release_unused
blocks = [bytes(2000) + str(i).encode() for i in range(200_000)]
kept = blocks[::50]
del blocks
gc.collect()
before = psutil.Process().memory_info().rss
release_unused()
print((before - psutil.Process().memory_info().rss) // 2**20)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_pages_freed_between_kept_blocks_go_back_to_the_system():
    out = subprocess.run([sys.executable, "-c", SCATTERED], capture_output=True, text=True,
                         check=True, timeout=60)
    returned_mib = int(out.stdout)
    assert returned_mib > 250  # of the ~390 MiB freed, nearly all


def test_it_runs_where_pyarrow_was_never_imported():
    out = subprocess.run([sys.executable, "-c", "import sys\n"
                          "from crmkit.core.memory import release_unused\n"
                          "release_unused()\nprint('pyarrow' in sys.modules)"],
                         capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["False"]

"""Kernels started ahead: a workbook that waits for another gets its kernel ready meanwhile.

A workbook's time under papermill is about half its kernel's start: the Python process, then
the imports of its first cells (pandas, plotly, the crmkit stages it uses), 1-1.5 s on this
machine class before the first figure. Workbooks 03-05 wait for 02's per-customer table; while
02 computes, the core that 01 has left free starts their kernels and runs their import
statements, so that when 02 is done they only compute (``benchmarks/run_report.py``).

The import statements are the workbook's own top-level ``import``/``from … import`` lines, run
at the kernel's start (``IPKernelApp.exec_lines``) in a scratch namespace: the modules are
loaded, no name is bound in the notebook's namespace, and the notebook still runs every line
itself, so what a reader sees is what ran. An import that fails there fails again, with its
message, in the notebook's own cell.

:class:`Cores` shares the machine's cores between the workbooks that compute and the kernels
being started ahead, the first always before the second, so starting kernels ahead never slows
the workbook everything waits for. Written here because neither papermill nor nbclient runs
notebooks as a graph; nbclient does accept a started kernel (``km``), which is all this needs.
"""

from __future__ import annotations

import ast
import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["Cores", "import_lines", "preload_argument", "start_kernel"]

#: Kernels' socket names within a run's folder of sockets (short: a Unix socket's path is at most
#: about a hundred characters).
_NUMBERS = itertools.count(1)


class Cores:
    """At most ``n`` jobs at once; a job that computes goes before one that only prepares.

    Parameters
    ----------
    n : int
        Jobs at once (the runner's :data:`~crmkit.delivery.runner.PARALLEL_WORKBOOKS`).
    """

    def __init__(self, n: int):
        self._free = n
        self._urgent_waiting = 0
        self._changed = threading.Condition()

    @contextmanager
    def held(self, *, urgent: bool) -> Iterator[None]:
        """Hold one core; ``urgent`` (a workbook to run) waits only for a free core."""
        with self._changed:
            self._urgent_waiting += urgent
            self._changed.wait_for(
                lambda: self._free > 0 and (urgent or self._urgent_waiting == 0))
            self._urgent_waiting -= urgent
            self._free -= 1
        try:
            yield
        finally:
            with self._changed:
                self._free += 1
                self._changed.notify_all()


def import_lines(notebook: str | Path) -> str:
    """The top-level import statements of a notebook's code cells, in order, one per line.

    A cell that is not plain Python (a magic, a syntax error) is skipped: the notebook itself
    will say what is wrong with it.
    """
    cells = json.loads(Path(notebook).read_text(encoding="utf-8")).get("cells", [])
    statements: list[str] = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        try:
            tree = ast.parse("".join(source) if isinstance(source, list) else source)
        except SyntaxError:
            continue
        statements += [ast.unparse(node) for node in tree.body
                       if isinstance(node, ast.Import | ast.ImportFrom)]
    return "\n".join(dict.fromkeys(statements))


def preload_argument(notebook: str | Path) -> list[str]:
    """The kernel argument that runs the notebook's imports at start, in a scratch namespace."""
    code = import_lines(notebook)
    if not code:
        return []
    return [f"--IPKernelApp.exec_lines=exec({code!r}, {{}})"]


def start_kernel(notebook: str | Path, *, cwd: str | Path, arguments: list[str],
                 sockets: str | Path | None = None, kernel_name: str = "python3",
                 timeout: float = 60):
    """Start a kernel for ``notebook`` with its imports loaded; return its manager, ready.

    The manager is asynchronous, as nbclient's own are, and is started on the calling thread's
    event loop, the one papermill will run the notebook on (``km=`` of
    :func:`papermill.execute_notebook`). The caller shuts it down
    (``run_sync(km.shutdown_kernel)(now=True)``): a kernel it was given is not nbclient's.

    With ``sockets`` (a folder), the kernel talks over Unix sockets in that folder instead of
    TCP ports on 127.0.0.1: a TCP port is picked free and taken by the kernel a moment later, so
    two runs side by side (``crmkit batch``, two test processes) can pick the same one and a
    kernel dies before its first cell; a socket file of its own cannot be taken.
    """
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    if sockets is None:
        manager = AsyncKernelManager(kernel_name=kernel_name)
    else:
        manager = AsyncKernelManager(kernel_name=kernel_name, transport="ipc",
                                     ip=str(Path(sockets) / f"k{next(_NUMBERS)}"))
    run_sync(manager.start_kernel)(extra_arguments=arguments + preload_argument(notebook),
                                   cwd=str(cwd))
    client = manager.client()
    client.start_channels()
    try:
        run_sync(client.wait_for_ready)(timeout=timeout)
    except BaseException:
        run_sync(manager.shutdown_kernel)(now=True)
        raise
    finally:
        client.stop_channels()
    return manager

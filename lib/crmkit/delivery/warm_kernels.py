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

__all__ = ["LAZY", "Cores", "fresh_namespace", "import_lines", "preload_argument", "preload_code",
           "start_kernel"]

#: Kernels' socket names within a run's folder of sockets (short: a Unix socket's path is at most
#: about a hundred characters).
_NUMBERS = itertools.count(1)


class Cores:
    """At most ``n`` jobs at once; of the jobs waiting for a core, the lowest ``rank`` goes first.

    The runner ranks a workbook that can compute before any job that only prepares (a kernel
    started ahead, the printer), so preparing never slows the workbook everything waits for.

    Parameters
    ----------
    n : int
        Jobs at once (the runner's :data:`~crmkit.delivery.runner.PARALLEL_WORKBOOKS`).
    """

    def __init__(self, n: int):
        self._free = n
        self._waiting: list[tuple[int, tuple[threading.Event, ...]]] = []
        self._changed = threading.Condition()

    @contextmanager
    def held(self, rank: int, after: tuple[threading.Event, ...] = (),
             asked: threading.Event | None = None) -> Iterator[None]:
        """Hold one core, once it is free, what the job needs is done (``after``) and no job
        of a lower rank that could start waits for it. ``asked`` is set as soon as the job is
        in the queue (so another job can wait until it is)."""
        entry = (rank, tuple(after))
        with self._changed:
            self._waiting.append(entry)
            if asked is not None:
                asked.set()
                self._changed.notify_all()
            self._changed.wait_for(lambda: self._free > 0 and self._can_start(entry))
            self._waiting.remove(entry)
            self._free -= 1
            self._changed.notify_all()  # the next lowest may take another free core
        try:
            yield
        finally:
            with self._changed:
                self._free += 1
                self._changed.notify_all()

    def done(self, event: threading.Event) -> None:
        """Say that what ``event`` stands for is done, before the core of the job is freed.

        Setting it under the same lock as the freeing is what lets a workbook that waited for
        it take that core, rather than a job of a higher rank that merely waited longer.
        """
        with self._changed:
            event.set()
            self._changed.notify_all()

    def _can_start(self, entry) -> bool:
        def ready(waiting) -> bool:
            return all(event.is_set() for event in waiting[1])

        return ready(entry) and entry[0] <= min(w[0] for w in self._waiting if ready(w))


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


#: Run after a workbook's imports: a crmkit module that imports a heavy library inside a function
#: (so that the command line starts fast) names it in ``LAZY_IMPORTS``; a kernel started ahead
#: loads it too, or the workbook would pay for it on the run's critical path (scipy.optimize,
#: half a second, in workbook 05's first cell of figures).
LAZY = """import importlib as _importlib, sys as _sys
for _module in [m for n, m in list(_sys.modules.items()) if n.startswith("crmkit")]:
    for _name in getattr(_module, "LAZY_IMPORTS", ()):
        _importlib.import_module(_name)
"""


def preload_code(notebook: str | Path) -> str:
    """The notebook's imports, then the lazy imports of the crmkit modules they loaded."""
    code = import_lines(notebook)
    return f"{code}\n{LAZY}" if code else ""


def preload_argument(notebook: str | Path) -> list[str]:
    """The kernel argument that runs the notebook's imports at start, in a scratch namespace."""
    code = preload_code(notebook)
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


#: Run in a kernel between two workbooks: IPython's own reset empties the namespace, the
#: outputs and the history and numbers the next cell 1 again; the first workbook's frames then go
#: back to the system (:func:`crmkit.core.memory.release_unused`: without it, a kernel that ran
#: workbook 01 on a million customers would keep its gigabytes while it waits for 02 to end).
#: The next workbook's imports then load as at a start. The run's inputs and steps the kernel
#: keeps (:func:`crmkit.delivery.steps.forget`) are kept only when the next workbook starts at
#: once: not while it waits for another one that holds a big client's history of its own.
_FRESH = """get_ipython().reset(new_session=True)
exec(KEPT, {})
exec("from crmkit.core.memory import release_unused; release_unused()", {})
try:
    exec(IMPORTS, {})
except Exception:
    pass  # the notebook's own import cell will say what is wrong
"""


#: Drops what the kernel keeps for the next workbook of a run; only modules the first workbook
#: loaded have anything to forget, so none is imported for it.
_FORGET = """import sys
for name in ("crmkit.delivery.steps", "crmkit.inputs.cache"):
    if name in sys.modules:
        sys.modules[name].forget()
"""


def fresh_namespace(manager, notebook: str | Path, *, keep: bool = False,
                    timeout: float = 60) -> None:
    """Make a kernel that has run one workbook ready for ``notebook``, as if newly started.

    Everything the first workbook defined is gone (:data:`_FRESH`); only the modules it
    imported stay loaded, as :func:`preload_argument` would have loaded them, and with ``keep``
    the run's inputs and steps the first one read and computed. The reset runs silently: it is
    in no notebook and numbers no cell.
    """
    from jupyter_core.utils import run_sync

    code = (_FRESH.replace("IMPORTS", repr(preload_code(notebook)))
            .replace("KEPT", repr("" if keep else _FORGET)))

    async def reset() -> dict:
        client = manager.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=timeout)
            return await client.execute_interactive(code, silent=True, store_history=False,
                                                    timeout=timeout, output_hook=lambda _: None)
        finally:
            client.stop_channels()

    reply = run_sync(reset)()
    if reply["content"]["status"] != "ok":
        content = reply["content"]
        raise RuntimeError(f"the kernel could not be emptied for {Path(notebook).name}: "
                           f"{content.get('ename')}: {content.get('evalue')}")

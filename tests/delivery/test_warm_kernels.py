"""The run as a graph: workbooks start when what they need is done, kernels are started ahead."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client import BlockingKernelClient
from jupyter_core.utils import run_sync
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from crmkit.delivery import runner, warm_kernels
from crmkit.delivery.warm_kernels import Cores, import_lines

BOOKS = ["01_context", "02_segments", "03_relationships", "04_cost_benefit",
         "05_implementation"]


def _notebook(path, *sources):
    cells = [new_markdown_cell("# A workbook\n\nimport nothing from here")]
    cells += [new_code_cell(source) for source in sources]
    nbformat.write(new_notebook(cells=cells), path)
    return path


def test_import_lines_are_the_notebooks_own_top_level_imports(tmp_path):
    book = _notebook(tmp_path / "nb.ipynb",
                     "client_dir = 'x'",
                     "import json\nfrom pathlib import Path as P\nwb = 1",
                     "%matplotlib inline\nimport this_is_skipped",  # not plain Python
                     "def later():\n    import csv  # run only if called\n",
                     "import json")  # once is enough
    assert import_lines(book) == "import json\nfrom pathlib import Path as P"


def test_a_notebook_without_imports_gets_no_preload(tmp_path):
    book = _notebook(tmp_path / "nb.ipynb", "1 + 1")
    assert warm_kernels.preload_argument(book) == []


def test_a_started_kernel_has_the_modules_loaded_and_no_name_bound(tmp_path):
    book = _notebook(tmp_path / "nb.ipynb", "import colorsys as c\nfrom email import utils")
    km = warm_kernels.start_kernel(book, cwd=tmp_path, arguments=runner.KERNEL_ARGUMENTS,
                                   sockets=tmp_path)
    assert km.transport == "ipc" and Path(km.ip).parent == tmp_path  # no TCP port to race for
    client = BlockingKernelClient()
    client.load_connection_info(km.get_connection_info())
    client.start_channels()
    seen: list[str] = []
    try:
        client.execute_interactive(
            "import os, sys\n"
            "print('colorsys' in sys.modules, 'email.utils' in sys.modules,"
            " 'c' in globals(), 'utils' in globals(), os.getcwd())",
            output_hook=lambda msg: seen.append(msg["content"].get("text", "")), timeout=30)
    finally:
        client.stop_channels()
        run_sync(km.shutdown_kernel)(now=True)
    assert "".join(seen).split() == ["True", "True", "False", "False", str(tmp_path)]


def _run(km, code) -> tuple[str, int]:
    """What ``code`` prints in the kernel, and the number the kernel gave the cell."""
    client = BlockingKernelClient()
    client.load_connection_info(km.get_connection_info())
    client.start_channels()
    seen: list[str] = []
    try:
        reply = client.execute_interactive(
            code, output_hook=lambda msg: seen.append(msg["content"].get("text", "")),
            timeout=30)
    finally:
        client.stop_channels()
    return "".join(seen), reply["content"]["execution_count"]


def test_an_emptied_kernel_keeps_its_modules_and_nothing_the_workbook_before_defined(tmp_path):
    first = _notebook(tmp_path / "01.ipynb", "import colorsys")
    second = _notebook(tmp_path / "05.ipynb", "from email import utils")
    km = warm_kernels.start_kernel(first, cwd=tmp_path, arguments=runner.KERNEL_ARGUMENTS,
                                   sockets=tmp_path)
    try:
        _run(km, "import colorsys\ncustomers = 'every history of workbook 01'")
        _run(km, "2 + 2")
        warm_kernels.fresh_namespace(km, second)
        printed, number = _run(km, "import sys\nprint('customers' in globals(),"
                                   " 'colorsys' in globals(), 'colorsys' in sys.modules,"
                                   " 'email.utils' in sys.modules, 'utils' in globals())")
    finally:
        run_sync(km.shutdown_kernel)(now=True)
    # 01's names are gone, its modules stay loaded, 05's imports are loaded ahead and bound to
    # no name, and the kernel numbers 05's first cell 1, as a kernel of its own would
    assert printed.split() == ["False", "False", "True", "True", "False"]
    assert number == 1


@pytest.mark.parametrize("keep", [False, True])
def test_an_emptied_kernel_keeps_the_runs_inputs_only_for_a_workbook_that_starts_at_once(
        tmp_path, keep):
    book = _notebook(tmp_path / "04.ipynb", "import json")
    km = warm_kernels.start_kernel(book, cwd=tmp_path, arguments=runner.KERNEL_ARGUMENTS,
                                   sockets=tmp_path)
    try:
        _run(km, "from crmkit.inputs import cache\ncache._kept = (('run', 'manifest'), {})")
        warm_kernels.fresh_namespace(km, book, keep=keep)
        printed, _ = _run(km, "import sys\n"
                              "print(sys.modules['crmkit.inputs.cache']._kept is not None)")
    finally:
        run_sync(km.shutdown_kernel)(now=True)
    assert printed.split() == [str(keep)]


def test_a_workbook_to_run_gets_the_core_before_a_kernel_started_ahead():
    cores = Cores(1)
    order: list[str] = []
    with cores.held(rank=0):
        waiting = []
        for name, rank in (("printer", 20), ("ahead", 10), ("run 04", 4), ("run 05", 1)):
            waiting.append(threading.Thread(target=_hold, args=(cores, rank, order, name)))
            waiting[-1].start()
            time.sleep(0.05)
    for thread in waiting:
        thread.join(5)
    assert order == ["run 05", "run 04", "ahead", "printer"]


def _hold(cores, rank, order, name):
    with cores.held(rank=rank):
        order.append(name)
        time.sleep(0.01)


class _Kernel:
    """Stands for a started kernel: counts its shutdowns."""

    def __init__(self, log, name):
        self.log, self.name, self.started_for = log, name, name

    async def shutdown_kernel(self, now=False):
        self.log.append(("shutdown", self.started_for))


@pytest.fixture
def books(tmp_path, monkeypatch):
    log: list[tuple] = []

    def start(book, **_):
        log.append(("kernel", book.stem))
        return _Kernel(log, book.stem)

    def fresh(km, book, keep=False, **_):
        log.append(("fresh", book.stem))
        log.append(("keep" if keep else "forget", book.stem))
        km.name = book.stem

    monkeypatch.setattr(runner, "start_kernel", start)
    monkeypatch.setattr(runner, "fresh_namespace", fresh)
    return [tmp_path / f"{name}.ipynb" for name in BOOKS], log


def test_the_graph_runs_each_workbook_after_what_it_needs(books):
    paths, log = books
    spans: dict[str, tuple[float, float]] = {}
    lock = threading.Lock()
    running = []

    def execute(book, km):
        with lock:
            running.append(book.stem)
            peak.append(len(running))
        started = time.perf_counter()
        time.sleep(0.3 if book.stem == "02_segments" else 0.1)
        spans[book.stem] = (started, time.perf_counter())
        with lock:
            running.remove(book.stem)
        assert km is not None and km.name == book.stem

    peak: list[int] = []
    done = runner.run_graph(paths, execute)
    assert [(b.stem, e) for b, e in done] == [(name, None) for name in BOOKS]
    for later in BOOKS[2:]:
        assert spans[later][0] >= spans["02_segments"][1]
    assert max(peak) == runner.PARALLEL_WORKBOOKS
    # three kernels (runner.SHARED_KERNELS): 05 ran in 01's, emptied first, and 04 in 03's;
    # every kernel was shut down after
    kernels = ["01_context", "02_segments", "03_relationships"]
    assert sorted(n for what, n in log if what == "kernel") == kernels
    assert sorted(n for what, n in log if what == "fresh") == ["04_cost_benefit",
                                                                "05_implementation"]
    assert sorted(n for what, n in log if what == "shutdown") == kernels
    assert log.index(("fresh", "05_implementation")) > log.index(("kernel", "01_context"))
    # 05's kernel was emptied while 02 still computed, so it keeps nothing of 01's; 04 starts
    # as soon as 03 is done, in the kernel that holds 03's inputs and steps
    assert ("forget", "05_implementation") in log and ("keep", "04_cost_benefit") in log


def test_a_failure_stops_the_workbooks_that_have_not_started(books):
    paths, log = books

    def execute(book, km):
        if book.stem == "02_segments":
            raise RuntimeError("no customers")

    done = runner.run_graph(paths, execute)
    assert [b.stem for b, _ in done] == ["01_context", "02_segments"]
    assert isinstance(dict((b.stem, e) for b, e in done)["02_segments"], RuntimeError)
    started = {n for what, n in log if what == "kernel"}
    assert started == {n for what, n in log if what == "shutdown"}  # none left running


def test_a_consultants_own_workbook_waits_for_every_one_before_it(books, tmp_path):
    paths, _ = books
    paths = paths + [tmp_path / "06_own.ipynb"]
    ended: dict[str, float] = {}
    began: dict[str, float] = {}

    def execute(book, km):
        began[book.stem] = time.perf_counter()
        time.sleep(0.05)
        ended[book.stem] = time.perf_counter()

    runner.run_graph(paths, execute)
    assert began["06_own"] >= max(ended[name] for name in BOOKS)

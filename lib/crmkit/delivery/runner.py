"""Running the workbooks for a client and writing the run folder.

A run validates the workspace (nothing is written when it is invalid), executes the numbered
workbooks in order with papermill, merges each workbook's key figures into ``results.json``,
writes the key tables the workbooks exported into ``tables.xlsx``, renders ``report.html``,
prints it to ``report.pdf`` with headless Chromium (when there is none, or it fails, a one-line
notice says so on stderr and the run goes on without the PDF) and records ``run.json``
(checksums of the inputs, parameters, package versions, timings). Everything is written into a
hidden staging folder beside the final one and renamed into place at the end, so
``REPORTS_DIR/<slug>/<timestamp>/`` appears whole or not at all (the PDF included).

When a workbook fails, the staging folder is renamed ``<timestamp>-failed`` so that the executed
notebook with the error can be opened; earlier runs are never touched.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from crmkit import __version__
from crmkit.core import paths
from crmkit.core.i18n import Formatter, t
from crmkit.core.memory import release_unused
from crmkit.core.problems import UserError
from crmkit.delivery import SECTIONS
from crmkit.delivery.report import render_report
from crmkit.delivery.warm_kernels import Cores, fresh_namespace, start_kernel
from crmkit.inputs import cache as inputs_cache
from crmkit.inputs.workspace import _sha256_file as sha256_file
from crmkit.inputs.workspace import load_workspace

#: Packages whose versions are recorded in run.json.
RECORDED_PACKAGES = ("crmkit", "numpy", "pandas", "scipy", "scikit-learn", "plotly", "papermill",
                     "nbformat", "pydantic", "pyarrow", "babel", "jinja2", "markdown-it-py")


def _register_engine() -> str:
    """A papermill engine that writes the executed notebook once, at the end.

    Papermill's own engine rewrites (and re-validates) the whole notebook before and after every
    cell, which costs more than the cells of a workbook full of charts. The final notebook, or the
    one with the error, is still written by papermill itself.
    """
    from papermill.engines import NBClientEngine, papermill_engines

    class WriteOnceEngine(NBClientEngine):
        @classmethod
        def execute_notebook(cls, nb, kernel_name, output_path=None, **kwargs):
            return super().execute_notebook(nb, kernel_name, output_path=None, **kwargs)

    papermill_engines.register("crmkit", WriteOnceEngine)
    return "crmkit"


#: The kernel's own start-up chatter (e.g. about TCP transport) is not for the consultant.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]

#: Seconds nbclient waits for a cell's last output after the kernel has replied (its default is
#: 4). On a loaded machine (a batch, a test run beside another) the outputs can come later than
#: that, and nbclient's giving up on them then surfaces as "Kernel died" with the kernel alive.
IOPUB_TIMEOUT = 60


def workbooks() -> list[Path]:
    """The consultant's workbooks, in order (``workbooks/NN_name.ipynb``)."""
    return sorted(paths.WORKBOOKS.glob("[0-9][0-9]_*.ipynb"))


#: Workbooks computing side by side at most (a kernel each; this machine class has two cores).
PARALLEL_WORKBOOKS = 2
#: What each workbook needs from the others: 01 and 02 need nothing; 03-05 read the per-customer
#: table of 02 (``tables/customers.parquet``) and nothing of each other.
NEEDS = {"01_context": (), "02_segments": (),
         "03_relationships": ("02_segments",), "04_cost_benefit": ("02_segments",),
         "05_implementation": ("02_segments",)}
#: Who gets a free core first (:class:`~crmkit.delivery.warm_kernels.Cores`): a workbook that can
#: compute, the longest of those first — 05 computes about twice as long as 03 or 04, and all
#: three wait for 02, so 05 starting last would end the workbooks a second later —, then the
#: kernels started ahead, then the printer getting ready (:class:`crmkit.delivery.pdf.Printer`).
LONGEST_FIRST = ("02_segments", "05_implementation", "01_context", "04_cost_benefit",
                 "03_relationships")
RANK_KERNEL_AHEAD, RANK_PREPARE = 100, 200
#: A client with more transaction lines than this gets its printer ready only once the workbooks
#: are done. Chromium holds about 0.4 GiB while it waits, which at the workbooks' peak a big client
#: cannot spare (the 6 GB of a million customers), and such a client's tables.xlsx takes longer
#: to write than the printer to get ready beside it (a one-sheet-per-table workbook of 50,000-row
#: sheets: 15 s at a million customers), so its PDF is not later. A smaller client's printer gets
#: ready ahead on a free core: its PDF comes two seconds sooner (``benchmarks/run_report.py``).
PRINTER_AHEAD_MAX_LINES = 2_000_000
#: Workbooks that run one after the other in one kernel, emptied between them
#: (:func:`~crmkit.delivery.warm_kernels.fresh_namespace`): a kernel's start, with its imports,
#: is a core-second, and five of them were a fifth of a run's work. 05 follows 01 (which is done
#: long before 02, so 05's kernel is ready when 02 is) and 04 follows 03; 02 keeps a kernel of
#: its own, shut down when it is done, because it holds every customer's history.
SHARED_KERNELS = (("01_context", "05_implementation"), ("02_segments",),
                  ("03_relationships", "04_cost_benefit"))


def kernel_chains(books: list[Path]) -> list[tuple[Path, ...]]:
    """The workbooks grouped by the kernel they run in (:data:`SHARED_KERNELS`), in order."""
    by_name = {book.stem: book for book in books}
    chains = [tuple(by_name[n] for n in names if n in by_name) for names in SHARED_KERNELS]
    chains = [chain for chain in chains if chain]
    shared = {book for chain in chains for book in chain}
    return chains + [(book,) for book in books if book not in shared]


def _kernel_for(book: Path, km, sockets, *, at_once: bool):
    """A kernel ready for ``book``: a new one, or the chain's, emptied of the workbook before.

    ``at_once``: the workbook runs as soon as its kernel is ready, so the chain's kernel keeps
    the run's inputs and steps for it (:func:`~crmkit.delivery.warm_kernels.fresh_namespace`).
    """
    if km is None:
        return start_kernel(book, cwd=paths.WORKBOOKS, arguments=KERNEL_ARGUMENTS,
                            sockets=sockets)
    fresh_namespace(km, book, keep=at_once)
    return km


def run_graph(books: list[Path], execute, finished=None, prepare=()
              ) -> list[tuple[Path, BaseException | None]]:
    """Run the workbooks as soon as what they need is done, at most :data:`PARALLEL_WORKBOOKS`
    computing at once; a workbook that must wait gets its kernel started meanwhile
    (:mod:`crmkit.delivery.warm_kernels`).

    Parameters
    ----------
    books : list of Path
        The workbooks, in order.
    execute : callable
        ``execute(book, km)`` runs one workbook in ``km``, its started kernel's manager (Unix
        sockets, :func:`~crmkit.delivery.warm_kernels.start_kernel`).
    finished : callable, optional
        ``finished(book, seconds)`` after each workbook that succeeded.
    prepare : iterable of callables
        Jobs that get something ready for after the workbooks (the printer), each run once on a
        core no workbook and no kernel started ahead is waiting for. They are not waited for:
        one may still be running when this returns, and what it prepares must wait for it.

    Returns
    -------
    list of (Path, exception or None)
        Every workbook that ran, in the workbooks' order, with the error that stopped it. Once
        one fails, the workbooks not yet started are not started, and the ones running finish:
        the caller judges the failure when nothing writes to the run folder any more.
    """
    from jupyter_core.utils import run_sync

    cores = Cores(PARALLEL_WORKBOOKS)
    events = {book.stem: threading.Event() for book in books}
    failed = threading.Event()
    outcome: dict[Path, BaseException | None] = {}

    def rank(book: Path) -> int:
        order = LONGEST_FIRST + tuple(b.stem for b in books)
        return order.index(book.stem)

    def needs(book: Path) -> list[threading.Event]:
        names = NEEDS.get(book.stem, [b.stem for b in books[:books.index(book)]])
        return [events[n] for n in names if n in events]

    def run(chain: tuple[Path, ...], asked: threading.Event) -> None:
        km = None
        book = chain[0]
        try:
            for book in chain:
                if failed.is_set():
                    return
                waits = needs(book)
                ready = False
                if not all(e.is_set() for e in waits):  # it will wait: its kernel gets ready
                    with cores.held(rank=RANK_KERNEL_AHEAD + rank(book),  # on a free core
                                    asked=asked):
                        if not failed.is_set():
                            km = _kernel_for(book, km, sockets, at_once=False)
                            ready = True
                with cores.held(rank=rank(book), after=tuple(waits), asked=asked):
                    if failed.is_set():
                        return
                    started = time.perf_counter()
                    try:
                        km = km if ready else _kernel_for(book, km, sockets, at_once=True)
                        execute(book, km)
                        outcome[book] = None
                    except BaseException as error:  # noqa: BLE001 - judged by the caller
                        outcome[book] = error
                        failed.set()
                    cores.done(events[book.stem])  # before its core is free: see Cores.done
                if outcome[book] is not None:
                    return
                if finished:
                    finished(book, time.perf_counter() - started)
        except BaseException as error:  # noqa: BLE001 - judged by the caller, in order
            outcome.setdefault(book, error)
            failed.set()
        finally:
            if km is not None:
                run_sync(km.shutdown_kernel)(now=True)
            asked.set()
            for book in chain:
                cores.done(events[book.stem])  # nothing waits for a workbook that will not run

    def get_ready(job) -> None:
        # Once every kernel's first job has asked for a core, the rank alone decides.
        with cores.held(rank=RANK_PREPARE, after=tuple(asked)):
            if not failed.is_set():
                job()

    chains = kernel_chains(books)
    asked = [threading.Event() for _ in chains]
    threads = [threading.Thread(target=run, args=(chain, event), name=f"crmkit-{chain[0].stem}")
               for chain, event in zip(chains, asked, strict=True)]
    with tempfile.TemporaryDirectory(prefix="crmkit-kernels-") as sockets:
        for job in prepare:  # not waited for: what it prepares waits for it when it is used
            threading.Thread(target=get_ready, args=(job,), name="crmkit-prepare",
                             daemon=True).start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return [(book, outcome[book]) for book in books if book in outcome]


def demo_client_dir() -> Path:
    """The bundled demo client that ``crmkit demo`` runs."""
    return paths.DEMO_CLIENTS / "retail"


@dataclass
class Run:
    """A finished run."""

    folder: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def report_path(self) -> Path:
        return self.folder / "report.html"

    @property
    def results(self) -> dict:
        return json.loads((self.folder / "results.json").read_text(encoding="utf-8"))


#: A run folder's name: its start ``YYYY-MM-DDTHHMMSS``, ``-N`` when several started in the same
#: second, ``-failed`` when a workbook failed (the staging folders, ``.<name>.partial-PID``, are
#: hidden and never a run).
RUN_FOLDER = re.compile(r"^(\d{4}-\d\d-\d\dT\d{6})(?:-(\d+))?(-failed)?$")


def latest_run(client_reports: str | Path) -> Path | None:
    """The latest run folder of a client (finished or failed), or None when it has none.

    Parameters
    ----------
    client_reports : path
        ``REPORTS_DIR/<slug>/``.
    """
    folder = Path(client_reports)
    if not folder.is_dir():
        return None
    runs = []
    for path in folder.iterdir():
        match = RUN_FOLDER.match(path.name)
        if match and path.is_dir():
            # "<stamp>-2" was started after "<stamp>-failed": order by stamp, then counter
            runs.append((match.group(1), int(match.group(2) or 1), path))
    return max(runs)[2] if runs else None


def unchanged_run(client_dir: str | Path, reports_dir: str | Path) -> Path | None:
    """The client's latest run folder when it was made from the current inputs, else None.

    The latest run must have finished (a failed run is never "unchanged": it is run again) and
    the checksums its ``run.json`` records must equal those of the files the workspace reads now
    (the same :attr:`~crmkit.inputs.workspace.Workspace.checksums` a run records, so a file
    added, changed or removed, client.yaml included, counts as a change).

    Parameters
    ----------
    client_dir : path
        The client workspace.
    reports_dir : path
        Where its run folders are (``reports_dir/<slug>/``).
    """
    client_dir = Path(client_dir).resolve()
    run = latest_run(Path(reports_dir).resolve() / client_dir.name)
    if run is None or run.name.endswith("-failed"):
        return None
    try:
        recorded = json.loads((run / "run.json").read_text(encoding="utf-8"))["inputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    # hashing the recorded files is cheap and catches most changes without a validation
    for name, digest in recorded.items():
        path = client_dir / name
        if not path.is_file() or sha256_file(path) != digest:
            return None
    try:  # the files it reads now: one added beside them counts too
        current = load_workspace(client_dir).checksums
    except UserError:
        return None  # the run will say what is wrong
    return run if current == recorded else None


#: Environment variable naming clients (slugs, comma-separated) whose run fails at its first
#: workbook, as a workbook raising an error does: the failed folder is kept and ``crmkit run``
#: exits 1. For tests of what surrounds a failure (``crmkit batch``); never set it otherwise.
FAIL_ENV = "CRMKIT_TEST_FAIL_CLIENT"


def _injected_failures() -> set[str]:
    return {slug.strip() for slug in os.environ.get(FAIL_ENV, "").split(",") if slug.strip()}


#: Exceptions raised in a workbook that are the user's mistake, not a bug (exit 2, not 1).
USER_ERRORS = ("UserError", "WorkspaceError")


class WorkbookFailed(Exception):
    """A workbook raised an error; its executed notebook is kept for diagnosis."""

    def __init__(self, workbook: str, cell: int | None, error: str, kept: Path):
        self.workbook = workbook
        self.cell = cell
        self.error = error
        self.kept = kept
        super().__init__(self.explain())

    def explain(self) -> str:
        # The execution count is what the consultant sees beside the cell in the kept notebook.
        where = f"at cell [{self.cell}]" if self.cell is not None else "before its first cell"
        return (f"crmkit run: workbook {self.workbook} failed {where}: {self.error}\n"
                f"The executed notebook is kept for diagnosis in {self.kept}\n"
                "Earlier reports are untouched.")


def _timestamp(now: dt.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H%M%S")


def _final_folder(client_reports: Path, stamp: str) -> Path:
    folder = client_reports / stamp
    n = 2
    while folder.exists() or Path(f"{folder}-failed").exists():
        folder = client_reports / f"{stamp}-{n}"
        n += 1
    return folder


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _progress(enabled: bool):
    if not enabled:
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                    transient=False, console=None if sys.stderr.isatty() else _plain_console())


def _plain_console():
    from rich.console import Console

    return Console(stderr=True, force_terminal=False)


def run_client(client_dir: str | Path, reports_dir: str | Path = "reports", *,
               language: str | None = None, progress: bool = True,
               now: dt.datetime | None = None) -> Run:
    """Run every workbook for a client and write the run folder.

    Parameters
    ----------
    client_dir : path
        The client workspace.
    reports_dir : path
        Run folders go to ``reports_dir/<slug>/<timestamp>/``.
    language : {"en", "es"}, optional
        The report's language; default the client's.
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    Run

    Raises
    ------
    crmkit.core.problems.WorkspaceError
        The workspace is invalid; nothing was written.
    WorkbookFailed
        A workbook failed; its executed notebook is kept in ``<timestamp>-failed``.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    client_dir = Path(client_dir).resolve()
    workspace = load_workspace(client_dir)  # raises before anything is written
    lang = language or workspace.config.language
    now = now or dt.datetime.now()
    client_reports = Path(reports_dir).resolve() / workspace.slug
    client_reports.mkdir(parents=True, exist_ok=True)
    final = _final_folder(client_reports, _timestamp(now))
    staging = client_reports / f".{final.name}.partial-{os.getpid()}"
    staging.mkdir()
    inputs_cache.save(workspace, staging)  # every workbook reads the validated inputs from here
    # The kernels read the inputs from staging; the runner keeps only what it reports, so the
    # frames (~3 GB for an 11.7M-line client) are not held through every workbook.
    warnings = workspace.warning_records(lang)
    config, slug, as_of, checksums = (workspace.config, workspace.slug, workspace.as_of,
                                      workspace.checksums)
    printer_ahead = len(workspace.transactions) <= PRINTER_AHEAD_MAX_LINES
    del workspace
    release_unused()  # and given back to the system, not kept by the allocators for nothing

    timings: dict[str, float] = {}
    books = workbooks()
    if slug in _injected_failures():  # tests only: a failing workbook, cheaply
        raise _failed(staging, final, books[0], None,
                      f"RuntimeError: failure injected by {FAIL_ENV} (a test setting)")

    engine = _register_engine()
    bar = _progress(progress)
    printer = _printer()  # gets ready on a free core while the workbooks run, or after them
    try:
        if bar:
            bar.start()
            task = bar.add_task("crmkit run", total=len(books) + 3)
        arguments = dict(kernel_name="python3", language="python",
                         parameters={"client_dir": str(client_dir), "run_dir": str(staging),
                                     "language": lang},
                         cwd=str(paths.WORKBOOKS), progress_bar=False, log_output=False,
                         engine_name=engine, extra_arguments=KERNEL_ARGUMENTS,
                         iopub_timeout=IOPUB_TIMEOUT)

        def announce(book: Path, seconds: float) -> None:
            timings[book.stem] = round(seconds, 3)
            if bar:
                bar.update(task, advance=1, description=f"{slug}: {book.stem}")

        done = run_graph(books, lambda book, km: papermill.execute_notebook(
            str(book), str(staging / book.name), km=km, **arguments),
            announce, prepare=[printer.get_ready] if printer and printer_ahead else [])
        if printer and not printer_ahead:
            printer.start()  # beside the report's rendering and tables.xlsx
        for book, error in done:  # in the workbooks' order: the first failure is the one told
            if isinstance(error, PapermillExecutionError):
                if error.ename in USER_ERRORS:  # the user's mistake, found late: exit 2
                    shutil.rmtree(staging, ignore_errors=True)
                    raise UserError(f"{book.stem}: {error.evalue}")
                raise _failed(staging, final, book, error.exec_count,
                              f"{error.ename}: {error.evalue}")
            if error is not None:  # the kernel died or could not start
                raise _failed(staging, final, book, None, f"{type(error).__name__}: {error}")

        if bar:
            bar.update(task, description=f"{slug}: tables.xlsx, report, report.pdf")

        def tables() -> float:
            started = time.perf_counter()
            _write_tables(staging, config, lang)
            return time.perf_counter() - started

        def report() -> tuple[float, float, str | None]:
            started = time.perf_counter()
            results = _merge_results(staging)
            (staging / "results.json").write_text(
                json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
            html = render_report([staging / b.name for b in books], results, config,
                                 lang, generated=now, as_of=as_of)
            (staging / "report.html").write_text(html, encoding="utf-8")
            rendered = time.perf_counter()
            notice = _print_pdf(staging, lang, printer)
            return rendered - started, time.perf_counter() - rendered, notice

        # tables.xlsx needs only the staged tables, the report and its PDF only the results
        with ThreadPoolExecutor(max_workers=2) as pool:
            xlsx, printed = pool.submit(tables), pool.submit(report)
            timings["xlsx"] = round(xlsx.result(), 3)
            render_seconds, pdf_seconds, notice = printed.result()
        timings["report"] = round(render_seconds, 3)
        timings["pdf"] = round(pdf_seconds, 3)
        if notice:
            print(notice, file=sys.stderr)  # above the progress bar when there is one
        if bar:
            bar.advance(task, 3)

        run_info = {
            "client": config.name, "slug": slug,
            "client_dir": str(client_dir), "language": lang,
            "started": now.isoformat(timespec="seconds"),
            "finished": dt.datetime.now().isoformat(timespec="seconds"),
            "as_of": as_of.isoformat(),
            "inputs": checksums,
            "warnings": warnings,
            "parameters": {"client_dir": str(client_dir), "language": lang,
                           "reports_dir": str(Path(reports_dir).resolve())},
            "workbooks": [b.name for b in books],
            "timings_seconds": timings,
            "versions": _versions(),
            "crmkit": __version__,
        }
        (staging / "run.json").write_text(json.dumps(run_info, indent=2, ensure_ascii=False),
                                          encoding="utf-8")
        os.rename(staging, final)
    except BaseException:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if printer:
            printer.close()
        if bar:
            bar.stop()
    return Run(final, timings)


def _write_tables(staging: Path, config, lang: str) -> Path:
    """``tables.xlsx``: every table the workbooks exported, one sheet each, in ``lang``."""
    from crmkit.delivery.exports import STAGED_DIR, staged_tables, write_workbook

    fmt = Formatter(lang, config.currency)
    tables = staged_tables(staging / STAGED_DIR, fmt)
    return write_workbook(staging / "tables.xlsx", tables, fmt,
                          title=t("xlsx_title", lang, client=config.name),
                          header_color=config.branding.primary_color)


def _printer():
    """The Chromium that will print the report (not started yet), or None when there is none."""
    from crmkit.delivery import pdf

    return pdf.Printer() if pdf.chromium_path() else None


def _print_pdf(staging: Path, lang: str, printer=None) -> str | None:
    """Print ``report.pdf`` beside ``report.html``; the notice to show when it was not written."""
    from crmkit.delivery.pdf import chromium_path, missing_notice, print_pdf

    if chromium_path() is None:
        return missing_notice(lang)
    if print_pdf(staging / "report.html", staging / "report.pdf", printer=printer) is None:
        return t("pdf_failed", lang)
    return None


def _failed(staging: Path, final: Path, book: Path, cell: int | None, error: str
            ) -> WorkbookFailed:
    kept = Path(f"{final}-failed")
    os.rename(staging, kept)
    return WorkbookFailed(book.name, cell, error, kept / book.name)


def _merge_results(staging: Path) -> dict:
    """One top-level section per workbook, in the workbooks' order."""
    folder = staging / "results"
    files = sorted(folder.glob("*.json"), key=lambda p: (
        SECTIONS.index(p.stem) if p.stem in SECTIONS else len(SECTIONS), p.stat().st_mtime_ns)
    ) if folder.exists() else []
    return {f.stem: json.loads(f.read_text(encoding="utf-8")) for f in files}

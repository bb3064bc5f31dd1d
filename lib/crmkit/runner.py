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
import shutil
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from . import __version__, paths
from .i18n import Formatter, t
from .report import render_report
from .workspace import load_workspace

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


def workbooks() -> list[Path]:
    """The consultant's workbooks, in order (``workbooks/NN_name.ipynb``)."""
    return sorted(paths.WORKBOOKS.glob("[0-9][0-9]_*.ipynb"))


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
        where = f"cell [{self.cell}]" if self.cell is not None else "before its first cell"
        return (f"crmkit run: workbook {self.workbook} failed at {where}: {self.error}\n"
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
    crmkit.problems.WorkspaceError
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

    timings: dict[str, float] = {}
    books = workbooks()
    engine = _register_engine()
    bar = _progress(progress)
    try:
        if bar:
            bar.start()
            task = bar.add_task("crmkit run", total=len(books) + 3)
        for book in books:
            if bar:
                bar.update(task, description=f"{workspace.slug}: {book.stem}")
            started = time.perf_counter()
            output = staging / book.name
            try:
                papermill.execute_notebook(
                    str(book), str(output), kernel_name="python3", language="python",
                    parameters={"client_dir": str(client_dir), "run_dir": str(staging),
                                "language": lang},
                    cwd=str(paths.WORKBOOKS), progress_bar=False, log_output=False,
                    engine_name=engine, extra_arguments=KERNEL_ARGUMENTS,
                )
            except PapermillExecutionError as error:
                raise _failed(staging, final, book, error.exec_count,
                              f"{error.ename}: {error.evalue}") from None
            except Exception as error:  # the kernel died or could not start
                raise _failed(staging, final, book, None,
                              f"{type(error).__name__}: {error}") from None
            timings[book.stem] = round(time.perf_counter() - started, 3)
            if bar:
                bar.advance(task)

        if bar:
            bar.update(task, description=f"{workspace.slug}: tables.xlsx")
        started = time.perf_counter()
        _write_tables(staging, workspace.config, lang)
        timings["xlsx"] = round(time.perf_counter() - started, 3)
        if bar:
            bar.advance(task)
            bar.update(task, description=f"{workspace.slug}: report")
        started = time.perf_counter()
        results = _merge_results(staging)
        (staging / "results.json").write_text(
            json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
        html = render_report([staging / b.name for b in books], results, workspace.config, lang,
                             generated=now, as_of=workspace.as_of)
        (staging / "report.html").write_text(html, encoding="utf-8")
        timings["report"] = round(time.perf_counter() - started, 3)
        if bar:
            bar.advance(task)
            bar.update(task, description=f"{workspace.slug}: report.pdf")
        started = time.perf_counter()
        notice = _print_pdf(staging, lang)
        timings["pdf"] = round(time.perf_counter() - started, 3)
        if notice:
            print(notice, file=sys.stderr)  # above the progress bar when there is one
        if bar:
            bar.advance(task)

        run_info = {
            "client": workspace.config.name, "slug": workspace.slug,
            "client_dir": str(client_dir), "language": lang,
            "started": now.isoformat(timespec="seconds"),
            "finished": dt.datetime.now().isoformat(timespec="seconds"),
            "as_of": workspace.as_of.isoformat(),
            "inputs": workspace.checksums,
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
        if bar:
            bar.stop()
    return Run(final, timings)


def _write_tables(staging: Path, config, lang: str) -> Path:
    """``tables.xlsx``: every table the workbooks exported, one sheet each, in ``lang``."""
    from .exports import STAGED_DIR, staged_tables, write_workbook

    fmt = Formatter(lang, config.currency)
    tables = staged_tables(staging / STAGED_DIR, fmt)
    return write_workbook(staging / "tables.xlsx", tables, fmt,
                          title=t("xlsx_title", lang, client=config.name),
                          header_color=config.branding.primary_color)


def _print_pdf(staging: Path, lang: str) -> str | None:
    """Print ``report.pdf`` beside ``report.html``; the notice to show when it was not written."""
    from .pdf import chromium_path, print_pdf

    if chromium_path() is None:
        return t("pdf_unavailable", lang)
    if print_pdf(staging / "report.html", staging / "report.pdf") is None:
        return t("pdf_failed", lang)
    return None


def _failed(staging: Path, final: Path, book: Path, cell: int | None, error: str
            ) -> WorkbookFailed:
    kept = Path(f"{final}-failed")
    os.rename(staging, kept)
    return WorkbookFailed(book.name, cell, error, kept / book.name)


def _merge_results(staging: Path) -> dict:
    """One top-level section per workbook, in the order the workbooks wrote them."""
    folder = staging / "results"
    files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns) if folder.exists() \
        else []
    return {f.stem: json.loads(f.read_text(encoding="utf-8")) for f in files}

"""report.pdf: a real report printed by headless Chromium, its pages rendered and looked at."""

import os
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from conftest import MINIMAL_CONFIG
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from PIL import Image

from crmkit.core.i18n import t
from crmkit.delivery import pdf
from crmkit.delivery.report import render_report
from crmkit.settings.client import ClientConfig

#: The chart's colour: used nowhere in the report's own style, so finding it proves the chart.
CHART_RGB = (0, 166, 81)
CHROMIUM = pdf.chromium_path()
PDFTOPPM = shutil.which("pdftoppm")
needs_tools = pytest.mark.skipif(
    CHROMIUM is None or PDFTOPPM is None,
    reason="needs Chromium (apt-get install chromium) and pdftoppm (apt-get install "
           "poppler-utils) to print and look at the PDF")


def _report(tmp_path) -> tuple:
    bars = go.Figure(go.Bar(x=["Analysis", "Design", "Launch"], y=[3, 5, 2],
                            marker_color="rgb(0,166,81)"))
    bars.update_layout(title="Costs", plot_bgcolor="white", paper_bgcolor="white")
    first = [
        new_markdown_cell("# 5. Implementation plan\n\n## Costs\nThe plan costs money."),
        new_code_cell("chart()", outputs=[new_output(
            "display_data", data={"application/vnd.plotly.v1+json": bars.to_plotly_json(),
                                  "text/plain": "Figure"})]),
    ]
    second = [new_markdown_cell("# 6. Next steps\n\n## Who does what\nA sponsor and a "
                                "project manager are named.")]
    paths = []
    for name, cells in (("05_plan", first), ("06_next", second)):
        path = tmp_path / f"{name}.ipynb"
        nbformat.write(new_notebook(cells=cells), path)
        paths.append(path)
    config = ClientConfig.model_validate({**MINIMAL_CONFIG, "name": "Acme Retail"})
    html = tmp_path / "report.html"
    html.write_text(render_report(paths, {}, config, "en"), encoding="utf-8")
    return html, config


def _pages(pdf_path, tmp_path) -> list[Image.Image]:
    prefix = tmp_path / "page"
    subprocess.run([PDFTOPPM, "-r", "40", "-png", str(pdf_path), str(prefix)], check=True,
                   timeout=120)
    return [Image.open(p).convert("RGB") for p in sorted(tmp_path.glob("page*.png"))]


def _ink(image: Image.Image) -> float:
    """Share of pixels that are not (nearly) white."""
    grey = image.convert("L")
    dark = sum(count for level, count in enumerate(grey.histogram()) if level < 245)
    return dark / (image.width * image.height)


def _chart_pixels(image: Image.Image) -> int:
    """Pixels of (about) the chart's colour."""
    pixels = np.asarray(image, dtype=int).reshape(-1, 3)
    return int((np.abs(pixels - np.array(CHART_RGB)) < 40).all(axis=1).sum())


@needs_tools
@pytest.mark.parametrize("static_charts", [False, True])
def test_report_prints_with_its_chart_drawn(tmp_path, static_charts):
    html, _ = _report(tmp_path)
    before = html.read_bytes()
    out = pdf.print_pdf(html, tmp_path / "out" / "report.pdf", static_charts=static_charts)
    assert out == tmp_path / "out" / "report.pdf" and out.is_file()
    assert out.read_bytes().startswith(b"%PDF")
    assert html.read_bytes() == before  # the report itself is never touched
    assert not list((tmp_path / "out").glob(".*partial"))
    pages = _pages(out, tmp_path)
    # The cover shares its page with the summary (here none, so with the contents), then a page
    # per chapter (the print CSS breaks before each).
    assert len(pages) == 3
    for number, page in enumerate(pages, start=1):
        assert _ink(page) > 0.003, f"page {number} is blank"
    chart_pages = [n for n, page in enumerate(pages, start=1) if _chart_pixels(page) > 300]
    assert chart_pages, "no page shows the chart's bars: plotly did not draw before printing"
    assert chart_pages == [2]  # the first chapter, after the cover and the contents


@needs_tools
def test_a_printer_made_ready_ahead_prints_the_chart_and_leaves_no_browser_behind(tmp_path):
    html, _ = _report(tmp_path)
    printer = pdf.Printer().start()  # as the runner does, while the workbooks run
    try:
        printer.get_ready()  # waits for the start under way, does not start a second browser
        group = os.getpgid(printer._pid)
        out = printer.print(html, tmp_path / "report.pdf")
    finally:
        printer.close()
    assert out == tmp_path / "report.pdf"
    pages = _pages(out, tmp_path)
    assert [n for n, page in enumerate(pages, start=1) if _chart_pixels(page) > 300] == [2]
    assert _group_gone(group, within=10)  # the browser and its helpers are gone


def _group_gone(group: int, within: float) -> bool:
    """Whether no process of ``group`` is left (helpers that outlive the browser for a moment
    are zombies that init reaps)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_no_chromium_gives_none_and_a_notice(tmp_path, monkeypatch):
    monkeypatch.setattr(pdf, "CANDIDATES", ("/nonexistent/chromium", "no-such-browser-xyz"))
    assert pdf.chromium_path() is None
    html = tmp_path / "report.html"
    html.write_text("<html><body>x</body></html>", encoding="utf-8")
    assert pdf.print_pdf(html, tmp_path / "report.pdf") is None
    assert not (tmp_path / "report.pdf").exists()
    for lang in ("en", "es"):
        notice = t("pdf_unavailable", lang)
        assert "report.pdf" in notice and "Chromium" in notice and "\n" not in notice


def test_crmkit_chromium_names_the_browser_or_turns_the_pdf_off(tmp_path, monkeypatch):
    from crmkit.delivery import runner

    own = tmp_path / "bin" / "my-chrome"
    own.parent.mkdir()
    own.write_text("#!/bin/sh\n", encoding="utf-8")
    own.chmod(0o755)
    (tmp_path / "report.html").write_text("<html></html>", encoding="utf-8")
    monkeypatch.setattr(pdf, "CANDIDATES", ("/bin/sh",))  # found, were the setting not there
    monkeypatch.setenv(pdf.BROWSER_ENV, str(own))
    assert pdf.chromium_path() == str(own)
    monkeypatch.setenv("PATH", f"{own.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv(pdf.BROWSER_ENV, "my-chrome")  # a program on PATH
    assert pdf.chromium_path() == str(own)

    monkeypatch.setenv(pdf.BROWSER_ENV, " None ")
    assert pdf.chromium_path() is None
    assert runner._print_pdf(tmp_path, "en") == (
        "report.pdf not written: CRMKIT_CHROMIUM=none turns the PDF off; report.html is complete.")
    assert "CRMKIT_CHROMIUM=none desactiva el PDF" in runner._print_pdf(tmp_path, "es")
    assert not (tmp_path / "report.pdf").exists()

    own.chmod(0o644)  # there, but not a program
    for named in (str(own), "/opt/google/chrome/chrome", "no-such-browser-xyz"):
        monkeypatch.setenv(pdf.BROWSER_ENV, named)
        assert pdf.chromium_path() is None, named
        assert runner._print_pdf(tmp_path, "en") == (
            f"report.pdf not written: CRMKIT_CHROMIUM names '{named}', which is not a program "
            "on this machine (expected the path of Chromium or Chrome, or none); report.html "
            "is complete.")
    assert runner._printer() is None  # and no browser is got ready for nothing


def _fake_browser(tmp_path, body: str):
    script = tmp_path / "fake-chromium"
    script.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    script.chmod(0o755)
    return str(script)


def test_a_failing_browser_gives_none_not_a_traceback(tmp_path, caplog):
    html = tmp_path / "report.html"
    html.write_text("<html><body>x</body></html>", encoding="utf-8")
    browser = _fake_browser(tmp_path, "echo 'cannot open display' >&2\nexit 3")
    assert pdf.print_pdf(html, tmp_path / "report.pdf", chromium=browser) is None
    assert "exit 3: cannot open display" in caplog.text
    assert not (tmp_path / "report.pdf").exists()


def test_a_hanging_browser_is_stopped_at_the_timeout(tmp_path, caplog):
    html = tmp_path / "report.html"
    html.write_text("<html><body>x</body></html>", encoding="utf-8")
    browser = _fake_browser(tmp_path, "sleep 30 & sleep 30")
    start = time.monotonic()
    assert pdf.print_pdf(html, tmp_path / "report.pdf", chromium=browser, timeout=1) is None
    assert time.monotonic() - start < 10
    assert "within 1 s" in caplog.text


def test_the_command_is_headless_and_driven_over_pipes_only(tmp_path):
    command = pdf.chromium_command("chromium", tmp_path / "profile")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--run-all-compositor-stages-before-draw", "--remote-debugging-pipe",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        assert flag in command
    assert not [flag for flag in command if "port" in flag]  # nothing listens on a port


def test_the_runner_names_why_there_is_no_pdf(tmp_path, monkeypatch):
    from crmkit.delivery import runner

    (tmp_path / "report.html").write_text("<html></html>", encoding="utf-8")
    monkeypatch.setattr(pdf, "chromium_path", lambda: None)
    assert runner._print_pdf(tmp_path, "es") == t("pdf_unavailable", "es")
    monkeypatch.setattr(pdf, "chromium_path", lambda: "/usr/bin/chromium")
    monkeypatch.setattr(pdf, "print_pdf", lambda *args, **kwargs: None)
    assert runner._print_pdf(tmp_path, "en") == t("pdf_failed", "en")


def _only_workbook(tmp_path, monkeypatch, source: str) -> None:
    """The runner's workbooks are one: ``tmp_path/books/01_only.ipynb``, running ``source``."""
    from crmkit.delivery import runner

    book = tmp_path / "books" / "01_only.ipynb"
    book.parent.mkdir()
    notebook = new_notebook(cells=[
        new_code_cell("client_dir = run_dir = language = None", metadata={"tags": ["parameters"]}),
        new_code_cell(source)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, book)
    monkeypatch.setattr(runner, "workbooks", lambda: [book])


@needs_tools
def test_a_big_clients_printer_gets_ready_after_the_workbooks(tmp_path, monkeypatch,
                                                             make_workspace):
    """Above PRINTER_AHEAD_MAX_LINES transaction lines Chromium is not started while the
    workbooks hold the client's data (its memory), and the PDF is still printed."""
    from crmkit.delivery import runner

    _only_workbook(tmp_path, monkeypatch,
                   "import time\nfrom crmkit.delivery.workbook import open_workbook\n"
                   "open_workbook(client_dir, run_dir, language, section='context').save()\n"
                   "time.sleep(1)")
    monkeypatch.setattr(runner, "PRINTER_AHEAD_MAX_LINES", 3)  # the test client has 4 lines
    ready_with = []
    get_ready = pdf.Printer.get_ready

    def spied(printer):
        ready_with.append(sorted(p.name for p in (tmp_path / "out").rglob("*.ipynb")))
        get_ready(printer)

    monkeypatch.setattr(pdf.Printer, "get_ready", spied)
    run = runner.run_client(make_workspace(), tmp_path / "out", progress=False)
    assert ready_with and ready_with[0] == ["01_only.ipynb"]  # the workbook had been run
    assert (run.folder / "report.pdf").read_bytes()[:4] == b"%PDF"


def test_a_run_without_chromium_says_so_and_keeps_going(tmp_path, monkeypatch, capsys,
                                                       make_workspace):
    """One tiny workbook through the runner: tables.xlsx is written, the PDF is not."""
    from crmkit.delivery import runner

    _only_workbook(tmp_path, monkeypatch,
                   "import pandas as pd\nfrom crmkit.delivery.tables import Table\n"
                   "from crmkit.delivery.workbook import open_workbook\n"
                   "wb = open_workbook(client_dir, run_dir, language, section='context')\n"
                   "wb.export('xlsx_sheet_costs', Table(pd.DataFrame({'a': ['=1+1']}), "
                   "wb.fmt, {'a': ('plan_col_note', 'text')}))\nwb.save()")
    monkeypatch.setattr(pdf, "chromium_path", lambda: None)
    run = runner.run_client(make_workspace(), tmp_path / "out", language="es", progress=False)
    assert (run.folder / "report.html").is_file()
    assert not (run.folder / "report.pdf").exists()
    assert t("pdf_unavailable", "es") in capsys.readouterr().err
    assert {"xlsx", "report", "pdf"} <= set(run.timings)
    import openpyxl

    sheet = openpyxl.load_workbook(run.folder / "tables.xlsx")["Costes"]
    assert sheet["A1"].value == t("plan_col_note", "es") and sheet["A2"].value == "'=1+1"
    assert [p.name for p in run.folder.parent.iterdir()] == [run.folder.name]


def _right_margin_ink(image: Image.Image, margin_mm: float = 13) -> float:
    """Share of dark pixels in the page's right margin (most of it)."""
    grey = np.asarray(image.convert("L"))
    strip = max(2, int(grey.shape[1] * (margin_mm - 4) / 210))
    return float((grey[:, -strip:] < 235).mean())


def _chart_right_edge(image: Image.Image) -> int | None:
    """The rightmost pixel column of the chart's colour on a page (None: not on it)."""
    pixels = np.asarray(image, dtype=int)
    columns = np.where((np.abs(pixels - np.array(CHART_RGB)) < 40).all(axis=2).any(axis=0))[0]
    return int(columns.max()) if len(columns) else None


class _Cells(HTMLParser):
    """The text of every table cell of a report."""

    def __init__(self):
        super().__init__()
        self.cells: list[str] = []
        self._open: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag in ("td", "th"):
            self._open = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._open is not None:
            self.cells.append("".join(self._open))
            self._open = None

    def handle_data(self, data):
        if self._open is not None:
            self._open.append(data)


def cut_cells(html_path, pdf_path) -> list[str]:
    """Table cells of ``html_path`` whose text is not whole in the PDF's text.

    A cell cut by the page's edge or by a scroll box loses its end in the PDF (Chromium writes
    no text it clips: "Pasa a una relación más barata" printed as "Pasa una relac"). Spaces are
    ignored on both sides, so a cell wrapped over lines, or a long word broken, still counts as
    whole.
    """
    parser = _Cells()
    parser.feed(Path(html_path).read_text(encoding="utf-8"))
    text = subprocess.run([shutil.which("pdftotext"), "-raw", str(pdf_path), "-"],
                          capture_output=True, text=True, check=True, timeout=120).stdout
    flat = re.sub(r"\s+", "", text)
    return [cell for cell in parser.cells
            if cell.strip() and re.sub(r"\s+", "", cell) not in flat]


def _wide_chart_report(tmp_path, lang="en", currency="EUR") -> Path:
    """A report whose one chart was drawn 1400 px wide (twice the printed page) and a table."""
    bars = go.Figure(go.Bar(x=[f"Segment {i}" for i in range(12)], y=list(range(1, 13)),
                            marker_color="rgb(0,166,81)"))
    bars.update_layout(width=1400, height=400, plot_bgcolor="white", paper_bgcolor="white",
                       margin={"l": 0, "r": 0})
    from crmkit.core.i18n import Formatter
    from crmkit.delivery.tables import Table

    frame = pd.DataFrame({"segment": ["Customers who bought once a long time ago"] * 3,
                          **{f"c{i}": [1234567.0, 2.0, 3.0] for i in range(10)}})
    table = Table(frame, Formatter(lang, currency),
                  {"segment": ("customers", "text"),
                   **{f"c{i}": ("plan_col_total", "money") for i in range(10)}})
    cells = [new_markdown_cell("# 1. Wide\n\nA chart drawn for a wide screen."),
             new_code_cell("chart()", outputs=[new_output(
                 "display_data", data={"application/vnd.plotly.v1+json": bars.to_plotly_json()})]),
             new_code_cell("table()", outputs=[new_output(
                 "display_data", data={"text/html": table.to_html()})])]
    path = tmp_path / "01_wide.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    config = ClientConfig.model_validate({**MINIMAL_CONFIG, "name": "Acme Retail",
                                          "currency": currency})
    html = tmp_path / "report.html"
    html.write_text(render_report([path], {}, config, lang), encoding="utf-8")
    return html


@needs_tools
def test_a_chart_drawn_wider_than_the_page_is_printed_whole(tmp_path, monkeypatch):
    html = _wide_chart_report(tmp_path)
    # Printed without the resizing script, the chart runs to the edge of the printed area.
    monkeypatch.setattr(pdf, "PRINT_SCRIPT", "")
    raw = tmp_path / "raw"
    raw.mkdir()
    pages = _pages(pdf.print_pdf(html, raw / "report.pdf"), raw)
    content_right = pages[0].width * (1 - 13 / 210)
    edges = [e for e in map(_chart_right_edge, pages) if e is not None]
    assert edges and max(edges) >= content_right - 3, "the control must show the cut"
    monkeypatch.undo()
    pages = _pages(pdf.print_pdf(html, tmp_path / "report.pdf"), tmp_path)
    edges = [e for e in map(_chart_right_edge, pages) if e is not None]
    assert edges and max(edges) < content_right - 6
    assert [round(_right_margin_ink(p), 4) for p in pages] == [0.0] * len(pages)


@needs_tools
@pytest.mark.parametrize("lang", ["en", "es"])
def test_a_wide_table_prints_whole(tmp_path, lang):
    html = _wide_chart_report(tmp_path, lang)
    out = pdf.print_pdf(html, tmp_path / "report.pdf")
    assert not cut_cells(html, out)


@needs_tools
def test_the_cut_cell_check_sees_a_cell_clipped_by_a_scroll_box(tmp_path):
    """The check can fail: the old report's scroll boxes printed a clipped table."""
    html = tmp_path / "cut.html"
    html.write_text("<html><head><style>@page { size: A4; margin: 14mm 13mm; }</style></head>"
                    "<body><div style='overflow-x:auto'><table style='width:1500px'><tr>"
                    "<td>Segment</td><td style='text-align:right'>Move to a cheaper "
                    "relationship</td></tr></table></div></body></html>", encoding="utf-8")
    out = pdf.print_pdf(html, tmp_path / "cut.pdf")
    assert cut_cells(html, out) == ["Move to a cheaper relationship"]


@needs_tools
def test_a_euro_report_prints_on_a4_and_a_dollar_one_on_letter(tmp_path):
    first = _pages(pdf.print_pdf(_wide_chart_report(tmp_path), tmp_path / "report.pdf"),
                   tmp_path)[0]
    assert abs(first.height / first.width - 297 / 210) < 0.01  # A4
    letter = tmp_path / "letter"
    letter.mkdir()
    html = _wide_chart_report(letter, currency="USD")
    page = _pages(pdf.print_pdf(html, letter / "report.pdf"), letter)[0]
    assert abs(page.height / page.width - 11 / 8.5) < 0.01


@needs_tools
@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext (poppler-utils)")
@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_decision_is_one_page_of_its_own_on_paper(tmp_path, lang):
    """A heavy decision (two conditions, placeholder costs, twelve segments with long names)
    still prints on page one, whole, and the contents start page two."""
    from test_decision_page import _results

    results = _results("go_with_conditions", npv_low_benefits=-18230.0,
                       npv_high_costs=-17228.0,
                       decision_conditions=["pilot_levers", "replace_default_costs"],
                       cost_lines={"total": 10, "default": 7})
    keys = [f"segment_{i}" for i in range(12)]
    results["segments"]["profiles"] = [{"segment": k, "customers": 10} for k in keys]
    results["cost_benefit"]["segments"] = [
        {"segment": k, "segment_name": f"Segment number {i} with a long name", "verdict":
         "move_cheaper", "main_type": "dedicated_personal_assistance",
         "cheaper_type": "automated_services", "impact": 1000.0 * i}
        for i, k in enumerate(keys)]
    path = tmp_path / "01_context.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("# 1. Context\n\n## Data\nText.")]),
                   path)
    config = ClientConfig.model_validate({**MINIMAL_CONFIG, "name": "Acme Retail"})
    html = tmp_path / "report.html"
    html.write_text(render_report([path], results, config, lang), encoding="utf-8")
    printed = pdf.print_pdf(html, tmp_path / "report.pdf")
    assert printed is not None

    def page(n):
        return subprocess.run(["pdftotext", "-f", str(n), "-l", str(n), str(printed), "-"],
                              capture_output=True, text=True, check=True).stdout

    # one line of text per visual line: join them, the cells wrap
    first, second = " ".join(page(1).split()), page(2)
    assert t("dp_title", lang) in first and t("decision_go_with_conditions", lang) in first
    assert "Segment number 11 with a long name" in first  # the table's last row
    assert " ".join(t("decision_reason_default_costs", lang, default=7, total=10).split()) \
        in first
    assert second.lstrip().startswith(t("contents", lang))
    assert "Segment number" not in second

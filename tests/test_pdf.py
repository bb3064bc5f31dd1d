"""report.pdf: a real report printed by headless Chromium, its pages rendered and looked at."""

import shutil
import subprocess
import time

import nbformat
import numpy as np
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
    # Cover, contents, and a page per chapter (the print CSS breaks before each).
    assert len(pages) >= 2
    assert len(pages) >= 4
    for number, page in enumerate(pages, start=1):
        assert _ink(page) > 0.003, f"page {number} is blank"
    chart_pages = [n for n, page in enumerate(pages, start=1) if _chart_pixels(page) > 300]
    assert chart_pages, "no page shows the chart's bars: plotly did not draw before printing"
    assert chart_pages == [3]  # the first chapter, after the cover and the contents


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


def test_the_command_has_the_flags_that_let_plotly_draw(tmp_path):
    command = pdf.chromium_command("chromium", tmp_path / "r.html", tmp_path / "r.pdf",
                                   tmp_path / "profile")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--run-all-compositor-stages-before-draw", "--virtual-time-budget=15000",
                 "--no-pdf-header-footer", f"--user-data-dir={tmp_path / 'profile'}",
                 f"--print-to-pdf={tmp_path / 'r.pdf'}"):
        assert flag in command
    assert command[-1].startswith("file://")


def test_the_runner_names_why_there_is_no_pdf(tmp_path, monkeypatch):
    from crmkit.delivery import runner

    (tmp_path / "report.html").write_text("<html></html>", encoding="utf-8")
    monkeypatch.setattr(pdf, "chromium_path", lambda: None)
    assert runner._print_pdf(tmp_path, "es") == t("pdf_unavailable", "es")
    monkeypatch.setattr(pdf, "chromium_path", lambda: "/usr/bin/chromium")
    monkeypatch.setattr(pdf, "print_pdf", lambda *args, **kwargs: None)
    assert runner._print_pdf(tmp_path, "en") == t("pdf_failed", "en")


def test_a_run_without_chromium_says_so_and_keeps_going(tmp_path, monkeypatch, capsys,
                                                       make_workspace):
    """One tiny workbook through the runner: tables.xlsx is written, the PDF is not."""
    from crmkit.delivery import runner

    book = tmp_path / "books" / "01_only.ipynb"
    book.parent.mkdir()
    notebook = new_notebook(cells=[
        new_code_cell("client_dir = run_dir = language = None", metadata={"tags": ["parameters"]}),
        new_code_cell("import pandas as pd\nfrom crmkit.delivery.tables import Table\n"
                      "from crmkit.delivery.workbook import open_workbook\n"
                      "wb = open_workbook(client_dir, run_dir, language, section='context')\n"
                      "wb.export('xlsx_sheet_costs', Table(pd.DataFrame({'a': ['=1+1']}), "
                      "wb.fmt, {'a': ('plan_col_note', 'text')}))\nwb.save()")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, book)
    monkeypatch.setattr(runner, "workbooks", lambda: [book])
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

"""``report.pdf``: the HTML report printed by a headless Chromium.

The report (:mod:`crmkit.delivery.report`) draws its charts with plotly.js when the page loads, so
it must
be printed by a browser that runs JavaScript — a plain HTML-to-PDF converter would print empty
boxes. Chromium's own ``--print-to-pdf`` does it; ``--virtual-time-budget`` lets the page's
scripts run (and plotly draw) before printing, and ``--run-all-compositor-stages-before-draw``
makes sure what was drawn is what is printed. The print CSS of the report template already puts
each chapter on a new page, sets the paper (A4 or US Letter), repeats table headers and keeps
charts and table rows whole.

Plotly draws a chart at the width of the browser window when the page loads, and does not redraw
it when the page is laid out for paper: a chart drawn for a wide window would be cut at the page's
right edge. So the browser prints a copy of the report (in a temporary folder) with
:data:`PRINT_SCRIPT` at the end of its ``<head>``, after plotly.js and before the first chart:
it wraps ``Plotly.newPlot`` so that every chart is drawn once, directly at the width of the
printed page (from the ``data-print-width-mm`` of the report's ``<html>``), its plotting area a
little lower than on screen (:data:`PRINT_HEIGHT`; titles and tick labels keep their room), so
that two charts share a page more often, and as a static plot (paper has no hover or zoom).
Drawing each chart once at its printed size, instead of drawing it for the screen and redrawing it
for paper on load, takes about a quarter off the printing time (``benchmarks/run_report.py``).

Charts print as drawn (checked by ``tests/delivery/test_pdf.py``, which renders the pages to PNG
and looks for the chart's colours). ``static_charts=True`` is a fallback for browsers that print a
chart before plotly has drawn it: the print copy also gets a small script that replaces every chart
by a static SVG image (``Plotly.toImage``) once the page has loaded. ``report.html`` itself
is never modified.

When no Chromium is installed, :func:`print_pdf` returns None and the caller prints the one-line
notice ``t("pdf_unavailable", lang)``; a browser that fails or hangs is stopped after ``timeout``
seconds and also gives None, with the reason logged — never a traceback.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

__all__ = ["CANDIDATES", "PRINT_HEIGHT", "PRINT_SCRIPT", "STATIC_CHARTS_SCRIPT",
           "chromium_command", "chromium_path", "print_pdf"]

log = logging.getLogger(__name__)

#: Browsers looked for, in order: Debian's Chromium first, then names on PATH.
CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome",
              "google-chrome-stable")

#: The plotting area of a chart is printed this much lower than on screen, but not below
#: PRINT_MIN_PLOT pixels; titles, tick labels and the legend keep their size and room. The plotting
#: area is the chart's height less its top and bottom margins (plotly's defaults when unset).
PRINT_HEIGHT = 0.6
PRINT_MIN_PLOT = 150

#: Injected at the end of the print copy's ``<head>``: every chart is drawn at the printed page's
#: width (96 CSS pixels an inch) and lower plotting area, static, the first and only time.
PRINT_SCRIPT = """<script>
(function () {
  if (!window.Plotly) { return; }
  var mm = parseFloat(document.documentElement.getAttribute("data-print-width-mm") || "184");
  var width = Math.floor(mm * 96 / 25.4), draw = Plotly.newPlot;
  Plotly.newPlot = function (div, data, layout, config) {
    layout = Object.assign({}, layout);
    var full = layout.height || 450, margin = layout.margin || {};
    var plot = full - (margin.t === undefined ? 100 : margin.t)
                    - (margin.b === undefined ? 80 : margin.b);
    layout.height = Math.round(full - plot + Math.max(plot * HEIGHT, Math.min(plot, MIN_PLOT)));
    layout.width = width;
    layout.autosize = false;
    var element = typeof div === "string" ? document.getElementById(div) : div;
    if (element) { element.style.width = width + "px"; }
    return draw.call(Plotly, div, data, layout, Object.assign({}, config, {staticPlot: true}));
  };
})();
</script>""".replace("MIN_PLOT", str(PRINT_MIN_PLOT)).replace("HEIGHT", str(PRINT_HEIGHT))

#: Injected into the print copy with ``static_charts=True``: each plotly chart becomes an SVG
#: image of the same size, so the printout does not depend on when plotly finishes drawing.
STATIC_CHARTS_SCRIPT = """<script>
window.addEventListener("load", function () {
  if (!window.Plotly) { return; }
  document.querySelectorAll(".crm-chart").forEach(function (div) {
    if (!div.data) { return; }
    var width = div.offsetWidth || 900, height = div.offsetHeight || 420;
    Plotly.toImage(div, {format: "svg", width: width, height: height}).then(function (url) {
      var img = document.createElement("img");
      img.src = url; img.alt = ""; img.className = "crm-chart-static";
      img.style.width = "100%"; img.style.maxWidth = width + "px";
      div.replaceWith(img);
    });
  });
});
</script>"""


def chromium_path() -> str | None:
    """The Chromium (or Chrome) executable to print with, or None when none is installed."""
    for candidate in CANDIDATES:
        if os.path.isabs(candidate):
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
            continue
        found = shutil.which(candidate)
        if found:
            return found
    return None


def chromium_command(chromium: str, html_path: Path, pdf_path: Path, profile: Path) -> list[str]:
    """The command line that prints ``html_path`` to ``pdf_path``."""
    return [
        chromium, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={profile}",
        "--run-all-compositor-stages-before-draw", "--virtual-time-budget=15000",
        f"--print-to-pdf={pdf_path}", "--no-pdf-header-footer",
        Path(html_path).resolve().as_uri(),
    ]


def print_pdf(html_path: str | Path, pdf_path: str | Path, *, timeout: float = 180,
              chromium: str | None = None, static_charts: bool = False) -> Path | None:
    """Print ``report.html`` to ``report.pdf`` with headless Chromium.

    Parameters
    ----------
    html_path : path
        The report to print (it is read, never modified).
    pdf_path : path
        Where to write the PDF; it appears whole or not at all.
    timeout : float
        Seconds before a hanging browser is stopped.
    chromium : str, optional
        The browser executable; default :func:`chromium_path`.
    static_charts : bool
        Print a copy whose charts are turned into static images first (module docstring).

    Returns
    -------
    Path or None
        The PDF, or None when no Chromium is available or printing failed (the reason is
        logged); the caller then prints ``t("pdf_unavailable", lang)``.

    Raises
    ------
    FileNotFoundError
        When ``html_path`` does not exist (a caller's mistake, not the environment's).
    """
    browser = chromium or chromium_path()
    if browser is None:
        log.info("no Chromium found (looked for %s); report.pdf not written",
                 ", ".join(CANDIDATES))
        return None
    html_path, pdf_path = Path(html_path), Path(pdf_path)
    if not html_path.is_file():
        raise FileNotFoundError(f"no report to print at {html_path}")
    with tempfile.TemporaryDirectory(prefix="crmkit-pdf-") as tmp:
        tmp_dir = Path(tmp)
        text = html_path.read_text(encoding="utf-8")
        head = text.find("</head>")
        text = text[:head] + PRINT_SCRIPT + text[head:] if head >= 0 else PRINT_SCRIPT + text
        if static_charts:
            marker = text.rfind("</body>")
            text = (text[:marker] + STATIC_CHARTS_SCRIPT + text[marker:] if marker >= 0
                    else text + STATIC_CHARTS_SCRIPT)
        # Beside the original would let relative links resolve; the report has none (it is
        # self-contained), so the temporary folder is enough and nothing is left behind.
        source = tmp_dir / html_path.name
        source.write_text(text, encoding="utf-8")
        partial = tmp_dir / "report.pdf"
        command = chromium_command(browser, source, partial, tmp_dir / "profile")
        returncode, stderr = _run(command, timeout)
        if returncode is None:
            log.warning("Chromium did not finish printing %s within %s s; report.pdf not "
                        "written", html_path.name, timeout)
            return None
        if returncode != 0 or not partial.is_file() or partial.stat().st_size == 0:
            last = stderr.strip().splitlines()[-1:]
            log.warning("Chromium failed to print %s (exit %s%s); report.pdf not written",
                        html_path.name, returncode, f": {last[0]}" if last else "")
            return None
        pdf_path.parent.mkdir(parents=True, exist_ok=True)
        staged = pdf_path.with_name(f".{pdf_path.name}.partial")
        shutil.copyfile(partial, staged)
        os.replace(staged, pdf_path)
    return pdf_path


def _run(command: list[str], timeout: float) -> tuple[int | None, str]:
    """Run the browser in its own process group; on timeout stop the whole group.

    Chromium starts helper processes (renderer, GPU, zygote); killing only the first one would
    leave them running, so the browser gets a session of its own and the group is killed.
    """
    try:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        return -1, f"cannot start {command[0]}: {exc}"
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.communicate()
        return None, ""
    return process.returncode, stderr.decode("utf-8", "replace")

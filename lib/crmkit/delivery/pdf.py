"""``report.pdf``: the HTML report printed by a headless Chromium that crmkit drives.

The report (:mod:`crmkit.delivery.report`) draws its charts with plotly.js when the page loads, so
it must be printed by a browser that runs JavaScript — a plain HTML-to-PDF converter would print
empty boxes. A :class:`Printer` is one headless Chromium, driven over the DevTools protocol on a
pair of pipes (``--remote-debugging-pipe``: no port, no websocket, nothing another process can
reach). The print CSS of the report template already puts each chapter on a new page, sets the
paper (A4 or US Letter), repeats table headers and keeps charts and table rows whole.

Most of a print used to be the browser's start and the parsing of plotly.js (4.8 MB), neither of
which depends on the report. So a printer gets ready ahead (:meth:`Printer.get_ready`, which the
runner runs on a core no workbook needs; :meth:`Printer.start` does it on a thread of its own):
Chromium loads a page holding only plotly.js and waits. When the report is
ready, :meth:`Printer.print` writes it into that page (``document.open``/``document.write``, which
keeps the page's ``window`` and so its parsed ``Plotly``), without the report's own copy of
plotly.js, and with plotly's style rules (``document.open`` removed them with the old ``<head>``)
and :data:`PRINT_SCRIPT` at the end of its ``<head>``. A print is then drawing and laying out the
report, nothing else (``benchmarks/run_report.py``). A report whose plotly.js is not the one
loaded ahead (printed by another crmkit) keeps its own copy, which then replaces the preloaded one.

Plotly draws a chart at the width of the browser window and does not redraw it when the page is
laid out for paper: a chart drawn for a wide window would be cut at the page's right edge. So
:data:`PRINT_SCRIPT` wraps ``Plotly.newPlot``: every chart is drawn once, directly at the width of
the printed page (from the ``data-print-width-mm`` of the report's ``<html>``), its plotting area a
little lower than on screen (:data:`PRINT_HEIGHT`; titles and tick labels keep their room), so
that two charts share a page more often, and as a static plot (paper has no hover or zoom). The
page is printed once every chart's drawing has finished (the promises ``Plotly.newPlot`` returns)
and the fonts are loaded.

Charts print as drawn (checked by ``tests/delivery/test_pdf.py``, which renders the pages to PNG
and looks for the chart's colours). ``static_charts=True`` is a fallback for a browser that would
print a chart before plotly has drawn it: every chart is first replaced by a static SVG image of it
(``Plotly.toImage``). ``report.html`` itself is never modified.

The browser is the first of :data:`CANDIDATES` found, unless ``CRMKIT_CHROMIUM``
(:data:`BROWSER_ENV`) names one: a path or a program on PATH, for a Chrome that is not where Linux
puts it (on macOS, ``/Applications/Google Chrome.app/Contents/MacOS/Google Chrome``), or ``none``
for no PDF (a batch server whose consultants read report.html). When there is no browser,
:func:`print_pdf` returns None and the caller prints the one-line notice
:func:`missing_notice` gives; a browser that fails or hangs is stopped after ``timeout``
seconds and also gives None, with the reason logged — never a traceback.

The protocol client is hand-written (about sixty lines: JSON messages ended by a NUL byte, read
with a deadline) because the libraries that speak it (Playwright, pyppeteer) download or pin their
own browser and are far heavier than what printing one page needs.
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import select
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

from crmkit.core.i18n import t

__all__ = ["BROWSER_ENV", "CANDIDATES", "PRINT_HEIGHT", "PRINT_SCRIPT", "STATIC_CHARTS_SCRIPT",
           "Printer", "chromium_command", "chromium_path", "missing_notice", "print_pdf"]

log = logging.getLogger(__name__)

#: Browsers looked for, in order: Debian's Chromium first, then names on PATH.
CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome",
              "google-chrome-stable")
#: Environment variable naming the browser to print with instead (a path or a program on PATH),
#: or ``none`` for no PDF.
BROWSER_ENV = "CRMKIT_CHROMIUM"

#: The plotting area of a chart is printed this much lower than on screen, but not below
#: PRINT_MIN_PLOT pixels; titles, tick labels and the legend keep their size and room. The plotting
#: area is the chart's height less its top and bottom margins (plotly's defaults when unset).
PRINT_HEIGHT = 0.6
PRINT_MIN_PLOT = 150

#: Written at the end of the report's ``<head>``: every chart is drawn at the printed page's
#: width (96 CSS pixels an inch) and lower plotting area, static, the first and only time; the
#: promise of each drawing is kept in ``window.crmkitDrawn`` so the page is printed once all are
#: done.
PRINT_SCRIPT = """<script>
(function () {
  if (!window.Plotly) { return; }
  var mm = parseFloat(document.documentElement.getAttribute("data-print-width-mm") || "184");
  var width = Math.floor(mm * 96 / 25.4), draw = Plotly.newPlot;
  window.crmkitDrawn = [];
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
    var drawn = draw.call(Plotly, div, data, layout,
                          Object.assign({}, config, {staticPlot: true}));
    window.crmkitDrawn.push(drawn);
    return drawn;
  };
})();
</script>""".replace("MIN_PLOT", str(PRINT_MIN_PLOT)).replace("HEIGHT", str(PRINT_HEIGHT))

#: Evaluated with ``static_charts=True`` once the charts are drawn: each plotly chart becomes an
#: SVG image of the same size, so the printout does not depend on when plotly finishes drawing.
STATIC_CHARTS_SCRIPT = """Promise.all(Array.from(document.querySelectorAll(".crm-chart"))
  .filter(function (div) { return window.Plotly && div.data; })
  .map(function (div) {
    var width = div.offsetWidth || 900, height = div.offsetHeight || 420;
    return Plotly.toImage(div, {format: "svg", width: width, height: height})
      .then(function (url) {
        var img = document.createElement("img");
        img.src = url; img.alt = ""; img.className = "crm-chart-static";
        img.style.width = "100%"; img.style.maxWidth = width + "px";
        div.replaceWith(img);
        return img.decode();
      });
  }))"""

#: Settles when every chart has been drawn and the fonts are loaded.
_DRAWN = ("Promise.all(window.crmkitDrawn || []).then(function () { return document.fonts.ready; })"
          ".then(function () { return true; })")

#: Plotly's own style rules, which it adds to the ``<head>`` once, when plotly.js is parsed.
_PLOTLY_STYLE = ("Array.from(document.querySelectorAll('style[id^=\"plotly.js-style\"]'))"
                 ".map(function (s) { return '<style id=\"' + s.id + '\">' + "
                 "Array.from(s.sheet.cssRules).map(function (r) { return r.cssText; })"
                 ".join('\\n') + '</style>'; }).join('')")


class PrintFailed(Exception):
    """The browser failed, hung or answered with an error; the message says which."""


def _chosen() -> str:
    """``CRMKIT_CHROMIUM`` as set ("" when not), ``none`` in any case folded to "none"."""
    chosen = os.environ.get(BROWSER_ENV, "").strip()
    return "none" if chosen.lower() == "none" else chosen


def chromium_path() -> str | None:
    """The Chromium (or Chrome) executable to print with, or None when there is none.

    ``CRMKIT_CHROMIUM`` (:data:`BROWSER_ENV`), when set, decides alone: the browser it names, or
    None when it says ``none`` or names no program here (:func:`missing_notice` says which).
    """
    chosen = _chosen()
    if chosen:
        return None if chosen == "none" else shutil.which(chosen)
    for candidate in CANDIDATES:  # which() checks a path as given, and looks a name up on PATH
        found = shutil.which(candidate)
        if found:
            return found
    return None


def missing_notice(lang: str, unavailable: str = "pdf_unavailable", pdf: str = "report.pdf",
                   whole: str = "report.html") -> str:
    """The one line that says why ``pdf`` was not written when :func:`chromium_path` found no
    browser: the message ``unavailable`` when none is installed; else that ``CRMKIT_CHROMIUM``
    says ``none``, or names no program here."""
    chosen = _chosen()
    if not chosen:
        return t(unavailable, lang)
    if chosen == "none":
        return t("pdf_switched_off", lang, pdf=pdf, whole=whole, variable=BROWSER_ENV)
    return t("pdf_browser_missing", lang, pdf=pdf, whole=whole, variable=BROWSER_ENV,
             browser=chosen)


def chromium_command(chromium: str, profile: Path) -> list[str]:
    """The command line of a headless Chromium driven over ``--remote-debugging-pipe``."""
    return [
        chromium, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--no-default-browser-check", f"--user-data-dir={profile}",
        "--run-all-compositor-stages-before-draw", "--remote-debugging-pipe", "about:blank",
    ]


class Printer:
    """One headless Chromium with plotly.js parsed, ready to print one report.

    Parameters
    ----------
    chromium : str, optional
        The browser executable; default :func:`chromium_path`.
    timeout : float
        Seconds the browser has to get ready, and again to print, before it is stopped.

    Get it ready early — :meth:`get_ready` on a thread of the caller's, or :meth:`start`, which
    returns at once and gets ready on a thread of its own —, then :meth:`print` once, then
    :meth:`close` (or use the printer as a context manager). A printer not made ready before gets
    ready when it prints.
    """

    def __init__(self, chromium: str | None = None, *, timeout: float = 180):
        self.chromium = chromium or chromium_path()
        self.timeout = timeout
        self._folder = tempfile.TemporaryDirectory(prefix="crmkit-pdf-")
        self._pid: int | None = None
        self._returncode: int | None = None
        self._to_browser = self._from_browser = -1
        self._buffer = b""
        self._ids = 0
        self._session: str | None = None
        self._plotly_js = ""
        self._plotly_style = ""
        self._ready: threading.Thread | None = None
        self._lock = threading.Lock()
        self._got_ready = False
        self._problem: str | None = None

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> Printer:
        """Start the browser and load plotly.js into its page, on a thread of its own."""
        if self.chromium is not None and self._ready is None:
            self._ready = threading.Thread(target=self.get_ready, name="crmkit-printer",
                                           daemon=True)
            self._ready.start()
        return self

    def get_ready(self) -> None:
        """Start the browser and load plotly.js into its page; once, whoever calls first.

        A failure is kept and told by :meth:`print`, never raised here.
        """
        with self._lock:
            if not self._got_ready and self.chromium is not None:
                self._got_ready = True
                self._get_ready()

    def close(self) -> None:
        """Stop the browser (its whole process group) and remove its temporary folder."""
        if self._ready is not None and self._ready.is_alive():
            self._kill()
            self._ready.join(timeout=10)
        with self._lock:  # a get_ready under way on a caller's thread ends first
            self._got_ready = True
        if self._pid is not None and self._returncode is None:
            try:
                self._send("Browser.close", deadline=time.monotonic() + 2)
            except PrintFailed:
                pass
            self._wait(2)
            self._kill()
        for fd in (self._to_browser, self._from_browser):
            if fd >= 0:
                os.close(fd)
        self._to_browser = self._from_browser = -1
        self._folder.cleanup()

    def __enter__(self) -> Printer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- printing ----------------------------------------------------------------------------

    def print(self, html_path: str | Path, pdf_path: str | Path, *,
              static_charts: bool = False) -> Path | None:
        """Print ``html_path`` to ``pdf_path``; None (the reason logged) when it failed.

        Raises
        ------
        FileNotFoundError
            When ``html_path`` does not exist (a caller's mistake, not the environment's).
        """
        html_path, pdf_path = Path(html_path), Path(pdf_path)
        if not html_path.is_file():
            raise FileNotFoundError(f"no report to print at {html_path}")
        if self.chromium is None:
            log.info("no Chromium found (looked for %s); %s not written", ", ".join(CANDIDATES),
                     pdf_path.name)
            return None
        self.get_ready()
        try:
            if self._problem:
                raise PrintFailed(self._problem)
            data = self._print(html_path.read_text(encoding="utf-8"), static_charts)
        except PrintFailed as failure:
            log.warning("Chromium could not print %s (%s); %s not written", html_path.name,
                        failure, pdf_path.name)
            return None
        pdf_path.parent.mkdir(parents=True, exist_ok=True)
        staged = pdf_path.with_name(f".{pdf_path.name}.partial")
        staged.write_bytes(data)
        os.replace(staged, pdf_path)
        return pdf_path

    def _get_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        try:
            self._spawn()
            targets = self._send("Target.getTargets", deadline=deadline)["targetInfos"]
            page = next(t for t in targets if t["type"] == "page")
            self._session = self._send("Target.attachToTarget", {"targetId": page["targetId"],
                                       "flatten": True}, deadline=deadline)["sessionId"]
            self._page("Page.enable", deadline=deadline)
            from crmkit.delivery.report import plotly_js

            self._plotly_js = plotly_js()
            warm = Path(self._folder.name) / "plotly.html"
            warm.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><script>"
                            f"{self._plotly_js}</script></head><body></body></html>",
                            encoding="utf-8")
            self._page("Page.navigate", {"url": warm.as_uri()}, deadline=deadline)
            self._event("Page.loadEventFired", deadline)
            self._plotly_style = self._evaluate(_PLOTLY_STYLE, deadline)
        except PrintFailed as failure:
            self._problem = str(failure)
        except Exception as error:  # noqa: BLE001 - a browser's odd answer is not a crash
            self._problem = f"{type(error).__name__}: {error}"

    def _print(self, text: str, static_charts: bool) -> bytes:
        deadline = time.monotonic() + self.timeout
        own = f"<script>{self._plotly_js}</script>"
        if self._plotly_js and own in text:  # the page has parsed this very plotly.js already
            text = text.replace(own, "", 1)
        head = text.find("</head>")
        extra = self._plotly_style + PRINT_SCRIPT
        text = text[:head] + extra + text[head:] if head >= 0 else extra + text
        self._evaluate(f"document.open(); document.write({json.dumps(text)}); "
                       "document.close(); true", deadline)
        self._evaluate(_DRAWN, deadline)
        if static_charts:
            self._evaluate(STATIC_CHARTS_SCRIPT + ".then(function () { return true; })",
                           deadline)
        printed = self._page("Page.printToPDF", {"preferCSSPageSize": True,
                                                 "printBackground": True}, deadline=deadline)
        return base64.b64decode(printed["data"])

    # -- the DevTools protocol over two pipes ----------------------------------------------

    def _spawn(self) -> None:
        profile = Path(self._folder.name) / "profile"
        errors = os.open(Path(self._folder.name) / "stderr.txt", os.O_WRONLY | os.O_CREAT, 0o600)
        commands, self._to_browser = os.pipe()
        self._from_browser, answers = os.pipe()
        # Chromium reads commands on fd 3 and answers on fd 4; the pipes are first moved above
        # fd 10 so that putting them in place cannot overwrite one with the other.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (commands, answers)]
        try:
            self._pid = os.posix_spawn(
                self.chromium, chromium_command(self.chromium, profile), os.environ,
                file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                              (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                              (os.POSIX_SPAWN_DUP2, errors, 2),
                              (os.POSIX_SPAWN_DUP2, high[0], 3),
                              (os.POSIX_SPAWN_DUP2, high[1], 4)],
                setsid=True)  # its own process group: helpers (renderer, zygote) die with it
        except OSError as error:
            raise PrintFailed(f"cannot start {self.chromium}: {error}") from error
        finally:
            for fd in (errors, commands, answers, *high):
                os.close(fd)

    def _send(self, method: str, params: dict | None = None, *, deadline: float,
              session: str | None = None) -> dict:
        self._ids += 1
        message = {"id": self._ids, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._to_browser, data):]
        except OSError as error:
            raise self._gone() from error
        while True:
            answer = self._receive(deadline)
            if answer.get("id") == self._ids:
                if "error" in answer:
                    raise PrintFailed(f"{method}: {answer['error'].get('message')}")
                return answer.get("result", {})

    def _page(self, method: str, params: dict | None = None, *, deadline: float) -> dict:
        return self._send(method, params, deadline=deadline, session=self._session)

    def _evaluate(self, expression: str, deadline: float):
        result = self._page("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                 "returnByValue": True}, deadline=deadline)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise PrintFailed(details.get("exception", {}).get("description")
                              or details.get("text", "a script failed"))
        return result["result"].get("value")

    def _event(self, method: str, deadline: float) -> dict:
        while True:  # events that come before are of no interest
            message = self._receive(deadline)
            if message.get("method") == method:
                return message

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                self._kill()
                raise PrintFailed(f"no answer within {self.timeout:g} s")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise self._gone()
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _gone(self) -> PrintFailed:
        """The browser closed its end: say how it ended, with its last line of errors."""
        self._wait(5)
        errors = (Path(self._folder.name) / "stderr.txt").read_text(errors="replace")
        last = errors.strip().splitlines()[-1:]
        return PrintFailed(f"exit {self._returncode}" + (f": {last[0]}" if last else ""))

    def _wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while self._pid is not None and self._returncode is None:
            pid, status = os.waitpid(self._pid, os.WNOHANG)
            if pid:
                self._returncode = os.waitstatus_to_exitcode(status)
            elif time.monotonic() > end:
                return
            else:
                time.sleep(0.02)

    def _kill(self) -> None:
        if self._pid is None:
            return
        try:
            os.killpg(self._pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._wait(5)


def print_pdf(html_path: str | Path, pdf_path: str | Path, *, timeout: float = 180,
              chromium: str | None = None, static_charts: bool = False,
              printer: Printer | None = None) -> Path | None:
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
        Turn the charts into static images before printing (module docstring).
    printer : Printer, optional
        A printer made ready ahead (:meth:`Printer.get_ready` or :meth:`Printer.start`); it is
        used for this one print and closed. Default: one started now.

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
    if not Path(html_path).is_file():
        raise FileNotFoundError(f"no report to print at {html_path}")
    printer = printer or Printer(chromium, timeout=timeout)
    try:
        return printer.print(html_path, pdf_path, static_charts=static_charts)
    finally:
        printer.close()

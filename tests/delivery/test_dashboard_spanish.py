"""The Spanish dashboard speaks Spanish to the last label (issue 13, "Both languages").

What the client reads is scanned for English leftovers: English month names, raw keys of the
segment maps, of the relationship catalogue and of the demo's channels, "1 meses", "-0 €" and
Voila's/Plotly's English texts. In process (fast): every section ``crmkit.delivery.dashboard``
renders for the Spanish bank demo (its widgets' texts and its charts' JSON) and the CSVs it
offers. In a real Chromium (slow): the served page's visible text once every section is drawn.

The forbidden words are taken from the code's own lists (the bundled segment maps, the
catalogue, the demo's interactions file), so a new key is scanned without editing this file.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser

import pandas as pd
import pytest

from crmkit.core import catalogue, paths
from crmkit.delivery import dashboard
from crmkit.settings import segment_maps

BANK = paths.DEMO_CLIENTS / "bank"

#: English month names that Spanish never writes. Plotly's Spanish abbreviations "Feb", "Mar",
#: "May", "Jun", "Jul", "Sep", "Oct", "Nov" are spelt like the English ones, so an English axis
#: is told by its "Jan", "Apr", "Aug", "Dec" (every date axis here spans more than a year).
MONTHS = ("January", "February", "March", "April", "June", "July", "August",
          "September", "October", "November", "December", "Jan", "Apr", "Aug", "Dec")
#: Voila's and Plotly's English texts (Plotly's toolbar tooltips as plotly.js 2 writes them).
ENGLISH_UI = ("Loading widget", "Executing", "Running dashboard", "Running...",
              "There was an error when executing cell", "Error displaying widget",
              "Download plot as a png", "Zoom in", "Zoom out", "Autoscale", "Reset axes",
              "Produced with Plotly", "Edit in Chart Studio", "Pan", "Box Select",
              "Lasso Select", "Toggle Spike Lines", "Show closest data on hover",
              "Compare data on hover", "Double-click", "Click to enter")
#: Plural and sign slips of a formatter ("1 meses", "-0 €", "−0 €").
SLIPS = (re.compile(r"(?<![\d.,])1 meses\b"), re.compile(r"[-−]\s?0(?:[.,]0+)?\s?€"),
         re.compile(r"[-−]\s?€\s?0(?![\d.,]*[1-9])"))


def _raw_keys() -> set[str]:
    """Every key the client must never read: segments, relationship types, channels."""
    keys: set[str] = set()
    for name in segment_maps.bundled_maps():
        keys.update(segment_maps.load_map(name).keys)
    keys.add(segment_maps.OTHER)
    keys.update(catalogue.catalogue())
    channels = pd.read_csv(BANK / "interactions.csv", sep=";", encoding="latin-1",
                           usecols=[2]).iloc[:, 0].dropna().astype(str).unique()
    keys.update(channels)
    return keys


RAW_KEYS = _raw_keys()
# Case-sensitive on purpose: "Web" is a Spanish channel name, "web" the raw key; a key with
# "_" is matched wherever it stands, a plain word only as a whole word.
_KEY_PATTERN = re.compile(r"(?<![\w-])(?:" + "|".join(
    re.escape(k) for k in sorted(RAW_KEYS, key=len, reverse=True)) + r")(?![\w-])")
_MONTH_PATTERN = re.compile(r"\b(?:" + "|".join(MONTHS) + r")\b")


def english_leftovers(text: str) -> list[str]:
    """The forbidden words found in ``text`` (with a few characters around each)."""
    found = []
    for pattern in (_MONTH_PATTERN, _KEY_PATTERN, *SLIPS):
        for match in pattern.finditer(text):
            found.append(text[max(0, match.start() - 30):match.end() + 30])
    # Whole phrases: Spanish "Modo Panorámica" is not English "Pan".
    found += [phrase for phrase in ENGLISH_UI
              if re.search(rf"\b{re.escape(phrase)}(?!\w)", text)]
    return found


def test_the_scan_catches_what_it_looks_for():
    """The scanner is not blind: each kind of leftover is found, Spanish text passes."""
    assert {"cant_lose", "at_risk", "need_attention", "dedicated_personal_assistance",
            "automated_services", "web", "phone", "branch"} <= RAW_KEYS
    for bad in ("ene. Jan 2024", "Segmento: cant_lose", "canal web.", "Canal; branch;",
                "1 meses", "-0 €", "−0 €", "Loading widget...", "Executing 6 of 6",
                "Download plot as a png", "14 July"):
        assert english_leftovers(bad), bad
    for good in ("ene. 2024 · jul. 2024", "No se pueden perder", "Web · Teléfono · Oficina",
                 "11 meses", "-10 €", "0 €", "21 meses", "Cargando…", "1 mes", "Modo Panorámica",
                 "Ene 2024 Abr 2024 Jul 2024 Dic 2024"):
        assert not english_leftovers(good), good


class _Text(HTMLParser):
    """An HTML fragment's visible text and its tooltips (``title``), without CSS or scripts."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script"):
            self._skip += 1
        for name, value in attrs:
            if name in ("title", "alt", "aria-label", "placeholder", "download") and value:
                self.parts.append(value)

    def handle_endtag(self, tag):
        if tag in ("style", "script") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible_text(fragment: str) -> str:
    parser = _Text()
    parser.feed(fragment)
    return " ".join(html.unescape(p) for p in parser.parts)


#: Plotly keys that hold what a chart shows (not its ids, colours or raw data).
_SHOWN = {"name", "text", "hovertemplate", "texttemplate", "title", "ticktext", "labels",
          "x", "y", "legendgrouptitle", "hovertext"}


def _chart_texts(node, shown: bool = False) -> list[str]:
    if isinstance(node, dict):
        return [t for k, v in node.items() if k not in ("customdata", "meta", "uid", "template")
                for t in _chart_texts(v, shown or k in _SHOWN)]
    if isinstance(node, list):
        return [t for v in node for t in _chart_texts(v, shown)]
    return [node] if shown and isinstance(node, str) else []


def widget_texts(widget, charts: list[dict]) -> list[str]:
    """Everything a widget tree puts in front of the client; plotly bundles go to ``charts``."""
    import ipywidgets as w

    out: list[str] = []
    for attr in ("description", "tooltip", "placeholder"):
        value = getattr(widget, attr, None)
        if isinstance(value, str) and value:
            out.append(value)
    if isinstance(widget, (w.HTML, w.HTMLMath, w.Label)):
        out.append(visible_text(widget.value))
    if isinstance(widget, w.widgets.widget_selection._Selection):
        out.extend(str(label) for label in widget._options_labels)
    if isinstance(widget, w.Output):
        for output in widget.outputs:
            for mime, content in (output.get("data") or {}).items():
                if mime == dashboard.PLOTLY_MIME:
                    charts.append(content)
                    out.extend(_chart_texts(content.get("data", [])))
                    out.extend(_chart_texts(content.get("layout", {}), shown=False))
                elif mime == "text/html":
                    out.append(visible_text(content))
    for child in getattr(widget, "children", ()):
        out.extend(widget_texts(child, charts))
    return out


def _layout_texts(layout: dict) -> list[str]:
    """Titles, annotations and tick texts of a chart's layout."""
    out = []
    for key, value in layout.items():
        if key == "title" or key == "annotations" or re.match(r"[xy]axis\d*$", key) \
                or key == "legend":
            out.extend(_chart_texts(value, shown=True))
    return out


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """The Spanish bank demo's dashboard data (a copy: the demo may be regenerated)."""
    root = tmp_path_factory.mktemp("bank")
    shutil.copytree(BANK, root / "bank")
    data = dashboard.load(root / "bank", language="es")
    assert data.lang == "es"
    return data


SECTIONS = ("header", "decision", "overview", "segment_explorer", "what_if", "plan",
            "downloads")


@pytest.fixture(scope="module")
def rendered(bank):
    """Each section of the notebook, as built for the bank: its texts and its charts."""
    out = {}
    for name in SECTIONS:
        charts: list[dict] = []
        texts = widget_texts(getattr(dashboard, name)(bank), charts)
        for chart in charts:
            texts.extend(_layout_texts(chart.get("layout", {})))
        out[name] = (texts, charts)
    return out


@pytest.mark.parametrize("section", SECTIONS)
def test_spanish_sections_have_no_english_or_raw_keys(rendered, section):
    texts, _ = rendered[section]
    assert texts, f"{section} shows no text at all"
    leftovers = [hit for text in texts for hit in english_leftovers(text)]
    assert not leftovers, f"{section}: {leftovers[:10]}"


def test_every_spanish_chart_uses_plotlys_spanish_locale(rendered):
    """Month names on date axes and toolbar tooltips come from plotly's locale: each chart
    must ask for it, without the cloud button and the logo."""
    charts = [c for _, (_, cs) in rendered.items() for c in cs]
    assert len(charts) >= 3  # monthly revenue, segments, plan's schedule and cash
    for chart in charts:
        config = chart.get("config") or {}
        assert config.get("locale") == "es", config
        assert config.get("displaylogo") is False and not config.get("showSendToCloud")
        assert chart["layout"].get("separators") == ",."


def test_the_segment_explorer_names_every_segment_in_spanish(bank):
    """Every segment of the dropdown, chosen in turn, shows Spanish figures only."""
    import ipywidgets as w

    box = dashboard.segment_explorer(bank)
    dropdowns = [c for c in _walk(box) if isinstance(c, w.Dropdown)]
    assert dropdowns
    choose = dropdowns[0]
    for _, key in list(choose.options):
        choose.value = key
        charts: list[dict] = []
        texts = widget_texts(box, charts)
        leftovers = [hit for text in texts for hit in english_leftovers(text)]
        assert not leftovers, f"segment {key}: {leftovers[:10]}"


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def _read_csv(content: bytes) -> list[list[str]]:
    text = content.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text), delimiter=";"))


@pytest.mark.parametrize("export", ["segments_export", "customers_export"])
def test_spanish_csvs_have_no_raw_keys_and_spanish_numbers(bank, export):
    frame = getattr(dashboard, export)(bank)
    rows = _read_csv(dashboard.csv_bytes(frame, "es"))
    header, body = rows[0], rows[1:]
    assert len(body) == len(frame) > 0
    leftovers = [hit for cell in header + [c for r in body for c in r]
                 for hit in english_leftovers(cell)]
    assert not leftovers, leftovers[:10]
    # Every segment appears by the name the page shows for it.
    segment_column = header.index(bank.t("dash_col_segment"))
    assert {r[segment_column] for r in body} <= set(bank.segments["name"])
    # Decimal comma: no number in the file is written with a decimal point.
    assert not any(re.fullmatch(r"-?\d+\.\d+", c) for r in body for c in r)


def test_the_page_texts_voila_shows_while_loading_are_spanish():
    texts = dashboard.page_texts("es")
    assert set(texts) >= {"running", "executing", "loading_widget", "cell_error"}
    for key, text in texts.items():
        assert not english_leftovers(text), (key, text)
    assert "{index}" in texts["executing"] and "{count}" in texts["executing"]


# --------------------------------------------------------------------------------------------
# The served page, in a real Chromium
# --------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.browser
def test_served_spanish_page_shows_no_english(tmp_path, request):
    """The bank's dashboard as the client sees it: every section drawn, the toolbar's
    tooltips and the date axes' months included, and nothing English or raw in it."""
    import test_dashboard_browser as browser_tests  # tests/browser/, importable (conftest)
    if browser_tests.CHROMIUM is None:
        pytest.skip("Chromium is not installed")
    clients = tmp_path / "clients"
    shutil.copytree(BANK, clients / "bank")
    server = _serve(browser_tests, clients / "bank", tmp_path / "logs")
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=browser_tests.CHROMIUM,
                                                  headless=True,
                                                  args=browser_tests.CHROMIUM_ARGS)
            try:
                page = chromium.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(browser_tests.PAGE_TIMEOUT_MS)
                page.goto(server["url"], wait_until="commit")
                missing = browser_tests._missing_sections(page)
                assert not missing, missing
                page.wait_for_selector(".js-plotly-plot .xtick", state="attached")
                assert page.evaluate("document.documentElement.lang") == "es"
                text = page.inner_text("body")
                # Plotly's toolbar tooltips are attributes, not text: read them too.
                tips = page.evaluate("""() => Array.from(document.querySelectorAll(
                    '.modebar-btn')).map(b => b.getAttribute('data-title') || '')""")
                ticks = page.evaluate("""() => Array.from(document.querySelectorAll(
                    '.js-plotly-plot .xtick text, .js-plotly-plot .ytick text'))
                    .map(t => t.textContent)""")
            finally:
                chromium.close()
    finally:
        _stop(server)
    assert tips, "no Plotly toolbar on the page"
    leftovers = english_leftovers(text) + [hit for tip in tips + ticks
                                           for hit in english_leftovers(tip)]
    assert not leftovers, leftovers[:10]


def _serve(browser_tests, client, logs):
    logs.mkdir()
    port = browser_tests._free_port()
    out = logs / "stdout.txt"
    process = subprocess.Popen(
        [sys.executable, "-m", "crmkit", "dashboard", str(client), "--port", str(port),
         "--reports", str(logs / "no-reports"), "--language", "es"],
        stdout=out.open("w"), stderr=(logs / "stderr.txt").open("w"), cwd=client.parent,
        start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        links = [line for line in out.read_text().splitlines() if line.startswith("http")]
        if links:
            return {"process": process, "url": links[0]}
        if process.poll() is not None:
            break
        time.sleep(0.2)
    _stop({"process": process})
    raise AssertionError((logs / "stderr.txt").read_text()[-3000:])


def _stop(server):
    process = server["process"]
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_json_of_results_is_not_needed_for_the_scan(bank):
    """Without a run the dashboard computes what it shows (the case scanned above)."""
    assert bank.run_dir is None
    json.dumps(dashboard.decision_results(bank), default=str)


#: A shop's words, which a bank's client must not read (issue 13: "compras", "ticket medio").
SHOP_WORDS = re.compile(r"\b(compras?|ticket medio|compra media|cupón|cupones|en la caja)\b",
                        re.IGNORECASE)


@pytest.mark.parametrize("section", SECTIONS)
def test_a_banks_dashboard_speaks_of_operations_not_purchases(rendered, section):
    texts, _ = rendered[section]
    hits = sorted({m.group(0) for text in texts for m in SHOP_WORDS.finditer(text)})
    assert not hits, f"{section}: {hits}"

"""report.html and report.pdf of real demo runs, looked at as the client sees them.

The retail demo's shared runs (English, its own language, and Spanish) are opened in Debian's
Chromium through Playwright, on a wide screen, a narrow one and as printed; their PDFs are
rendered page by page with pdftoppm. The assertions are about properties (no table wider than its
card, nothing in the right margin of a page, no English month on a Spanish axis), never about
today's figures, so that a regenerated demo keeps them meaningful.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from test_pdf import cut_cells

from crmkit.core.catalogue import RELATIONSHIP_TYPES
from crmkit.delivery.pdf import chromium_path

CHROMIUM = chromium_path()
PDFTOPPM, PDFTOTEXT, PDFINFO = (shutil.which(n) for n in ("pdftoppm", "pdftotext", "pdfinfo"))
pytestmark = [pytest.mark.slow,  # full demo runs and a browser
              pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (/usr/bin/chromium)")]
needs_poppler = pytest.mark.skipif(None in (PDFTOPPM, PDFTOTEXT, PDFINFO),
                                   reason="needs poppler-utils (pdftoppm, pdftotext, pdfinfo)")
#: Month names that are English only (Spanish shares "Feb", "Mar", "May", "Jun", "Jul", "Sep",
#: "Oct", "Nov" as abbreviations, so those prove nothing).
ENGLISH_MONTHS = re.compile(r"\b(Jan|Apr|Aug|Dec|January|February|March|April|June|July|August|"
                            r"September|October|November|December)\b")
#: Channel codes whose Spanish name differs (web, app and chat read the same).
ENGLISH_CHANNELS = ("phone", "store", "branch", "email")
#: Printed page margin at the right (the report's @page rule), in millimetres; a strip of
#: most of it must stay blank on every page.
RIGHT_MARGIN_MM = 13
VIEWPORTS = {"wide": 1280, "narrow": 760}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def runs(shared_runs):
    return {"en": shared_runs.demo("retail", "en"), "es": shared_runs.demo("retail", "es")}


def _open(browser, report, width: int, *, print_media: bool = False):
    page = browser.new_page(viewport={"width": width, "height": 900})
    if print_media:
        page.emulate_media(media="print")
    page.goto(report.as_uri())
    page.wait_for_function("document.querySelectorAll('.crm-chart').length === 0 || "
                           "document.querySelectorAll('.crm-chart .main-svg').length > 0",
                           timeout=60_000)
    return page


#: Every table (and its scroll box, if any) against the content box of the card holding it.
_WIDTHS = """() => Array.from(document.querySelectorAll('table.crm-table')).map(table => {
  const card = table.closest('section, nav, main');
  const style = getComputedStyle(card);
  const box = card.getBoundingClientRect();
  const right = box.right - parseFloat(style.paddingRight) - parseFloat(style.borderRightWidth);
  const scroller = table.closest('.crm-output');
  return {head: Array.from(table.querySelectorAll('thead th')).map(th => th.textContent)
                .join(' | ').slice(0, 120),
          table_right: table.getBoundingClientRect().right, card_right: right,
          scrolls: scroller ? scroller.scrollWidth > scroller.clientWidth + 1 : false};
})"""


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("media", ["wide", "narrow", "print"])
def test_no_table_is_wider_than_its_card(browser, runs, lang, media):
    report = runs[lang].folder / "report.html"
    # Printed, the page is A4 less the margins: 184 mm, about 695 CSS pixels.
    width = 695 if media == "print" else VIEWPORTS[media]
    page = _open(browser, report, width, print_media=media == "print")
    try:
        tables = page.evaluate(_WIDTHS)
    finally:
        page.close()
    assert len(tables) > 10, "the demo report should hold its tables"
    wide = [t for t in tables if t["table_right"] > t["card_right"] + 1 or t["scrolls"]]
    assert not wide, json.dumps(wide, ensure_ascii=False, indent=1)


def test_charts_have_a_toolbar_without_plotly_cloud_or_logo(browser, runs):
    page = _open(browser, runs["en"].folder / "report.html", 1280)
    try:
        page.hover(".crm-chart .main-svg")
        buttons = page.evaluate("() => Array.from(document.querySelectorAll('.modebar-btn'))"
                                ".map(b => b.getAttribute('data-title'))")
        logos = page.evaluate("() => document.querySelectorAll('.modebar-btn--logo').length")
    finally:
        page.close()
    assert "Download plot as a PNG" in buttons and any("Zoom" in (b or "") for b in buttons)
    assert logos == 0 and not [b for b in buttons if b and "Cloud" in b or "Share" in (b or "")]


@pytest.fixture(scope="module")
def spanish(browser, runs):
    """What the Spanish report shows: chart labels, table cells, tooltips and all its text."""
    page = _open(browser, runs["es"].folder / "report.html", 1280)
    try:
        page.hover(".crm-chart .main-svg")
        shown = {
            "ticks": page.evaluate("() => Array.from(document.querySelectorAll("
                                   "'.xtick text, .ytick text, .legendtext, .annotation-text'))"
                                   ".map(n => n.textContent)"),
            "cells": page.evaluate("() => Array.from(document.querySelectorAll("
                                   "'table.crm-table td, table.crm-table th'))"
                                   ".map(n => n.textContent)"),
            "tooltips": page.evaluate("() => Array.from(document.querySelectorAll("
                                      "'.modebar-btn')).map(b => b.getAttribute('data-title'))"),
            "text": page.evaluate("() => document.body.innerText")}
    finally:
        page.close()
    assert shown["ticks"] and shown["cells"]
    return shown


def test_spanish_report_speaks_spanish_to_the_last_label(spanish, runs):
    run = runs["es"]
    ticks, tooltips, text = spanish["ticks"], spanish["tooltips"], spanish["text"]
    months = [tick for tick in ticks if ENGLISH_MONTHS.search(tick)]
    assert not months, months[:10]
    assert "Descargar gráfica como PNG" in tooltips, tooltips
    assert not re.search(r"\b1 meses\b", text)
    assert not re.search(r"-\s?0\s?€|−\s?0\s?€|-€0\b", text)
    # Percentages the Spanish way on every axis: "52 %", never "52%".
    glued = [s for s in ticks if re.search(r"\d%", s)]
    assert not glued, glued[:10]
    results = json.loads((run.folder / "results.json").read_text(encoding="utf-8"))
    keys = {s["segment"] for s in results["cost_benefit"]["segments"]} | set(RELATIONSHIP_TYPES)
    raw = [k for k in keys if "_" in k and re.search(rf"\b{re.escape(k)}\b", text)]
    assert not raw, raw


def test_spanish_report_names_channels_in_spanish(spanish):
    channels = [c for c in spanish["ticks"] + spanish["cells"]
                if c.strip().lower() in ENGLISH_CHANNELS]
    assert not channels, channels


def test_spanish_tables_write_percentages_with_a_space(spanish):
    glued = [s for s in spanish["cells"] if re.search(r"\d%", s)]
    assert not glued, glued[:10]


def _pages(pdf, folder) -> list[Image.Image]:
    subprocess.run([PDFTOPPM, "-r", "40", "-png", str(pdf), str(folder / "page")], check=True,
                   timeout=300)
    return [Image.open(p).convert("L") for p in sorted(folder.glob("page*.png"))]


def _page_count(pdf) -> int:
    info = subprocess.run([PDFINFO, str(pdf)], capture_output=True, text=True, check=True)
    return int(re.search(r"^Pages:\s+(\d+)", info.stdout, re.M).group(1))


@needs_poppler
@pytest.mark.parametrize("lang", ["en", "es"])
def test_no_page_of_the_pdf_is_clipped_at_the_right_edge(runs, lang, tmp_path):
    pdf = runs[lang].folder / "report.pdf"
    assert pdf.is_file()
    info = subprocess.run([PDFINFO, str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "(A4)" in info  # a euro client prints on A4
    pages = _pages(pdf, tmp_path)
    assert len(pages) == _page_count(pdf)
    clipped = []
    for number, page in enumerate(pages, start=1):
        pixels = np.asarray(page)
        strip = max(2, int(page.width * (RIGHT_MARGIN_MM - 4) / 210))  # most of the margin
        if (pixels[:, -strip:] < 235).mean() > 0.0005:
            clipped.append(number)
    assert not clipped, f"pages with ink in the right margin (cut content): {clipped}"
    # A cell cut by the page's edge or a scroll box loses its text in the PDF.
    cut = cut_cells(runs[lang].folder / "report.html", pdf)
    assert not cut, cut[:20]


@needs_poppler
def test_the_retail_pdf_is_at_most_forty_pages(runs):
    assert _page_count(runs["en"].folder / "report.pdf") <= 40


@needs_poppler
def test_spanish_pdf_text_has_no_english_months_or_wrong_plurals(runs, tmp_path):
    text = subprocess.run([PDFTOTEXT, "-layout", str(runs["es"].folder / "report.pdf"), "-"],
                          capture_output=True, text=True, check=True, timeout=120).stdout
    assert len(text) > 5000
    assert not re.search(r"\b1 meses\b", text)
    months = sorted(set(ENGLISH_MONTHS.findall(text)))
    assert not months, months


#: Pairs of chart elements that overlap: a legend over a title, an axis title or a tick label; a
#: bar's label over a tick label or out of the chart.
_COLLISIONS = """() => {
  const box = e => e.getBoundingClientRect();
  const hit = (a, b) => a.width && b.width && a.left < b.right - 1 && b.left < a.right - 1
                        && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  const found = [];
  document.querySelectorAll('.crm-chart').forEach(div => {
    const title = ((div.layout || {}).title || {}).text || '';
    const legend = div.querySelector('.legend .bg');
    const labels = Array.from(div.querySelectorAll(
      '.g-gtitle text, .g-xtitle text, .g-ytitle text, .xtick text, .ytick text'));
    const svg = box(div.querySelector('.main-svg'));
    if (legend) labels.forEach(l => { if (hit(box(legend), box(l)))
      found.push([title, 'legend over', l.textContent]); });
    div.querySelectorAll('.bartext').forEach(b => {
      const bar = box(b);
      labels.forEach(l => { if (hit(bar, box(l)))
        found.push([title, b.textContent, l.textContent]); });
      if (bar.width && (bar.right > svg.right + 1 || bar.left < svg.left - 1))
        found.push([title, b.textContent, 'outside the chart']);
    });
  });
  return found;
}"""


@pytest.mark.parametrize("lang", ["en", "es"])
def test_no_chart_label_runs_over_another(browser, runs, lang):
    page = _open(browser, runs[lang].folder / "report.html", VIEWPORTS["wide"])
    try:
        collisions = page.evaluate(_COLLISIONS)
    finally:
        page.close()
    assert not collisions, json.dumps(collisions, ensure_ascii=False, indent=1)

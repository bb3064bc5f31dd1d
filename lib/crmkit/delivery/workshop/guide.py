"""The facilitator guide (Markdown and PDF) and the laptops' setup note of a workshop pack.

The guide's prose lives in ``templates/workshop/guide.<lang>.md`` and ``setup.<lang>.md``; this
module fills in what depends on the pack (the timetable from the exercises' minutes, the cases)
and prints the guide to PDF with :func:`crmkit.delivery.pdf.print_pdf`, the report's own printer.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

from crmkit.core import paths
from crmkit.core.i18n import t

__all__ = ["timetable", "write_guide"]

log = logging.getLogger(__name__)

#: Minutes of the workshop outside the exercises: opening, break, closing.
OPENING, BREAK, CLOSING = 10, 10, 10
#: The workshop's length in minutes.
LENGTH = 180

HEADERS = {"en": ("Start", "Minutes", "What"), "es": ("Inicio", "Minutos", "Qué")}
STEPS = {"en": ("Opening: the case and the objective of the day", "Break",
                "Closing: the class overview (crmkit workshop grade) and what to re-explain"),
         "es": ("Apertura: el caso y el objetivo del día", "Descanso",
                "Cierre: el resumen de la clase (crmkit workshop grade) y qué volver a explicar")}


def timetable(exercises: list[dict], lang: str) -> list[tuple[str, int, str]]:
    """``[(start "h:mm", minutes, what)]`` for the three hours, the break after exercise 3."""
    opening, pause, closing = STEPS[lang]
    rows: list[tuple[int, str]] = [(OPENING, opening)]
    for i, exercise in enumerate(exercises):
        rows.append((int(exercise["minutes"]), _title(exercise, lang)))
        if i == 2:
            rows.append((BREAK, pause))
    used = sum(m for m, _ in rows)
    rows.append((max(CLOSING, LENGTH - used), closing))
    out, start = [], 0
    for minutes, what in rows:
        out.append((f"{start // 60}:{start % 60:02d}", minutes, what))
        start += minutes
    return out


def _title(exercise: dict, lang: str) -> str:
    first = exercise["cells"][0]["md"][lang].strip().splitlines()[0]
    return first.lstrip("# ").split(" (")[0]


def _table(rows: list[tuple[str, int, str]], lang: str) -> str:
    head = "| " + " | ".join(HEADERS[lang]) + " |\n|---|---:|---|\n"
    return head + "\n".join(f"| {s} | {m} | {w} |" for s, m, w in rows)


def _fill(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def markdown_html(text: str, title: str) -> str:
    """A self-contained HTML page of a Markdown text, for printing."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(text)
    style = ("body{font-family:sans-serif;max-width:46em;margin:2em auto;line-height:1.45;"
             "font-size:11pt}table{border-collapse:collapse}td,th{border:1px solid #bbb;"
             "padding:.2em .5em}code{background:#f2f2f2}h1,h2{color:#1b4965}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{style}</style></head><body>{body}</body></html>")


def write_guide(pack_dir: Path, lang: str, cases: list[str], exercises: list[dict], *,
                pdf: bool = True) -> Path:
    """Write ``guide.md`` (and ``guide.pdf``) and ``setup.md`` into ``pack_dir``."""
    folder = paths.TEMPLATES / "workshop"
    values = {"timetable": _table(timetable(exercises, lang), lang),
              "cases": ", ".join(f"`{c}`" for c in cases), "first_case": cases[0]}
    setup = _fill((folder / f"setup.{lang}.md").read_text(encoding="utf-8"), values)
    (pack_dir / "setup.md").write_text(setup, encoding="utf-8")
    values["setup"] = setup.split("\n", 1)[1].strip()  # the note without its own title
    text = _fill((folder / f"guide.{lang}.md").read_text(encoding="utf-8"), values)
    guide = pack_dir / "guide.md"
    guide.write_text(text, encoding="utf-8")
    if pdf:
        from crmkit.delivery.pdf import chromium_path, missing_notice, print_pdf

        if chromium_path() is None:
            print(missing_notice(lang, "ws_guide_pdf_unavailable", "guide.pdf", "guide.md"))
            return guide
        page = pack_dir / ".guide.html"
        page.write_text(markdown_html(text, text.splitlines()[0].lstrip("# ")), encoding="utf-8")
        try:
            if print_pdf(page, pack_dir / "guide.pdf") is None:
                print(t("ws_guide_pdf_unavailable", lang))
        finally:
            page.unlink()
    return guide

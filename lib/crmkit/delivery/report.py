"""The client-facing report: one HTML document for all the workbooks of a run.

``report.html`` has a cover (client, date), a table of contents, one chapter per workbook in the
report's language, the client's colours, no code, and plotly charts that work offline (plotly.js
is embedded once). The prose of the markdown cells is a Jinja template filled with the run's
``results.json``, so the figures in the text are the figures of this run.

Why not nbconvert's HTML exporter: it renders one notebook per document, cannot drop the cells of
the other language, and draws plotly's JSON output only with require.js and a CDN. The pieces it
would give us here (markdown, escaping) come from markdown-it-py and Jinja, which nbconvert itself
builds on.

**One page for the decision.** The report opens with
:func:`crmkit.delivery.decision_page.decision_page`
(the decision, why, the conditions, what to do per segment); a run without a decision keeps the
executive summary (:mod:`crmkit.delivery.summary`).

**Client text and method.** The chapters speak to the client; a cell tagged ``report-method``
(model parameters, formulas, algorithm names, client.yaml instructions) is moved, in its
chapter's order, to the "Method and assumptions" appendix at the end, under its chapter's title,
its headings one level lower. A cell tagged ``report-skip`` (a consultant's note) never reaches
the report; both stay in the executed notebooks for the consultant.

**The client's words.** Every chapter is rewritten in the client's industry vocabulary
(:mod:`crmkit.delivery.vocabulary`): a bank's tables say "operations", not "purchases".

Charts are drawn with the shared plotly config (:func:`crmkit.delivery.charts.plotly_config`: zoom
and PNG download, no Plotly Cloud button, no logo) and, in Spanish, plotly's Spanish locale,
embedded once beside plotly.js. Tables wider than the page are split by
:mod:`crmkit.delivery.tables`; the print CSS sets the paper (A4, or US Letter where the client's
territory uses it: :func:`crmkit.core.i18n.paper_size`; client.yaml's ``report: {paper: …}``
overrides it), repeats a table's header on every page
it runs over and never breaks a chart.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jinja2
import nbformat
from markdown_it import MarkdownIt

from crmkit import __version__
from crmkit.core import paths
from crmkit.core.i18n import Formatter, t
from crmkit.delivery.charts import finish, plotly_config, plotly_locale_js
from crmkit.delivery.decision_page import decision_page
from crmkit.delivery.summary import executive_summary
from crmkit.delivery.vocabulary import DEFAULT as RETAIL_WORDS
from crmkit.delivery.vocabulary import rewrite, rewrite_figure, vocabulary_of, word
from crmkit.settings.client import ClientConfig

PLOTLY_MIME = "application/vnd.plotly.v1+json"
LANGUAGE_TAG = "lang-"
#: Cells tagged so never reach the client (e.g. a consultant's scratch cell).
SKIP_TAG = "report-skip"
#: Cells tagged so move to the "Method and assumptions" appendix, under their chapter's title.
METHOD_TAG = "report-method"
#: The appendix's slug (its anchor and the prefix of its headings' anchors).
METHOD_SLUG = "method"
#: Width of each paper in millimetres, and the side margins of the print CSS (``@page``).
PAPER_WIDTH_MM = {"A4": 210.0, "Letter": 215.9}
PRINT_SIDE_MARGINS_MM = 2 * 13
_MD_SPECIALS = re.compile(r"([\\`*_{}\[\]<>()#+\-!|~])")


def escape_markdown(text: str) -> str:
    """Backslash-escape markdown punctuation so client text is shown, never interpreted."""
    return _MD_SPECIALS.sub(r"\\\1", text)


@functools.cache
def _markdown() -> MarkdownIt:
    # html=False: raw HTML typed in a cell (or smuggled in client text) is shown as text.
    return MarkdownIt("commonmark", {"html": False, "typographer": True}).enable("table")


def prose_environment(fmt: Formatter, vocabulary: str = RETAIL_WORDS) -> jinja2.Environment:
    """The Jinja environment that fills a markdown cell: filters format in the language.

    The ``t`` filter translates a catalogue key in the client's ``vocabulary``
    (:func:`crmkit.delivery.vocabulary.word`).
    """

    def finalize(value: Any) -> str:
        if value is None:
            return "–"
        return escape_markdown(value if isinstance(value, str) else str(value))

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, finalize=finalize,
                             autoescape=False, keep_trailing_newline=True)
    env.filters.update(
        money=lambda v, d=0: fmt.money(v, d), pct=lambda v, d=0: fmt.pct(v, d),
        number=lambda v, d=0: fmt.number(v, d),
        date=lambda v: fmt.date(dt.date.fromisoformat(v) if isinstance(v, str) else v),
        month=lambda v: fmt.month(dt.date.fromisoformat(v) if isinstance(v, str) else v),
        t=lambda key, **kw: word(key, fmt.lang, vocabulary, **kw),
    )
    return env


def cell_language(cell) -> str | None:
    for tag in cell.get("metadata", {}).get("tags", []):
        if tag.startswith(LANGUAGE_TAG):
            return tag[len(LANGUAGE_TAG):]
    return None


class Chapter:
    """One workbook rendered as HTML, with its headings for the table of contents."""

    def __init__(self, slug: str, title: str, body: str, headings: list[tuple[str, str]],
                 method: str = ""):
        self.slug = slug
        self.title = title
        self.body = body
        self.headings = headings
        #: The chapter's ``report-method`` cells, rendered, for the appendix.
        self.method = method


class _ChartCounter:
    def __init__(self):
        self.n = 0

    def next_id(self) -> str:
        self.n += 1
        return f"chart-{self.n}"


def _script_json(value: Any) -> str:
    # "</" inside a <script> would end it early; client text may contain it.
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")


def render_output(output: dict, charts: _ChartCounter, lang: str = "en",
                  vocabulary: str = RETAIL_WORDS) -> str:
    """HTML of one code-cell output: a chart, a table, an image; stdout and logs are dropped.

    A chart gets the report's config (:func:`~crmkit.delivery.charts.plotly_config` in ``lang``)
    whatever config the kernel gave it, and the theme's last pass
    (:func:`~crmkit.delivery.charts.finish`), which a chart already finished in the kernel
    takes unchanged.
    """
    if output.get("output_type") not in ("display_data", "execute_result"):
        return ""
    data = output.get("data", {})
    if PLOTLY_MIME in data:
        figure = rewrite_figure(finish(data[PLOTLY_MIME], lang), lang, vocabulary)
        chart_id = charts.next_id()
        return (f'<div class="crm-chart" id="{chart_id}"></div><script>Plotly.newPlot('
                f'"{chart_id}",{_script_json(figure.get("data", []))},'
                f'{_script_json(figure.get("layout", {}))},'
                f'{_script_json(plotly_config(lang))});</script>')
    if "text/html" in data:
        # Produced by crmkit's tables, which escape every cell (see crmkit.delivery.tables).
        return f'<div class="crm-output">{"".join(data["text/html"])}</div>'
    if "image/png" in data:
        return f'<img class="crm-image" alt="" src="data:image/png;base64,{data["image/png"]}">'
    if "text/markdown" in data:
        return _markdown().render("".join(data["text/markdown"]))
    return ""


def _slugify(text: str) -> str:
    return re.sub(r"[^\w]+", "-", text.lower()).strip("-")


def render_chapter(notebook: nbformat.NotebookNode, lang: str, env: jinja2.Environment,
                   results: dict, charts: _ChartCounter, slug: str,
                   vocabulary: str = RETAIL_WORDS) -> Chapter:
    """Render one executed workbook in ``lang``: its prose filled, its outputs, no code.

    Cells tagged :data:`METHOD_TAG` are rendered into :attr:`Chapter.method` (for the appendix)
    instead of the chapter's body; cells tagged :data:`SKIP_TAG` are left out.
    """
    parts: list[str] = []
    method: list[str] = []
    for cell in notebook.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if SKIP_TAG in tags or "parameters" in tags or "injected-parameters" in tags:
            continue
        language = cell_language(cell)
        if language is not None and language != lang:
            continue
        into = method if METHOD_TAG in tags else parts
        if cell.cell_type == "markdown":
            text = env.from_string(cell.source).render(**results)
            into.append(_markdown().render(text))
        elif cell.cell_type == "code":
            into.extend(render_output(o, charts, lang, vocabulary)
                        for o in cell.get("outputs", []))
    chapter = _number_headings(rewrite("".join(parts), lang, vocabulary), slug, slug)
    chapter.method = rewrite("".join(method), lang, vocabulary)
    return chapter


def _number_headings(body: str, slug: str, title: str) -> Chapter:
    """Give every h1-h3 an anchor; the h1 is the chapter's title, the h2s its contents."""
    headings: list[tuple[str, str]] = []
    used: set[str] = set()

    def number_heading(match: re.Match) -> str:
        nonlocal title
        level, inner = match.group(1), match.group(2)
        anchor = f"{slug}-{_slugify(re.sub('<[^>]+>', '', inner))}"
        while anchor in used:
            anchor += "-x"
        used.add(anchor)
        if level == "1":
            title = html.unescape(re.sub("<[^>]+>", "", inner))
        elif level == "2":
            headings.append((anchor, html.unescape(re.sub("<[^>]+>", "", inner))))
        return f'<h{level} id="{anchor}">{inner}</h{level}>'

    body = re.sub(r"<h([1-3])>(.*?)</h\1>", number_heading, body, flags=re.S)
    return Chapter(slug, title, body, headings)


def _demote(body: str) -> str:
    """Headings one level lower (h1 → h3: under the appendix's h1 and the chapter's h2)."""
    def lower(match: re.Match) -> str:
        level = min(int(match.group(2)) + (2 if match.group(2) == "1" else 1), 6)
        return f"<{match.group(1)}h{level}"

    return re.sub(r"<(/?)h([1-5])(?=[\s>])", lower, body)


def method_appendix(chapters: Iterable[Chapter], lang: str) -> Chapter | None:
    """The "Method and assumptions" appendix: each chapter's method cells under its title.

    None when no chapter has any.
    """
    sections = [(c.title, c.method) for c in chapters if c.method.strip()]
    if not sections:
        return None
    body = f"<h1>{html.escape(t('report_method_title', lang))}</h1>"
    body += f"<p>{html.escape(t('report_method_lead', lang))}</p>"
    body += "".join(f"<h2>{html.escape(title)}</h2>{_demote(method)}"
                    for title, method in sections)
    return _number_headings(body, METHOD_SLUG, t("report_method_title", lang))


def render_report(notebooks: Iterable[Path], results: dict, config: ClientConfig, lang: str,
                  *, generated: dt.datetime | None = None, as_of: dt.date | None = None,
                  paper: str | None = None) -> str:
    """Build ``report.html`` from the executed workbooks of a run.

    Parameters
    ----------
    notebooks : paths of executed notebooks, in the consultant's order
    results : dict
        The run's ``results.json``: one section per workbook.
    config : ClientConfig
    lang : {"en", "es"}
    generated : datetime, optional
        When the run was made (the cover's date).
    as_of : date, optional
        The date the client's data runs to.
    paper : {"A4", "Letter"}, optional
        The printed page; default client.yaml's ``report.paper``, else the territory's
        (:attr:`~crmkit.core.i18n.Formatter.paper`).

    Returns
    -------
    str
        A complete, self-contained HTML document.
    """
    fmt = Formatter(lang, config.currency)
    paper = paper or config.report.paper or fmt.paper
    if paper not in ("A4", "Letter"):
        raise ValueError(f"paper {paper!r}; expected A4 or Letter")
    vocabulary = vocabulary_of(config)
    env = prose_environment(fmt, vocabulary)
    context = {**results, "client": {"name": config.name, "industry": config.industry,
                                     "currency": config.currency}}
    charts = _ChartCounter()
    chapters = []
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        slug = "wb-" + path.stem.replace("_", "-")  # ids must not start with a digit in CSS
        chapters.append(render_chapter(notebook, lang, env, context, charts, slug, vocabulary))
    appendix = method_appendix(chapters, lang)
    if appendix is not None:
        chapters.append(appendix)
    template = jinja2.Environment(
        loader=jinja2.FileSystemLoader(paths.TEMPLATES / "report"),
        autoescape=jinja2.select_autoescape(default=True),
    ).get_template("report.html.j2")
    generated = generated or dt.datetime.now()
    return template.render(
        lang=lang, client=config, chapters=chapters,
        summary=executive_summary(results, fmt),
        decision=jinja2.utils.markupsafe.Markup(decision_page(
            results, lang, currency=config.currency, margins=config.crm_project.decision)),
        t=lambda key, **kw: t(key, lang, **kw),
        generated=fmt.date(generated.date()), as_of=fmt.date(as_of) if as_of else None,
        plotly_js=jinja2.utils.markupsafe.Markup(plotly_js()) if charts.n else "",
        plotly_locale=jinja2.utils.markupsafe.Markup(_script_text(plotly_locale_js(lang)))
        if charts.n else "",
        paper=paper, print_width_mm=f"{PAPER_WIDTH_MM[paper] - PRINT_SIDE_MARGINS_MM:.1f}",
        version=__version__,
    )


def _script_text(text: str) -> str:
    return text.replace("</script", "<\\/script")


@functools.cache
def plotly_js() -> str:
    """plotly.js as the report embeds it (read once per process: the file is 4.8 MB)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().replace("</script", "<\\/script")

"""The report: one language only, prose filled from results, client text escaped, charts offline."""

import re

import nbformat
import plotly.graph_objects as go
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from crmkit.delivery.report import escape_markdown, render_report
from crmkit.settings.client import ClientConfig

HOSTILE = '<script>alert("x")</script> **bold** [link](javascript:alert(1))'


def _config(name="Acme <b>Ltd</b>") -> ClientConfig:
    cap = {"score": 3}
    factor = {"impact": "low", "time_frame": "short", "direction": "threat"}
    return ClientConfig.model_validate({
        "name": name, "currency": "EUR",
        "context": {"internal": dict.fromkeys(("financial", "operational", "technological",
                                               "people"), cap),
                    "external": {"competitors": factor, "regulation": factor,
                                 "disruptive_technology": factor,
                                 "industry_maturity": dict(factor, stage="growth")}}})


def _notebook(tmp_path):
    figure = go.Figure(go.Bar(x=[HOSTILE], y=[3])).to_plotly_json()
    chart = new_code_cell("chart()", outputs=[new_output(
        "display_data", data={"application/vnd.plotly.v1+json": figure, "text/plain": "Figure"})])
    table = new_code_cell("table()", outputs=[new_output(
        "execute_result", data={"text/html": "<table class='crm-table'></table>",
                                "text/plain": "secret repr"}, execution_count=1)])
    log = new_code_cell("print('debug')", outputs=[new_output("stream", name="stdout",
                                                              text="debug line\n")])
    cells = [
        new_markdown_cell("# 1. Context\n\n## Data\nRevenue {{ s.revenue | money }}, "
                          "repeat {{ s.rate | pct(1) }}, note {{ s.note }}.",
                          metadata={"tags": ["lang-en"]}),
        new_markdown_cell("# 1. Contexto\n\n## Datos\nIngresos {{ s.revenue | money }}, "
                          "repetición {{ s.rate | pct(1) }}, nota {{ s.note }}.",
                          metadata={"tags": ["lang-es"]}),
        new_code_cell("client_dir = 'x'", metadata={"tags": ["parameters"]}),
        chart, table, log,
    ]
    path = tmp_path / "01_context.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    return path


RESULTS = {"s": {"revenue": 1234567.4, "rate": 0.1234, "note": HOSTILE}}


def test_english_report_has_english_prose_only_with_figures_formatted(tmp_path):
    html = render_report([_notebook(tmp_path)], RESULTS, _config(), "en")
    assert "Revenue €1,234,567, repeat 12.3%" in html
    assert "Ingresos" not in html and "Contexto" not in html
    assert 'href="#wb-01-context"' in html and ">Data</a>" in html


def test_spanish_report_formats_numbers_the_spanish_way(tmp_path):
    html = render_report([_notebook(tmp_path)], RESULTS, _config(), "es")
    assert "Ingresos 1.234.567\xa0€, repetición 12,3\xa0%" in html
    assert "Revenue" not in html and "Índice" in html


def test_report_has_no_code_no_logs_and_no_raw_client_markup(tmp_path):
    html = render_report([_notebook(tmp_path)], RESULTS, _config(), "en")
    for leaked in ("client_dir", "chart()", "print(", "debug line", "secret repr"):
        assert leaked not in html
    outside_scripts = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    assert "<script>alert" not in outside_scripts and "&lt;script&gt;alert" in outside_scripts
    assert "Acme &lt;b&gt;Ltd&lt;/b&gt;" in html
    assert 'href="javascript' not in html and "<strong>bold</strong>" not in html
    # The chart's data sits inside a <script>: a "</script>" in client text must not end it.
    body = html.split("</head>", 1)[1]
    scripts = re.findall(r"<script>(.*?)</script>", body, flags=re.S)
    assert len(scripts) == 1 and "Plotly.newPlot" in scripts[0]


def test_plotly_is_embedded_once_for_offline_reading(tmp_path):
    html = render_report([_notebook(tmp_path)], RESULTS, _config(), "en")
    assert "<script src=" not in html and "require.js" not in html
    assert html.count("Plotly.newPlot(") == 1
    assert len(html) > 3_000_000  # plotly.js itself


def test_a_missing_figure_in_the_prose_fails_loudly(tmp_path):
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        render_report([_notebook(tmp_path)], {"s": {"revenue": 1}}, _config(), "en")


def test_escape_markdown_neutralises_markup():
    assert escape_markdown("*a* [b](c) <d>") == r"\*a\* \[b\]\(c\) \<d\>"


def test_a_wide_table_is_split_with_its_first_column_repeated():
    import pandas as pd

    from crmkit.core.i18n import Formatter
    from crmkit.delivery.tables import MAX_COLUMNS, Table

    columns = {f"c{i}": ("value", "number") for i in range(12)}
    columns = {"segment": ("customers", "text"), **columns}
    frame = pd.DataFrame({c: [1.0, 2.0] for c in columns} | {"segment": ["A", "B"]})
    table = Table(frame, Formatter("en", "EUR"), columns, caption="Wide")
    groups = table.column_groups()
    assert len(groups) > 1 and all(g[0] == "segment" for g in groups)
    assert all(len(g) <= MAX_COLUMNS for g in groups)
    assert sorted({c for g in groups for c in g}) == sorted(columns)
    html = table.to_html()
    assert html.count("<table") == len(groups) and "Wide (continued)" in html
    narrow = Table(frame, Formatter("en", "EUR"), dict(list(columns.items())[:4]))
    assert narrow.to_html().count("<table") == 1


def test_print_css_repeats_headers_and_keeps_charts_whole(tmp_path):
    html = render_report([_notebook(tmp_path)], RESULTS, _config(), "en")
    css = html.split("@media print", 1)[1].split("</style>", 1)[0]
    assert "thead { display: table-header-group; }" in css
    assert re.search(r"\.crm-chart \{[^}]*break-inside: avoid", css)
    assert "overflow: visible" in css and "overflow-x: auto" not in html.split("</style>")[0]


# --- the paper and the client's industry words ------------------------------------------------

def _paper(html):
    return re.search(r"@page \{ size: (\w+) portrait", html).group(1)


@pytest.mark.parametrize(("currency", "setting", "expected"), [
    ("EUR", None, "A4"), ("USD", None, "Letter"), ("EUR", "Letter", "Letter"),
    ("USD", "A4", "A4")])
def test_paper_is_the_territorys_unless_client_yaml_says_otherwise(tmp_path, currency, setting,
                                                                    expected):
    config = _config().model_copy(update={"currency": currency})
    if setting:
        config = ClientConfig.model_validate({**config.model_dump(), "report": {"paper": setting}})
    html = render_report([_notebook(tmp_path)], RESULTS, config, "en")
    assert _paper(html) == expected
    assert f'data-paper="{expected}"' in html


def test_an_unknown_paper_in_client_yaml_is_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="A4"):
        ClientConfig.model_validate({**_config().model_dump(), "report": {"paper": "A3"}})


@pytest.mark.parametrize(("industry", "model", "expected"), [
    ("banca minorista", "non_contractual", "banking"),
    ("Retail banking", "non_contractual", "banking"),
    ("fashion and home retail", "non_contractual", "retail"),
    ("mobile and fibre telecommunications", "contractual", "subscription"),
    ("", "contractual", "subscription"), ("", "non_contractual", "retail")])
def test_the_vocabulary_follows_the_industry(industry, model, expected):
    from crmkit.delivery.vocabulary import vocabulary_of

    config = ClientConfig.model_validate({**_config().model_dump(), "industry": industry,
                                          "business_model": model})
    assert vocabulary_of(config) == expected
    chosen = ClientConfig.model_validate({**config.model_dump(),
                                          "report": {"vocabulary": "retail"}})
    assert vocabulary_of(chosen) == "retail"


def test_every_industry_variant_has_its_base_with_the_same_placeholders():
    import string

    from crmkit.core.i18n import LANGUAGES, catalogue
    from crmkit.delivery.vocabulary import SEPARATOR, VOCABULARIES

    messages = catalogue()
    variants = [k for k in messages if SEPARATOR in k]
    assert len(variants) > 20
    for key in variants:
        base, vocabulary = key.rsplit(SEPARATOR, 1)
        assert vocabulary in VOCABULARIES and base in messages, key
        for lang in LANGUAGES:
            fields = [{f for _, f, _, _ in string.Formatter().parse(messages[k][lang]) if f}
                      for k in (base, key)]
            assert fields[0] == fields[1], (key, lang)


def test_rewrite_replaces_whole_messages_with_their_figures():
    from crmkit.core.i18n import t
    from crmkit.delivery.vocabulary import rewrite

    text = (f"<th>{t('seg_col_avg_order_value', 'es')}</th>"
            f"<td>{t('ind_lapsed_share', 'es', days=365)}</td><p>Una compra cualquiera.</p>")
    banking = rewrite(text, "es", "banking")
    assert "<th>Importe medio por operación</th>" in banking
    assert "<td>Clientes sin operar desde hace 365 días</td>" in banking
    assert "Una compra cualquiera." in banking  # words outside a message are the author's
    assert rewrite(text, "es", "retail") == text


def test_a_banks_report_has_no_shop_words_in_tables_or_charts(tmp_path):
    from crmkit.core.i18n import t

    headers = "".join(f"<th>{t(k, 'es')}</th>" for k in (
        "seg_col_avg_order_value", "seg_col_frequency", "ind_average_order_value"))
    figure = go.Figure(go.Bar(x=["a"], y=[1]), layout={"title": {"text": t(
        "val_chart_tracking_title", "es")}}).to_plotly_json()
    cells = [new_markdown_cell("# 1. Contexto\n\n{{ 'seg_heading_who_what' | t }}"),
             new_code_cell("t()", outputs=[new_output("execute_result", execution_count=1, data={
                 "text/html": f"<table class='crm-table'><tr>{headers}</tr></table>"})]),
             new_code_cell("c()", outputs=[new_output("display_data", data={
                 "application/vnd.plotly.v1+json": figure})]),
             new_code_cell("x()", outputs=[new_output("execute_result", execution_count=2, data={
                 "text/html": f"<p>{t('auto_level2_needs', 'es')}</p>"})])]
    path = tmp_path / "01_context.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    bank = ClientConfig.model_validate({**_config().model_dump(), "industry": "banca minorista"})
    html = render_report([path], {}, bank, "es")
    body = html.split('<section class="chapter"', 1)[1]
    for shop in ("Ticket medio", "Compra media", "Compras por cliente", "Compras del periodo",
                 "cupón en la caja", "qué compran"):
        assert shop not in body, shop
    assert "Importe medio por operación" in body and "Operaciones del periodo" in body
    assert "qué productos tienen" in body
    shop = render_report([path], {}, _config(), "es").split('<section class="chapter"', 1)[1]
    assert "Ticket medio" in shop and "qué compran" in shop


def test_the_decision_page_opens_the_report_in_the_summarys_place(tmp_path):
    from test_decision_page import _results

    html = render_report([_notebook(tmp_path)], {**RESULTS, **_results("go")}, _config(), "en")
    first = html.index('<section class="summary" id="decision"')
    assert first < html.index('<nav class="toc"') < html.index('<section class="chapter"')
    assert "Executive summary" not in html  # the page replaces it, it does not repeat it
    plain = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html[first:html.index("</section>",
                                                                             first)]))
    assert "€25,765 Net present value of the CRM project" in plain
    # without a decision the executive summary stays
    older = render_report([_notebook(tmp_path)], {**RESULTS, "implementation": {"npv": 1.0}},
                          _config(), "en")
    assert 'id="decision"' not in older and "Executive summary" in older


def test_rewrite_leaves_single_words_and_longer_words_alone():
    from crmkit.delivery.vocabulary import rewrite

    text = "<p>Una compra y las compras; Ticket medio, Ticket mediano.</p>"
    banking = rewrite(text, "es", "banking")
    assert "Una compra y las compras" in banking  # vw_* words go through `t` only
    assert "Importe medio por operación, Ticket mediano." in banking

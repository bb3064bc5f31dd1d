"""Client text vs method: cells tagged ``report-method`` move to the "Method and assumptions"
appendix, under their chapter's title; the chapters keep plain words."""

import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from crmkit.core import paths
from crmkit.delivery.report import METHOD_TAG, SKIP_TAG, render_report
from crmkit.settings.client import ClientConfig

#: Words that belong to the method, never to a client chapter.
JARGON = ("k-means", "k-medias", "silhouette", "silueta", "BG/NBD", "Pareto/NBD", "Gamma-Gamma",
          "client.yaml", "σ", "^(1/12)", "shifted-beta", "beta-geométrico")


def _config(**extra) -> ClientConfig:
    cap = {"score": 3}
    factor = {"impact": "low", "time_frame": "short", "direction": "threat"}
    return ClientConfig.model_validate({
        "name": "Acme", "currency": "EUR", **extra,
        "context": {"internal": dict.fromkeys(("financial", "operational", "technological",
                                               "people"), cap),
                    "external": {"competitors": factor, "regulation": factor,
                                 "disruptive_technology": factor,
                                 "industry_maturity": dict(factor, stage="growth")}}})


def _table(text: str):
    return new_code_cell("table()", outputs=[new_output(
        "execute_result", data={"text/html": f"<table class='crm-table'><tr><td>{text}</td>"
                                             "</tr></table>", "text/plain": "t"},
        execution_count=1)], metadata={"tags": [METHOD_TAG]})


def _workbook(tmp_path, name, title, method_heading):
    cells = [
        new_markdown_cell(f"# {title}\n\n## For the client\nPlain words, {{{{ n }}}} customers.",
                          metadata={"tags": ["lang-en"]}),
        new_markdown_cell(f"# {title} (es)\n\n## Para el cliente\nPalabras llanas.",
                          metadata={"tags": ["lang-es"]}),
        new_markdown_cell(f"## {method_heading}\nGrouped with k-means; silhouette "
                          "{{ n }}.", metadata={"tags": ["lang-en", METHOD_TAG]}),
        new_markdown_cell("## Método\nAgrupados con k-medias.",
                          metadata={"tags": ["lang-es", METHOD_TAG]}),
        _table(f"BG/NBD parameter of {name}"),
        new_markdown_cell("Consultant: set `relationships: cost_drivers:` in client.yaml.",
                          metadata={"tags": [SKIP_TAG]}),
        new_markdown_cell("The end of the chapter, for the client."),
    ]
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    return path


def _sections(page: str) -> dict[str, str]:
    return dict(re.findall(r'<section class="chapter" id="([^"]+)">(.*?)</section>', page, re.S))


def test_method_cells_move_to_the_appendix_under_their_chapters_title(tmp_path):
    books = [_workbook(tmp_path, "01_context", "1. Context", "How it was measured"),
             _workbook(tmp_path, "02_segments", "2. Segments", "Behavioural clusters")]
    page = render_report(books, {"n": 42}, _config(), "en")
    sections = _sections(page)
    assert list(sections) == ["wb-01-context", "wb-02-segments", "method"]  # the appendix last
    for slug in ("wb-01-context", "wb-02-segments"):
        chapter = sections[slug]
        assert "Plain words, 42 customers." in chapter
        assert "The end of the chapter, for the client." in chapter
        for word in JARGON:
            assert word not in chapter, (slug, word)
    method = sections["method"]
    assert '<h1 id="method-method-and-assumptions">Method and assumptions</h1>' in method
    # each chapter's method under that chapter's title, in the chapters' order, headings lower
    first, second = method.index(">1. Context</h2>"), method.index(">2. Segments</h2>")
    assert first < method.index("How it was measured</h3>") < second
    assert second < method.index("Behavioural clusters</h3>")
    assert method.index("BG/NBD parameter of 01_context") < second
    assert "Grouped with k-means; silhouette 42." in method
    assert "Agrupados" not in method  # one language only
    # never reaches the client, in the chapters nor the appendix
    assert "cost_drivers" not in page
    # the appendix and its chapters are in the contents
    toc = page.split('<nav class="toc"', 1)[1].split("</nav>", 1)[0]
    assert 'href="#method"' in toc and ">Method and assumptions</a>" in toc
    assert ">1. Context</a>" in toc.split('href="#method"', 1)[1]


def test_the_appendix_is_titled_in_spanish(tmp_path):
    page = render_report([_workbook(tmp_path, "02_segments", "2. Segments", "x")], {"n": 1},
                         _config(), "es")
    method = _sections(page)["method"]
    assert ">Método y supuestos</h1>" in method and "Agrupados con k-medias." in method
    assert "k-medias" not in _sections(page)["wb-02-segments"]


def test_no_method_cells_no_appendix(tmp_path):
    path = tmp_path / "01_context.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("# 1. Context\n\nPlain.")]), path)
    page = render_report([path], {}, _config(), "en")
    assert "Method and assumptions" not in page and 'id="method"' not in page


@pytest.mark.parametrize("workbook", ["01_context.ipynb", "02_segments.ipynb",
                                      "03_relationships.ipynb", "04_cost_benefit.ipynb",
                                      "05_implementation.ipynb"])
def test_a_workbooks_client_cells_carry_no_jargon(workbook):
    """Every cell of the workbook that reaches a client chapter is free of method words.

    Workbooks are added here as their method cells are tagged ``report-method``.
    """
    notebook = nbformat.read(paths.WORKBOOKS / workbook, as_version=4)
    for cell in notebook.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type != "markdown" or METHOD_TAG in tags or SKIP_TAG in tags:
            continue
        for word in JARGON:
            assert word not in cell.source, (cell.get("id"), word)

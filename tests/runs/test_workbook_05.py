"""Workbook 05 (the CRM implementation plan) and the run's exports, through `crmkit run`.

Three runs (the session's shared runs, conftest.py): the retail demo in English, the bank demo in
Spanish, and the hostile copy of the retail demo, in which one customer is called
``=HYPERLINK("http://x","y")`` in every file. Checked: the ``implementation`` section of
``results.json`` against the cash flows saved in ``tables.xlsx`` (numpy-financial as the oracle)
and against the scenarios of workbook 04 recomputed here; ``tables.xlsx`` (a sheet per exported
table, headers in the report's language, never a formula); the target lists; ``report.pdf``; the
executive summary; the chapter's language.
"""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import numpy as np
import numpy_financial as npf
import openpyxl
import pandas as pd
import pytest
from conftest import HOSTILE_ID

from crmkit.core import paths
from crmkit.core.i18n import Formatter, catalogue, t
from crmkit.delivery import SECTIONS, exports, pdf
from crmkit.inputs.workspace import load_workspace
from crmkit.planning import plan
from crmkit.relationships import cost_benefit, cost_to_serve, scenarios

pytestmark = pytest.mark.slow
LANGS = {"retail": "en", "bank": "es", "hostile": "en"}
HOSTILE = HOSTILE_ID


@pytest.fixture(scope="module")
def runs(shared_runs, hostile_run) -> dict[str, tuple[Path, str]]:
    """demo -> (run folder, stderr) of `crmkit run` (the session's shared runs, conftest.py)."""
    found = {demo: shared_runs.demo(demo) for demo in ("retail", "bank")}
    found["hostile"] = hostile_run
    return {demo: (run.folder, run.stderr) for demo, run in found.items()}


def folder_of(runs, demo: str) -> Path:
    return runs[demo][0]


def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text(encoding="utf-8"))


def sheet_frame(folder: Path, sheet_key: str, lang: str) -> pd.DataFrame:
    """A sheet of tables.xlsx as a frame (headers from the first row)."""
    book = openpyxl.load_workbook(folder / "tables.xlsx")
    rows = list(book[t(sheet_key, lang)].values)
    return pd.DataFrame(rows[1:], columns=rows[0])


def plain(fragment: str) -> str:
    """HTML as a reader sees it: no scripts or tags, entities decoded, ASCII spaces single
    (the no-break spaces of the formatted figures are kept)."""
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<script>.*?</script>", "", fragment, flags=re.S))
    return re.sub(r"[ \t\r\n]+", " ", html.unescape(text))


def summary_text(folder: Path) -> str:
    page = (folder / "report.html").read_text(encoding="utf-8")
    found = re.search(r'<section class="summary".*?</section>', page, re.S)
    assert found, "no executive summary"
    return plain(found.group(0))


def chapter_headings(lang: str) -> list[str]:
    notebook = nbformat.read(paths.WORKBOOKS / "05_implementation.ipynb", as_version=4)
    return [line.lstrip("#").strip() for cell in notebook.cells
            if f"lang-{lang}" in cell.metadata.get("tags", [])
            for line in cell.source.splitlines() if line.startswith("#")]


# --- results.json ----------------------------------------------------------------------------

@pytest.mark.parametrize("demo", ["retail", "bank"])
def test_the_run_records_the_plan_and_its_timings(runs, demo):
    folder = folder_of(runs, demo)
    plan_results = results(folder)["implementation"]
    for key in ("npv", "payback_month", "irr_yearly", "total_cost", "tco_per_year", "benefits",
                "readiness", "top_risks", "components", "level1", "level2"):
        assert key in plan_results, key
    assert isinstance(plan_results["npv"], float)
    assert plan_results["payback_month"] is None or isinstance(plan_results["payback_month"], int)
    timings = json.loads((folder / "run.json").read_text())["timings_seconds"]
    assert {"05_implementation", "xlsx", "report", "pdf"} <= set(timings)
    for name in ("tables.xlsx", "05_implementation.ipynb", "target_lists/level1.csv",
                 "target_lists/level2.csv"):
        assert (folder / name).is_file(), name


@pytest.mark.parametrize("demo", ["retail", "bank"])
def test_npv_and_payback_recomputed_from_the_saved_cash_flows(runs, demo):
    folder, lang = folder_of(runs, demo), LANGS[demo]
    found = results(folder)["implementation"]
    flows = sheet_frame(folder, "xlsx_sheet_cash_flows", lang)
    net = flows[t("fin_col_net", lang)].astype(float).to_numpy()
    assert len(net) == found["horizon_months"]
    monthly = (1 + found["yearly_discount_rate"]) ** (1 / 12) - 1
    assert npf.npv(monthly, net) == pytest.approx(found["npv"], abs=0.01)
    assert flows[t("fin_col_costs", lang)].astype(float).sum() == pytest.approx(
        found["total_costs"], abs=0.01)
    cumulative = np.cumsum(net)
    payback = found["payback_month"]
    if payback is None:
        assert cumulative[-1] < 0
    else:
        assert (cumulative[payback:] >= -1e-6).all()
        assert payback == 0 or cumulative[payback - 1] < 0
    if found["irr_monthly"] is not None:
        assert npf.npv(found["irr_monthly"], net) == pytest.approx(0, abs=1.0)


@pytest.mark.parametrize("demo", ["retail", "bank"])
def test_costs_add_up_across_categories_years_and_kinds(runs, demo):
    found = results(folder_of(runs, demo))["implementation"]
    total = found["total_cost"]
    assert sum(found["costs_by_category"].values()) == pytest.approx(total, abs=0.05)
    assert sum(y["total"] for y in found["tco_per_year"]) == pytest.approx(total, abs=0.05)
    assert (found["one_off_cost"] + found["recurring_cost"] + found["efficiency_dip_cost"]
            == pytest.approx(total, abs=0.05))
    human = sum(found["costs_by_category"][c] for c in plan.HUMAN_CATEGORIES)
    assert found["human_cost"] == pytest.approx(human, abs=0.05)
    assert found["efficiency_dip_cost"] > 0
    assert found["total_costs"] == pytest.approx(total, abs=0.05)


@pytest.mark.parametrize("demo", ["retail", "bank"])
def test_benefits_are_the_levers_on_the_customer_base_model(runs, demo):
    folder, lang = folder_of(runs, demo), LANGS[demo]
    found = results(folder)
    ws = load_workspace(paths.DEMO_CLIENTS / demo)
    customers = pd.read_parquet(folder / "tables" / "customers.parquet")
    cost = cost_to_serve.compute(customers, ws.interactions, ws.config)
    model = scenarios.ScenarioModel.from_cost(customers, cost, ws.config)
    objective = found["implementation"]["objective"]
    economics = cost_benefit.per_segment(customers, cost, ws.config)  # as Steps.economics
    proposed, suggested = scenarios.proposed(ws.config, model, economics, lang)
    recorded = found["implementation"]["benefits"]
    assert recorded["suggested"] == suggested
    levers = plan.LeverModel.from_tables(
        customers, cost, ws.config, scenario_model=model, scenarios=proposed,
        objective=objective, promotions=plan.promotions(ws.transactions, customers, ws.as_of),
        attributes=ws.customers)
    by_lever = plan.by_lever(levers.evaluate())
    assert list(recorded["by_lever"]) == list(by_lever)
    for lever, amount in by_lever.items():
        assert recorded["by_lever"][lever] == pytest.approx(amount, abs=0.01), lever
    assert recorded["yearly_total"] == pytest.approx(sum(by_lever.values()), abs=0.01)
    sheet = sheet_frame(folder, "xlsx_sheet_levers", lang)
    assert list(sheet[t("lever_col_lever", lang)]) == [t(f"lever_{k}", lang) for k in by_lever]
    detail = sheet_frame(folder, "xlsx_sheet_lever_segments", lang)
    for frame in (sheet, detail):
        assert float(frame[t("lever_col_yearly_benefit", lang)].astype(float).sum()) == \
            pytest.approx(recorded["yearly_total"], abs=0.05)
    # Once fully ramped up, a month of benefits is a twelfth of the yearly total (plus the
    # benefits typed in client.yaml).
    flows = sheet_frame(folder, "xlsx_sheet_cash_flows", lang)
    last = float(flows[t("fin_col_benefits", lang)].iloc[-1])
    typed = sum(item.yearly_amount for item in ws.config.crm_project.benefits.items)
    assert last == pytest.approx((recorded["yearly_total"] + typed) / 12, abs=0.01)


@pytest.mark.parametrize("demo", ["retail", "bank"])
def test_the_decision_and_its_break_even_hold_on_the_saved_figures(runs, demo):
    folder, lang = folder_of(runs, demo), LANGS[demo]
    found = results(folder)["implementation"]
    assert found["decision"] in ("go", "go_with_conditions", "no_go")
    assert (found["decision"] == "no_go") == (found["npv"] <= 0)
    if found["decision"] == "go":
        assert found["npv_low_benefits"] >= 0 and found["npv_high_costs"] >= 0
    if found["decision"] == "go_with_conditions":
        assert found["decision_conditions"]
    even = found["break_even"]
    assert even["lever"] in ("retention", "scale")
    assert even["unit"] == ("points" if even["lever"] == "retention" else "times")
    assert found["cost_lines"]["total"] == 10
    assert 0 <= found["cost_lines"]["default"] <= 10
    texts = " ".join(r["text"] for r in found["decision_reasons"])
    if found["cost_lines"]["default"]:
        assert str(found["cost_lines"]["default"]) in texts
    if even["lever"] == "scale" and even["value"] is not None:
        # NPV(k) is linear in the scale k of the benefits: k × PV(benefits) − PV(costs) = 0.
        flows = sheet_frame(folder, "xlsx_sheet_cash_flows", lang)
        monthly = (1 + found["yearly_discount_rate"]) ** (1 / 12) - 1
        benefits = flows[t("fin_col_benefits", lang)].astype(float).to_numpy()
        costs = flows[t("fin_col_costs", lang)].astype(float).to_numpy()
        assert npf.npv(monthly, even["value"] * benefits - costs) == pytest.approx(0, abs=1.0)


# --- tables.xlsx -----------------------------------------------------------------------------

@pytest.mark.parametrize("demo", ["retail", "bank"])
def test_tables_xlsx_has_a_sheet_per_exported_table_in_the_language(runs, demo):
    folder, lang = folder_of(runs, demo), LANGS[demo]
    other = "es" if lang == "en" else "en"
    specs = sorted((json.loads(p.read_text(encoding="utf-8"))
                    for p in (folder / exports.STAGED_DIR).glob("*.json")),
                   key=lambda s: (SECTIONS.index(s["section"]), s["order"], s["number"]))
    # workbooks run side by side: the book follows the workbooks' order, then each one's
    book = openpyxl.load_workbook(folder / "tables.xlsx")
    assert book.sheetnames == [t(s["sheet"], lang) for s in specs]
    sections = [s["section"] for s in specs]
    assert sections.index("context") < sections.index("segments") < sections.index(
        "implementation")
    for key in ("xlsx_sheet_indicators", "xlsx_sheet_segments", "xlsx_sheet_value",
                "xlsx_sheet_costs", "xlsx_sheet_tco", "xlsx_sheet_cash_flows",
                "xlsx_sheet_risks", "xlsx_sheet_level2", "xlsx_sheet_targets"):
        assert t(key, lang) in book.sheetnames, key
    costs = book[t("xlsx_sheet_costs", lang)]
    headers = [c.value for c in costs[1]]
    assert headers == [t(key, lang) for key, _ in plan.COST_COLUMNS.values()]
    assert headers != [t(key, other) for key, _ in plan.COST_COLUMNS.values()]
    money = costs.cell(row=2, column=3)
    assert isinstance(money.value, int | float) and "€" in money.number_format
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
    # the client reads the target list's segments by their names, as in target_lists/*.csv
    targets = sheet_frame(folder, "xlsx_sheet_targets", lang)
    named = {s["segment"]: s["name"] for s in results(folder)["segments"]["value"]}
    shown = set(targets[t("auto_col_segment", lang)].dropna())
    assert shown and shown <= set(named.values()), shown - set(named.values())
    with open(folder / "target_lists" / "level1.csv", encoding="utf-8-sig") as handle:
        listed = list(csv.DictReader(handle, delimiter=";" if lang == "es" else ","))
    by_customer = {row[t("auto_col_customer_id", lang)]: row[t("auto_col_segment", lang)]
                   for row in listed}
    for customer, segment in zip(targets[t("auto_col_customer_id", lang)].head(50),
                                 targets[t("auto_col_segment", lang)].head(50), strict=True):
        assert by_customer[str(customer)] == segment


def test_a_hostile_customer_id_is_neutralised_in_the_csv_lists_and_the_xlsx(runs):
    folder = folder_of(runs, "hostile")
    for name in ("level1", "level2"):
        with open(folder / "target_lists" / f"{name}.csv", encoding="utf-8-sig",
                  newline="") as handle:
            cells = [cell for row in csv.reader(handle) for cell in row]
        assert "'" + HOSTILE in cells, name
        assert HOSTILE not in cells, name
        assert not [c for c in cells if c.startswith(("=", "+", "@"))], name
    book = openpyxl.load_workbook(folder / "tables.xlsx")
    targets = book[t("xlsx_sheet_targets", "en")]
    found = [c for row in targets.iter_rows(min_col=1, max_col=1) for c in row
             if c.value == "'" + HOSTILE]
    assert len(found) == 1 and found[0].data_type == "s"
    assert not [c for row in targets.iter_rows() for c in row if c.value == HOSTILE]
    assert results(folder)["implementation"]["level1"]["customers"] == len(
        load_workspace(paths.DEMO_CLIENTS / "retail").customers)


# --- report.pdf, the summary and the chapter ---------------------------------------------------

def _pages(path: Path) -> int:
    pdfinfo = shutil.which("pdfinfo")
    if pdfinfo:
        info = subprocess.run([pdfinfo, str(path)], capture_output=True, text=True, timeout=60)
        return int(re.search(r"Pages:\s+(\d+)", info.stdout).group(1))
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", path.read_bytes()))


@pytest.mark.parametrize("demo", ["retail", "bank"])
def test_report_pdf_is_printed_beside_the_report(runs, demo):
    folder, stderr = runs[demo]
    if pdf.chromium_path() is None:
        assert not (folder / "report.pdf").exists()
        assert t("pdf_unavailable", LANGS[demo]) in stderr
        pytest.skip("no Chromium on this machine: report.pdf cannot be printed "
                    "(the run said so on stderr)")
    assert (folder / "report.pdf").is_file(), stderr
    assert (folder / "report.pdf").read_bytes().startswith(b"%PDF")
    assert _pages(folder / "report.pdf") >= 3


@pytest.mark.parametrize("demo", ["retail", "bank"])
def test_executive_summary_shows_npv_and_payback(runs, demo):
    folder, lang = folder_of(runs, demo), LANGS[demo]
    found = results(folder)["implementation"]
    fmt = Formatter(lang, load_workspace(paths.DEMO_CLIENTS / demo).config.currency)
    text = summary_text(folder)
    assert f"{fmt.money(found['npv'])} {t('sum_npv', lang)}" in text
    payback = (t("sum_months", lang, months=found["payback_month"] + 1)
               if found["payback_month"] is not None else t("sum_no_payback", lang))
    assert f"{payback} {t('sum_payback', lang)}" in text


@pytest.mark.parametrize("demo", ["retail", "bank"])
def test_chapter_5_reads_in_the_report_language_with_its_figures(runs, demo):
    folder, lang = folder_of(runs, demo), LANGS[demo]
    other = "es" if lang == "en" else "en"
    page = (folder / "report.html").read_text(encoding="utf-8")
    found = re.search(r'<section class="chapter" id="wb-05-implementation">(.*?)</section>',
                      page, re.S)
    assert found, "no chapter 5"
    prose = plain(found.group(1))
    assert "{{" not in prose and "{%" not in prose
    for heading in chapter_headings(lang):
        assert heading in prose, heading
    for heading in chapter_headings(other):
        assert heading not in prose, heading
    results_ = results(folder)["implementation"]
    fmt = Formatter(lang, load_workspace(paths.DEMO_CLIENTS / demo).config.currency)
    assert fmt.money(results_["total_cost"]) in prose
    assert fmt.money(results_["npv"]) in prose
    # the discounting convention is the method's: in the appendix, not in the chapter
    convention = catalogue()["fin_convention"][lang]
    assert convention not in prose
    appendix = re.search(r'<section class="chapter" id="method">(.*?)</section>', page, re.S)
    assert appendix, "no method appendix"
    assert convention in plain(appendix.group(1))
    assert found.group(1).count("Plotly.newPlot(") >= 6


def test_the_demo_companies_tell_three_different_business_cases(runs, shared_runs):
    """Retail pays back (go), the bank goes ahead with named conditions, telecom does not, and
    its retention lever is worth more than its cost cuts: figures out of the models."""
    retail = results(folder_of(runs, "retail"))["implementation"]
    assert retail["npv"] > 0 and retail["decision"] == "go"
    assert retail["cost_lines"]["default"] == 0
    assert {"retention", "reactivation", "automation"} <= set(retail["benefits"]["by_lever"])
    assert retail["benefits"]["by_lever"]["retention"] > 0
    assert retail["benefits"]["by_lever"]["reactivation"] > 0
    bank = results(folder_of(runs, "bank"))
    assert bank["implementation"]["decision"] == "go_with_conditions"
    assert "replace_default_costs" in bank["implementation"]["decision_conditions"]
    verdicts = {s["segment"]: s["verdict"] for s in bank["cost_benefit"]["segments"]}
    assert verdicts["cant_lose"] != "stop"
    telecom = results(shared_runs.demo("telecom").folder)["implementation"]
    levers = telecom["benefits"]["by_lever"]
    assert levers["retention"] > levers.get("cost_to_serve", 0.0)
    for found, demo in ((retail, "retail"), (bank["implementation"], "bank")):
        text = summary_text(folder_of(runs, demo))
        lang = LANGS[demo]
        assert t(f"decision_{found['decision']}", lang) in text

"""Workbooks 03 (relationship types, cost to serve) and 04 (cost-benefit, scenarios) in a real run.

`crmkit run` on the retail demo, once, checked on its figures: the tables the two workbooks write
must add up to each other and to the per-customer table of workbook 02, every segment must get a
verdict, the scenarios must be compared against a zero-change baseline, and the report must carry
both chapters. The bank demo is run once more to check that a Spanish client reads both chapters
in Spanish only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from crmkit.core import paths
from crmkit.inputs.workspace import load_workspace
from crmkit.relationships.cost_benefit import VERDICTS
from crmkit.relationships.inventory import TYPES, drivers

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def retail(shared_runs) -> Path:
    return shared_runs.demo("retail").folder


@pytest.fixture(scope="module")
def bank(shared_runs) -> Path:
    return shared_runs.demo("bank").folder


def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text(encoding="utf-8"))


def table(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(folder / "tables" / f"{name}.parquet")


def chapter_html(folder: Path, slug: str) -> str:
    html = (folder / "report.html").read_text(encoding="utf-8")
    found = re.search(rf'<section class="chapter" id="{slug}">(.*?)</section>', html, re.S)
    assert found, slug
    return found.group(1)


def chapter(folder: Path, slug: str) -> str:
    """The text of one chapter of report.html: no scripts, no tags, whitespace collapsed."""
    text = re.sub(r"<script>.*?</script>", "", chapter_html(folder, slug), flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", text).replace("&#x27;", "'").replace("&amp;", "&")


def test_results_have_both_sections(retail):
    found = results(retail)
    assert {"segments", "relationships", "cost_benefit"} <= set(found)
    assert found["relationships"]["segments_count"] == table(retail, "customers")[
        "segment"].nunique()
    for name in ("customers", "cost_to_serve", "cost_benefit"):
        assert (retail / "tables" / f"{name}.parquet").is_file(), name


def test_cost_to_serve_recomputed_by_hand_from_the_log(retail):
    """Time-driven ABC redone independently: logged minutes × rate a year, plus fixed costs."""
    ws = load_workspace(paths.DEMO_CLIENTS / "retail")
    rel = ws.config.relationships
    drv = drivers(ws.config)
    log = ws.interactions
    years = ((log["date"].max() - log["date"].min()).days + 1) / 365.25
    rate = log["relationship_type"].map(drv["cost_per_minute"])
    for key, override in rel.cost_drivers.items():
        for channel, value in override.channel_cost_per_minute.items():
            rate[(log["relationship_type"] == key) & (log["channel"] == channel)] = value
    variable = float((log["minutes"] * rate).sum()) / years
    in_use = set(log["relationship_type"])
    fixed = float(drv.loc[[k for k in TYPES if k in in_use], "fixed_yearly_cost"].sum())
    cost = results(retail)["relationships"]["cost"]
    assert cost["assumed"] == []  # every type the retail client declares shows in its log
    assert cost["total_cost_to_serve"] == pytest.approx(variable + fixed)
    # the platforms' fixed cost is reported apart from the variable (avoidable) cost
    assert cost["variable_cost"] == pytest.approx(variable)
    assert cost["fixed_cost"] == pytest.approx(fixed)
    assert cost["imputed_share"] == 0
    per_customer = table(retail, "cost_to_serve")
    assert per_customer["cost_to_serve"].sum() == pytest.approx(variable + fixed)
    assert cost["client_drivers"] == ["personal_assistance", "dedicated_personal_assistance"]


def test_segment_totals_are_sums_over_customers(retail):
    customers = table(retail, "customers")
    per_customer = table(retail, "cost_to_serve")
    segments = table(retail, "cost_benefit").set_index("segment")
    window = load_workspace(paths.DEMO_CLIENTS / "retail").config.assumptions.window_months
    assert len(per_customer) == len(customers)
    assert per_customer["customer_id"].tolist() == customers["customer_id"].tolist()
    by_segment = customers.groupby("segment")
    cost = per_customer.groupby("segment")["cost_to_serve"].sum()
    assert set(segments.index) == set(customers["segment"])
    for segment, row in segments.iterrows():
        assert row["customers"] == by_segment.size()[segment]
        assert row["cost_to_serve"] == pytest.approx(cost[segment])
        assert row["margin"] == pytest.approx(
            by_segment["margin_window"].sum()[segment] * 12 / window)
        assert row["revenue"] == pytest.approx(
            by_segment["revenue_window"].sum()[segment] * 12 / window)
        assert row["clv"] == pytest.approx(by_segment["clv"].sum()[segment])
        assert row["profit"] == pytest.approx(row["margin"] - row["cost_to_serve"])
        assert row["cost_per_customer"] == pytest.approx(cost[segment] / row["customers"])
        variable = per_customer.groupby("segment")["variable_cost"].sum()[segment]
        assert row["variable_cost"] == pytest.approx(variable)
        assert row["contribution"] == pytest.approx(row["margin"] - variable)
    totals = results(retail)["cost_benefit"]["totals"]
    assert totals["cost_to_serve"] == pytest.approx(per_customer["cost_to_serve"].sum())
    assert totals["profit"] == pytest.approx(per_customer["profit"].sum())
    assert totals["customers"] == len(customers)
    whale = results(retail)["relationships"]["whale"]
    assert whale["total_profit"] == pytest.approx(per_customer["profit"].sum())
    assert whale["unprofitable_share"] == pytest.approx((per_customer["profit"] < 0).mean())


def test_every_segment_gets_a_verdict_with_its_reason(retail):
    customers = table(retail, "customers")
    frame = table(retail, "cost_benefit")
    assert set(frame["verdict"]) <= set(VERDICTS)
    assert set(frame["segment"]) == set(customers["segment"])
    recorded = results(retail)["cost_benefit"]
    by_segment = {r["segment"]: r for r in recorded["segments"]}
    assert set(by_segment) == set(customers["segment"])
    for row in frame.itertuples():
        record = by_segment[row.segment]
        assert record["verdict"] == row.verdict and record["rule"] == row.rule
        assert record["reason"]
        if row.verdict == "move_cheaper":
            assert record["cheaper_type"] in TYPES and record["cheaper_type"] != row.main_type
            assert record["impact"] > 0  # the move saves variable cost
        if row.verdict == "stop":
            assert record["imputed_share"] < 1  # a stop rests on logged contacts
    assert sum(recorded["counts"].values()) == len(frame)
    names = dict(zip(frame["segment"], frame["segment_name"], strict=True))
    for verdict in VERDICTS:
        assert recorded["names"][verdict] == [names[s] for s in
                                              frame.loc[frame["verdict"] == verdict, "segment"]]


def test_verdicts_serve_the_objective(retail):
    """Under "retain", a segment of high past value that is lapsing is won back, never moved
    down or dropped; the figures of the rule are recomputed from the per-customer table."""
    found = results(retail)
    recorded = found["cost_benefit"]
    limits = recorded["thresholds"]
    customers = table(retail, "customers")
    lapse = load_workspace(paths.DEMO_CLIENTS / "retail").config.assumptions.lapse_days
    yearly = customers["margin"] * 365.25 / customers["tenure_days"].clip(lower=365.25)
    index = yearly.groupby(customers["segment"]).mean() / yearly.mean()
    lapsed = (customers["recency_days"] > lapse).groupby(customers["segment"]).mean()
    for record in recorded["segments"]:
        assert record["past_value_index"] == pytest.approx(index[record["segment"]])
        assert record["lapsed_share"] == pytest.approx(lapsed[record["segment"]])
        if recorded["objective"] != "retain":
            continue
        high = record["past_value_index"] >= limits["win_back_min_past_value"]
        lapsing = record["lapsed_share"] >= limits["win_back_min_lapsed_share"]
        if high and lapsing:
            assert record["verdict"] not in ("stop", "move_cheaper"), record["segment"]


def test_verdicts_use_the_chosen_objective(retail, bank):
    for folder in (retail, bank):
        found = results(folder)
        assert found["cost_benefit"]["objective"] == found["context"]["objective"]["chosen"]
    # the bank's objective is retain: its "can't lose" customers are won back, not dropped
    verdicts = {r["segment"]: r["verdict"] for r in results(bank)["cost_benefit"]["segments"]}
    assert verdicts["cant_lose"] == "win_back"


def test_scenarios_against_a_zero_change_baseline(retail):
    recorded = results(retail)["cost_benefit"]
    scenarios = recorded["scenarios"]
    configured = load_workspace(paths.DEMO_CLIENTS / "retail").config.scenarios
    assert scenarios["suggested"] is False
    assert [s["scenario"] for s in scenarios["scenarios"]] == (
        [scenarios["baseline"]] + [s.name for s in configured])
    baseline = scenarios["scenarios"][0]
    for metric in ("cost", "value", "profit", "net_value"):
        assert baseline[f"{metric}_change"] == 0
        assert baseline[metric] == baseline[f"{metric}_base"]
    assert baseline["cost"] == pytest.approx(recorded["totals"]["cost_to_serve"])
    assert baseline["profit"] == pytest.approx(recorded["totals"]["profit"])
    assert baseline["value"] == pytest.approx(recorded["totals"]["clv"])
    for row in scenarios["scenarios"][1:]:
        assert row["cost"] - row["cost_base"] == pytest.approx(row["cost_change"])
        assert row["profit_change"] == pytest.approx(-row["cost_change"])  # margins unchanged
    best = max(scenarios["scenarios"][1:], key=lambda r: r["net_value_change"])
    assert scenarios["best"]["scenario"] == best["scenario"]
    sensitivity = recorded["sensitivity"]
    assert sensitivity["base_total"] == pytest.approx(baseline["net_value"])
    margin = next(r for r in sensitivity["assumptions"] if r["assumption"] == "gross_margin")
    assert 0 < margin["break_even"] < margin["base"]


def test_english_report_has_both_chapters_with_their_figures(retail):
    html = (retail / "report.html").read_text(encoding="utf-8")
    assert "3. Relationship types and cost to serve" in html
    assert "4. Cost-benefit per segment" in html
    found = results(retail)
    three, four = (chapter(retail, "wb-03-relationships"), chapter(retail, "wb-04-cost-benefit"))
    total = found["relationships"]["cost"]["total_cost_to_serve"]
    assert f"Serving the customers costs €{total:,.0f} a year" in three
    profit = found["cost_benefit"]["totals"]["profit"]
    assert f"After serving costs, the customers bring €{profit:,.0f} a year" in four
    for name in ("Hibernating to automated e-mails", "Loyalty app"):
        assert name in four
    for text in (three, four):
        assert "{{" not in text and "{%" not in text and "Traceback" not in text


@pytest.mark.parametrize("demo", ["retail", "bank"])
def test_figures_never_turn_prose_into_lists(demo, request):
    """A line of prose starting with a filled-in number ("2. Even where…") would render as a
    numbered list: the only list of the two chapters is the verdict rules of chapter 4."""
    folder = request.getfixturevalue(demo)
    assert chapter_html(folder, "wb-03-relationships").count("<ol") == 0
    assert chapter_html(folder, "wb-04-cost-benefit").count("<ol") == 1


def english_phrases(notebook: str) -> list[str]:
    """Four-word runs of plain text from the English prose cells of a workbook."""
    nb = nbformat.read(paths.WORKBOOKS / notebook, as_version=4)
    phrases = []
    for cell in nb.cells:
        if "lang-en" not in cell.get("metadata", {}).get("tags", []):
            continue
        text = re.sub(r"\{\{.*?\}\}|\{%.*?%\}", "|", cell.source, flags=re.S)
        for line in text.splitlines():
            words = re.sub(r"[#*`|]", " ", line).split()
            if len(words) >= 6:
                phrases.append(" ".join(words[1:5]))
    return phrases


def test_spanish_client_reads_both_chapters_in_spanish(bank):
    html = (bank / "report.html").read_text(encoding="utf-8")
    assert "3. Tipos de relación y coste de servicio" in html
    assert "4. Coste-beneficio por segmento" in html
    three, four = chapter(bank, "wb-03-relationships"), chapter(bank, "wb-04-cost-benefit")
    for heading in ("Lo que recibe hoy cada segmento", "La curva de la ballena",
                    "Un veredicto por segmento", "Escenarios frente a frente"):
        assert heading in three + four
    for notebook, text in (("03_relationships.ipynb", three), ("04_cost_benefit.ipynb", four)):
        phrases = english_phrases(notebook)
        assert len(phrases) > 20
        leaked = [p for p in phrases if p in text]
        assert not leaked, leaked
    for english in ("Cost to serve", "Relationship type", "Verdict", "Customer value",
                    "Whale curve", "Scenarios against today", "Today (no change)"):
        assert english not in html, english
    assert "Coste de servicio" in three and "Veredicto" in four and "Hoy (sin cambios)" in four
    assert "Hibernando a banca digital" in four   # the consultant's scenario, client text
    found = results(bank)
    assert set(found["cost_benefit"]["counts"]) == set(VERDICTS)
    # declared but never logged pairs are exactly the imputed part of the variable cost
    cost = found["relationships"]["cost"]
    assert bool(cost["assumed"]) == (cost["imputed_cost"] > 0)
    by_segment = {r["segment"]: r for r in found["cost_benefit"]["segments"]}
    for segment, _ in cost["assumed"]:
        assert by_segment[segment]["imputed_share"] > 0

"""Workbook 02 through `crmkit run`: its figures against the saved table and independent counts.

Each demo client is run once (the session's shared runs, conftest.py): the retail client in
English, the bank client in Spanish. ``results.json`` must agree with ``tables/customers.parquet``
(the per-customer table later workbooks read) and with figures computed here from the demo's own
transactions; the report must speak the client's language, segment names included.
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from crmkit.core import paths
from crmkit.inputs.workspace import load_workspace

pytestmark = pytest.mark.slow
DEMOS = {"retail": "en", "bank": "es"}
#: The sentence of the value section that states the independence check, per language.
CORRELATION = {"en": "here the correlation is", "es": "aquí la correlación es"}


@pytest.fixture(scope="module")
def runs(shared_runs) -> dict[str, Path]:
    """`crmkit run` once per demo, each in the client's own language (the session's runs)."""
    return {demo: shared_runs.demo(demo).folder for demo in DEMOS}


def segments_results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text(encoding="utf-8"))["segments"]


def customers_table(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder / "tables" / "customers.parquet")


def report_text(folder: Path) -> str:
    """The report as a reader sees it: no scripts (plotly.js), entities decoded, spaces single."""
    body = re.sub(r"<script.*?</script>", "", (folder / "report.html").read_text(encoding="utf-8"),
                  flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(body))


def map_names(lang: str) -> dict[str, str]:
    """Segment key -> name in ``lang``, read from the bundled map the demos use."""
    raw = yaml.safe_load((paths.DATA / "segment_maps" / "rfm_ten.yaml").read_text("utf-8"))
    return {s["key"]: s["name"][lang] for s in raw["segments"]}


def chapter_headings(lang: str, folder: Path) -> list[str]:
    """The headings of workbook 02 in ``lang`` as the run's report renders them: a heading that
    depends on the client (a contractual client's own sections) is rendered with its results."""
    from crmkit.core.i18n import Formatter
    from crmkit.delivery.report import prose_environment
    from crmkit.delivery.vocabulary import vocabulary_of

    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    # in the client's words, as the report writes them (a bank's "which products they hold")
    config = load_workspace(paths.DEMO_CLIENTS / folder.parent.name).config
    env = prose_environment(Formatter(lang, "EUR"), vocabulary_of(config))
    context = {**results, "client": {"name": "", "industry": "", "currency": "EUR"}}
    notebook = nbformat.read(paths.WORKBOOKS / "02_segments.ipynb", as_version=4)
    return [line.lstrip("#").strip() for cell in notebook.cells
            if f"lang-{lang}" in cell.metadata.get("tags", [])
            for line in env.from_string(cell.source).render(**context).splitlines()
            if line.startswith("#")]


@pytest.mark.parametrize("demo", DEMOS)
def test_demos_use_the_ten_segment_map(runs, demo):
    results = segments_results(runs[demo])
    assert results["method"] == "map" and results["assignment"]["map"] == "rfm_ten"


@pytest.mark.parametrize("demo", DEMOS)
def test_segment_counts_equal_the_saved_table(runs, demo):
    results = segments_results(runs[demo])
    table = customers_table(runs[demo])
    ws = load_workspace(paths.DEMO_CLIENTS / demo)
    assert len(table) == len(ws.customers)
    assert set(table["customer_id"]) == set(ws.customers["customer_id"])
    # the saved segment is a categorical in the map's order: its empty categories count 0
    counts = {k: v for k, v in table["segment"].value_counts().to_dict().items() if v}
    # The profiles cover every customer; the map assignment and the values the buyers.
    assert {p["segment"]: p["customers"] for p in results["profiles"]} == counts
    buyers = {k: v for k, v in
              table.loc[table["frequency"] > 0, "segment"].value_counts().to_dict().items() if v}
    assigned = {k: v for k, v in results["assignment"]["counts"].items() if v}
    if results["assignment"]["other_count"]:
        assigned["other"] = results["assignment"]["other_count"]
    assert assigned == buyers
    assert {v["segment"]: v["customers"] for v in results["value"]} == buyers
    assert sum(p["customer_share"] for p in results["profiles"]) == pytest.approx(1)


@pytest.mark.parametrize("demo", DEMOS)
def test_total_clv_is_the_sum_over_buyers(runs, demo):
    results = segments_results(runs[demo])
    table = customers_table(runs[demo])
    buyers = table[table["frequency"] > 0]
    assert results["total_clv"] == pytest.approx(buyers["clv"].sum(), rel=1e-9)
    assert results["total_clv"] > 0
    for row in results["value"]:
        clv = buyers.loc[buyers["segment"] == row["segment"], "clv"]
        assert row["total_clv"] == pytest.approx(clv.sum(), rel=1e-9)
        assert row["mean_clv"] == pytest.approx(clv.mean(), rel=1e-9)
        assert row["mean_clv_low"] <= row["mean_clv"] <= row["mean_clv_high"]


@pytest.mark.parametrize("demo", DEMOS)
def test_top20_revenue_share_matches_an_independent_count(runs, demo):
    average = segments_results(runs[demo])["average"]
    ws = load_workspace(paths.DEMO_CLIENTS / demo)
    tx = ws.transactions[ws.transactions["date"] <= pd.Timestamp(ws.as_of)]
    # Net spend (returns included) of every customer with at least one purchase.
    buyers = tx.loc[tx["amount"] > 0, "customer_id"].unique()
    spend = tx.groupby("customer_id")["amount"].sum().loc[buyers].sort_values(ascending=False)
    top = math.ceil(0.2 * len(spend))
    assert average["customers"] == len(spend)
    assert average["top20_revenue_share"] == pytest.approx(spend.iloc[:top].sum() / spend.sum())
    assert average["measures"]["spend"]["mean"] == pytest.approx(spend.mean())


@pytest.mark.parametrize("demo", DEMOS)
def test_independence_check_is_finite_and_stated(runs, demo):
    lang = DEMOS[demo]
    independence = segments_results(runs[demo])["models"]["independence"]
    assert math.isfinite(independence) and -1 <= independence <= 1
    text = report_text(runs[demo])
    found = re.search(re.escape(CORRELATION[lang]) + r" ([−-]?\d+[.,]\d\d)", text)
    assert found, f"no '{CORRELATION[lang]} <number>' in the report"
    stated = float(found.group(1).replace("−", "-").replace(",", "."))
    assert stated == pytest.approx(independence, abs=0.005 + 1e-9)


def test_english_report_names_the_segments_of_the_map(runs):
    text = report_text(runs["retail"])
    results = segments_results(runs["retail"])
    names = map_names("en")
    for key, count in results["assignment"]["counts"].items():
        if count:
            assert names[key] in text, names[key]
    table = customers_table(runs["retail"])
    assert (table["segment_name"] == table["segment"].map(names)).all()
    headings = chapter_headings("en", runs["retail"])
    assert len(headings) >= 8
    for heading in headings:
        assert heading in text, heading


def test_spanish_report_has_spanish_segments_and_headings(runs):
    text = report_text(runs["bank"])
    results = segments_results(runs["bank"])
    spanish, english = map_names("es"), map_names("en")
    assert spanish["champions"] == "Campeones"
    present = [key for key, count in results["assignment"]["counts"].items() if count]
    for key in present:
        assert spanish[key] in text, spanish[key]
    for key in present:
        if english[key] != spanish[key]:
            assert english[key] not in text, english[key]
    table = customers_table(runs["bank"])
    assert (table["segment_name"] == table["segment"].map(spanish)).all()
    for heading in chapter_headings("es", runs["bank"]):
        assert heading in text, heading
    for heading in chapter_headings("en", runs["bank"]):
        assert heading not in text, heading


@pytest.mark.parametrize("demo", DEMOS)
def test_the_value_model_is_chosen_on_a_holdout_and_the_report_says_how_well_it_did(runs, demo):
    model = segments_results(runs[demo])["value_model"]
    assert model["model"] in ("bg_nbd", "mbg_nbd", "pareto_nbd") and model["fallback"] is None
    assert {c["model"] for c in model["candidates"]} == {"bg_nbd", "mbg_nbd", "pareto_nbd"}
    check = model["validation"]
    chosen = next(c for c in model["candidates"] if c["model"] == model["model"])
    assert chosen["sound"] and chosen["mae"] == check["mae"]
    # The holdout's actual purchases, counted here from the demo's own transactions: purchase
    # days in (calibration_end, holdout_end] of the customers who bought by calibration_end.
    # A purchase occasion is a customer-day with a purchase line (an amount of 0 or more).
    ws = load_workspace(paths.DEMO_CLIENTS / demo)
    tx = ws.transactions
    end = pd.Timestamp(check["calibration_end"])
    known = set(tx.loc[(tx["date"] <= end) & (tx["amount"] >= 0), "customer_id"])
    late = tx[(tx["date"] > end) & (tx["date"] <= pd.Timestamp(check["holdout_end"]))
              & tx["customer_id"].isin(known)]
    days = late.assign(day=late["date"].dt.normalize()).groupby(["customer_id", "day"])["amount"]
    assert check["actual_purchases"] == (days.max() >= 0).sum()
    assert check["customers"] == len(known)
    text = report_text(runs[demo])
    fmt = {"en": "{:,.0f}", "es": "{:,.0f}"}[DEMOS[demo]]
    actual = fmt.format(check["actual_purchases"])
    if DEMOS[demo] == "es":
        actual = actual.replace(",", ".")
    assert actual in text


@pytest.mark.parametrize("demo", DEMOS)
def test_customers_not_seen_for_long_are_not_called_active(runs, demo):
    values = {v["segment"]: v for v in segments_results(runs[demo])["value"]}
    hibernating, champions = values["hibernating"], values["champions"]
    assert hibernating["mean_probability_alive"] < 0.5
    assert hibernating["mean_probability_alive"] < champions["mean_probability_alive"]
    table = customers_table(runs[demo])
    assert {"probability_alive", "retention"} <= set(table.columns)
    assert table["retention"].between(0, 1).all()


def test_the_telecom_demo_is_valued_as_a_contractual_client(shared_runs):
    folder = shared_runs.demo("telecom").folder
    results = segments_results(folder)
    assert results["method"] == "contractual"
    model = results["value_model"]
    assert model["model"] == "sbg" and model["validation"] is None
    fits = model["contract_fits"]
    assert fits[0]["customers"] == len(load_workspace(paths.DEMO_CLIENTS / "telecom").customers)
    assert 0 < fits[0]["retention_first_year"] < 1
    table = customers_table(folder)
    ws = load_workspace(paths.DEMO_CLIENTS / "telecom")
    ended = ws.customers.set_index("customer_id")["end_date"].notna()
    ended = ended[ended].index
    gone = table.set_index("customer_id").loc[ended]
    # A customer whose contract has ended is not alive and is worth nothing more.
    assert (gone["probability_alive"] == 0).all() and (gone["clv"] == 0).all()
    assert set(gone["segment"]) <= {"churned", "churned_recent"}
    running = table[~table["customer_id"].isin(ended)]
    assert (running["probability_alive"] == 1).all() and (running["clv"] > 0).mean() > 0.95
    # The report speaks of contracts, not of purchase recency: no RFM segment names.
    text = report_text(folder)
    for rfm_word in ("About to sleep", "Hibernating", "Can't lose them", "recency × frequency"):
        assert rfm_word not in text

"""Cost-benefit per segment: hand-computed figures, the verdict rules and their thresholds."""

import math

import numpy as np
import pandas as pd
import pytest
from relationship_case import CONFIG as CASE_CONFIG
from relationship_case import customers_table as case_customers
from relationship_case import interactions_log

from crmkit.core.i18n import LANGUAGES, Formatter
from crmkit.delivery.charts import cost_benefit as charts
from crmkit.relationships import cost_benefit, cost_to_serve
from crmkit.settings.client import ClientConfig

CONFIG = {**CASE_CONFIG,
          "retention": {"gold": 0.8, "basic": 0.5}}
ASSUMPTIONS = {"window_months": 12, "discount_rate": 0.1, "horizon_months": 36}


def customers_table():
    """The shared case, with recency and tenure for the retention estimate."""
    return case_customers(with_activity=True)


@pytest.fixture
def cost():
    return cost_to_serve.compute(customers_table(), interactions_log(), CONFIG, window_years=1.0)


def lifetime(r, d=0.1, years=3):
    q = r / (1 + d)
    return sum(q ** t for t in range(years))


def test_lifetime_factor():
    assert cost_benefit.lifetime_factor(0.8, 0.1, 3) == pytest.approx(lifetime(0.8))
    assert cost_benefit.lifetime_factor(0.0, 0.1, 3) == 1.0
    # long horizons tend to the textbook multiplier (1 + d) / (1 + d - r)
    assert cost_benefit.lifetime_factor(0.8, 0.1, 500) == pytest.approx(1.1 / 0.3)
    assert cost_benefit.lifetime_factor(np.array([0.5, 0.8]), 0.1, 3) == pytest.approx(
        [lifetime(0.5), lifetime(0.8)])


def test_retention_estimate_and_override():
    estimate = cost_benefit.retention_by_segment(customers_table())
    # gold: A and B a year old or more, A bought in the last year; basic: none a year old,
    # so the whole base's 1/2
    assert estimate.to_dict() == {"gold": 0.5, "basic": 0.5}
    assert cost_benefit.retention_by_segment(customers_table(), CONFIG).to_dict() == {
        "gold": 0.8, "basic": 0.5}
    bare = customers_table().drop(columns=["recency_days", "tenure_days"])
    assert (cost_benefit.retention_by_segment(bare) == cost_benefit.DEFAULT_RETENTION).all()


def test_hand_computed_cost_benefit(cost):
    frame = cost_benefit.per_segment(customers_table(), cost, CONFIG, **ASSUMPTIONS)
    gold = frame.set_index("segment").loc["gold"]
    assert gold[["revenue", "margin", "cost_to_serve", "profit", "clv"]].tolist() == pytest.approx(
        [600, 300, 150.5, 149.5, 750])
    assert gold["profit_per_customer"] == pytest.approx(74.75)
    assert gold["cost_share_of_margin"] == pytest.approx(150.5 / 300)
    assert gold["return_on_relationship"] == pytest.approx(149.5 / 150.5)
    assert gold["clv_index"] == pytest.approx(375 / 195)
    assert gold["lifetime_factor"] == pytest.approx(lifetime(0.8))
    assert gold["main_type"] == "personal_assistance"
    assert gold["cheaper_type"] == "self_service"
    # 50 % of margin > 30 % and self-service is cheaper: move
    assert (gold["verdict"], gold["rule"]) == ("move_cheaper", 2)
    basic = frame.set_index("segment").loc["basic"]
    assert basic["profit_per_customer"] == pytest.approx(-6)
    assert basic["cost_horizon_per_customer"] == pytest.approx(16 * lifetime(0.5))
    # loses 6 a year and is worth 15 < 16 × 1.66: stop
    assert (basic["verdict"], basic["rule"]) == ("stop", 1)
    assert basic["net_value_per_customer"] == pytest.approx(15 - 16 * lifetime(0.5))


def test_thresholds_decide_invest_and_maintain(cost):
    loose = {"max_cost_share": 0.6, "invest_min_return": 2.0, "invest_min_clv_index": 1.0}
    frame = cost_benefit.per_segment(customers_table(), cost, CONFIG, thresholds=loose,
                                     **ASSUMPTIONS)
    assert frame.set_index("segment").loc["gold", "verdict"] == "maintain"
    frame = cost_benefit.per_segment(customers_table(), cost, CONFIG,
                                     thresholds={**loose, "invest_min_return": 0.9},
                                     **ASSUMPTIONS)
    assert frame.set_index("segment").loc["gold", ["verdict", "rule"]].tolist() == ["invest", 3]


def test_thresholds_come_from_client_yaml(cost):
    from conftest import MINIMAL_CONFIG

    section = {**CONFIG, "thresholds": {"max_cost_share": 0.6, "invest_min_return": 0.9}}
    config = ClientConfig.model_validate({**MINIMAL_CONFIG, "relationships": section,
                                          "assumptions": {"window_months": 12,
                                                          "discount_rate": 0.1,
                                                          "horizon_months": 36}})
    frame = cost_benefit.per_segment(customers_table(), cost, config)
    assert frame.set_index("segment").loc["gold", "verdict"] == "invest"


def test_no_cheaper_type_means_no_move():
    config = {**CONFIG, "current": {}}
    log = interactions_log().assign(relationship_type="automated_services")
    cost = cost_to_serve.compute(customers_table(), log, config, window_years=1.0)
    frame = cost_benefit.per_segment(customers_table(), cost, config, **ASSUMPTIONS)
    assert frame["main_type"].tolist() == ["automated_services"] * 2
    assert frame["cheaper_type"].isna().all()
    assert "move_cheaper" not in set(frame["verdict"])


def test_zero_margin_and_no_cost(cost):
    customers = customers_table().assign(margin_window=0.0, clv=0.0)
    empty = cost_to_serve.compute(customers, None, {})
    frame = cost_benefit.per_segment(customers, empty, {}, **ASSUMPTIONS)
    assert frame["cost_share_of_margin"].isna().all()
    assert frame["return_on_relationship"].isna().all()
    assert frame["clv_index"].isna().all()
    assert (frame["verdict"] == "maintain").all()
    frame = cost_benefit.per_segment(customers, cost, CONFIG, **ASSUMPTIONS)
    assert (frame["verdict"] == "stop").all()


def test_segment_totals_equal_customer_sums(cost):
    frame = cost_benefit.per_segment(customers_table(), cost, CONFIG, **ASSUMPTIONS)
    profit = cost_to_serve.customer_profit(customers_table(), cost)
    assert frame["profit"].sum() == pytest.approx(profit["profit"].sum())
    assert frame["cost_to_serve"].sum() == pytest.approx(cost.total)


def test_reasons_carry_the_figures(cost):
    frame = cost_benefit.per_segment(customers_table(), cost, CONFIG, **ASSUMPTIONS)
    fmt = Formatter("en", "EUR")
    rows = frame.set_index("segment")
    move = cost_benefit.reason(rows.loc["gold"], fmt)
    assert "50%" in move and "30%" in move and "Self-service" in move
    stop = cost_benefit.reason(rows.loc["basic"], fmt)
    assert "€6" in stop and "€15" in stop
    spanish = cost_benefit.reason(rows.loc["gold"], Formatter("es", "EUR"))
    assert "Autoservicio" in spanish and "50\xa0%" in spanish


@pytest.mark.parametrize("lang", LANGUAGES)
def test_charts_and_verdict_table_in_both_languages(lang, cost):
    fmt = Formatter(lang, "USD")
    frame = cost_benefit.per_segment(customers_table(), cost, CONFIG, **ASSUMPTIONS)
    whale = cost_to_serve.whale_curve(customers_table(), cost)
    figures = [charts.whale_curve(whale, fmt), charts.segment_bars(frame, fmt),
               charts.segment_bars(frame, fmt, per_customer=False)]
    for fig in figures:
        fig.to_json()
        assert fig.layout.title.text and fig.layout.xaxis.title.text
        assert fig.layout.yaxis.title.text
    assert fmt.currency_symbol() in figures[1].layout.yaxis.title.text
    html = charts.verdict_table(frame, fmt).to_html()
    assert "<table" in html and ("Stop serving" if lang == "en" else "Dejar de atender") in html


def test_whale_chart_is_thinned_for_large_bases():
    n = 20000
    rng = np.random.default_rng(0)
    customers = pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "segment": "all",
                              "margin_window": rng.normal(10, 20, n), "clv": 1.0})
    cost = cost_to_serve.compute(customers, None, {})
    fig = charts.whale_curve(cost_to_serve.whale_curve(customers, cost), Formatter("en"))
    assert len(fig.data[0].x) <= 1500 + 4
    assert not math.isnan(fig.data[1].y[0])

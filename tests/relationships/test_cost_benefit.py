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
from crmkit.settings.relationships import VerdictThresholds

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


def test_retention_is_the_models_when_the_table_has_it():
    model = case_customers(with_model=True)
    # Σ P(alive) × retention / Σ P(alive): gold (0.15 + 0.08) / 0.5, basic (0.72 + 0.36) / 1.5
    assert cost_benefit.retention_by_segment(model).to_dict() == pytest.approx(
        {"gold": 0.46, "basic": 0.72})
    # client.yaml still overrides the model
    assert cost_benefit.retention_by_segment(model, {"retention": {"gold": 0.8}}).to_dict() == (
        pytest.approx({"gold": 0.8, "basic": 0.72}))
    # a table without the retention column keeps the repeat-purchase proxy: of A and B (a year
    # old or more) B bought within the year; basic has nobody a year old, so the base's 1/2
    proxy = cost_benefit.retention_by_segment(model.drop(columns=["retention"]))
    assert proxy.to_dict() == {"gold": 0.5, "basic": 0.5}
    # a segment whose customers are all certainly gone takes the base's figure
    gone = model.assign(probability_alive=[0.0, 0.0, 0.9, 0.6])
    assert cost_benefit.retention_by_segment(gone)["gold"] == pytest.approx(0.72)


def test_hand_computed_cost_benefit(cost):
    frame = cost_benefit.per_segment(customers_table(), cost, CONFIG, **ASSUMPTIONS)
    gold = frame.set_index("segment").loc["gold"]
    assert gold[["revenue", "margin", "variable_cost", "fixed_cost", "cost_to_serve", "profit",
                 "contribution", "clv"]].tolist() == pytest.approx(
        [600, 300, 50.5, 100, 150.5, 149.5, 249.5, 750])
    assert gold["imputed_share"] == 0
    assert gold["profit_per_customer"] == pytest.approx(74.75)
    assert gold["contribution_per_customer"] == pytest.approx(124.75)
    # only the variable cost counts: self-service's fixed 100 is the platform's, not gold's
    assert gold["cost_share_of_margin"] == pytest.approx(50.5 / 300)
    assert gold["return_on_relationship"] == pytest.approx(249.5 / 50.5)
    assert gold["clv_index"] == pytest.approx(375 / 195)
    assert gold["lifetime_factor"] == pytest.approx(lifetime(0.8))
    assert gold["cost_horizon_per_customer"] == pytest.approx(25.25 * lifetime(0.8))
    assert gold["main_type"] == "personal_assistance"
    assert gold["cheaper_type"] == "self_service"
    # 17 % of margin < 30 %; value 1.9 × the average and a return of 4.9: invest
    assert (gold["verdict"], gold["rule"]) == ("invest", 4)
    assert gold["impact"] == pytest.approx(2 * (375 - 25.25 * lifetime(0.8)))
    basic = frame.set_index("segment").loc["basic"]
    assert basic["variable_cost"] == pytest.approx(22)
    assert basic["imputed_share"] == pytest.approx(12 / 22)
    assert basic["contribution_per_customer"] == pytest.approx(-1)
    assert basic["cost_horizon_per_customer"] == pytest.approx(11 * lifetime(0.5))
    assert basic["net_value_per_customer"] == pytest.approx(15 - 11 * lifetime(0.5))
    # loses 1 a year and is worth 15 < 11 × 1.66, but only with the imputed automated e-mails:
    # on its logged 5 a customer it makes 5. Not stop; no cheaper type below automated: maintain
    assert basic["logged_cost_per_customer"] == pytest.approx(5)
    assert (basic["verdict"], basic["rule"], basic["stop_unproven"]) == ("maintain", 5, True)


def test_stop_needs_logged_evidence():
    customers = customers_table().assign(margin_window=[200.0, 100.0, 0.0, 0.0],
                                         clv=[500.0, 250.0, 0.0, 0.0])
    logged_only = {**CONFIG, "current": {}}
    cost = cost_to_serve.compute(customers, interactions_log(), logged_only, window_years=1.0)
    frame = cost_benefit.per_segment(customers, cost, logged_only, **ASSUMPTIONS)
    basic = frame.set_index("segment").loc["basic"]
    # C's logged 10 a year, over two customers: −5 a year each, worth 0 < 5 × L(0.5)
    assert (basic["verdict"], basic["rule"], basic["stop_unproven"]) == ("stop", 2, False)
    assert basic["impact"] == pytest.approx(2 * 5 * lifetime(0.5))
    # with every cost imputed (no log), the same loss is not evidence enough
    cost = cost_to_serve.compute(customers, None, CONFIG, window_years=1.0)
    frame = cost_benefit.per_segment(customers, cost, CONFIG, **ASSUMPTIONS)
    basic = frame.set_index("segment").loc["basic"]
    assert basic["imputed_share"] == 1
    assert basic["verdict"] != "stop" and basic["stop_unproven"]


def test_thresholds_decide_invest_maintain_and_move(cost):
    loose = {"max_cost_share": 0.6, "invest_min_return": 5.0, "invest_min_clv_index": 1.0}
    frame = cost_benefit.per_segment(customers_table(), cost, CONFIG, thresholds=loose,
                                     **ASSUMPTIONS)
    assert frame.set_index("segment").loc["gold", ["verdict", "rule"]].tolist() == [
        "maintain", 5]
    frame = cost_benefit.per_segment(customers_table(), cost, CONFIG,
                                     thresholds={**loose, "max_cost_share": 0.15},
                                     **ASSUMPTIONS)
    gold = frame.set_index("segment").loc["gold"]
    assert gold[["verdict", "rule"]].tolist() == ["move_cheaper", 3]
    # A's two personal-assistance contacts (50 a year) become self-service ones of 4 min at 0.1
    assert gold["move_saving"] == pytest.approx(50 - 2 * 4 * 0.1)
    assert gold["impact"] == pytest.approx(49.2 * lifetime(0.8))


def test_retain_wins_back_a_valuable_lapsing_segment():
    customers = case_customers(with_model=True)
    config = {k: v for k, v in CASE_CONFIG.items()}
    cost = cost_to_serve.compute(customers, interactions_log(), config, window_years=1.0)
    strict = {"max_cost_share": 0.15}  # would move gold to self-service
    grow = cost_benefit.per_segment(customers, cost, config, objective="grow",
                                    thresholds=strict, **ASSUMPTIONS).set_index("segment")
    assert grow.loc["gold", "verdict"] == "move_cheaper"
    frame = cost_benefit.per_segment(customers, cost, config, objective="retain",
                                     thresholds=strict, **ASSUMPTIONS)
    gold = frame.set_index("segment").loc["gold"]
    # 365.25 a year each against the base's 192.625: 1.9 × the average; both lapsed (> 180 days)
    assert gold["past_value_per_customer"] == pytest.approx(365.25)
    assert gold["past_value_index"] == pytest.approx(365.25 / 192.625)
    assert gold["lapsed_share"] == 1
    assert (gold["verdict"], gold["rule"]) == ("win_back", 1)
    # 10 % of 2 customers back at 365.25 − 25.25 a year, at the base's retention (0.46 + 0.72) / 2
    assert gold["impact"] == pytest.approx(0.1 * 2 * 340 * lifetime(0.59))
    basic = frame.set_index("segment").loc["basic"]
    assert basic["past_value_index"] == pytest.approx(20 / 192.625)
    assert basic["verdict"] != "win_back"
    assert (frame["objective"] == "retain").all()


def test_objective_comes_from_client_yaml(cost):
    from conftest import MINIMAL_CONFIG

    customers = case_customers(with_model=True)
    config = ClientConfig.model_validate({**MINIMAL_CONFIG, "objective": "retain",
                                          "relationships": CASE_CONFIG})
    frame = cost_benefit.per_segment(customers, cost, config, **ASSUMPTIONS)
    assert frame.set_index("segment").loc["gold", "verdict"] == "win_back"
    # a longer lapse makes nobody lapsed: the rule does not apply
    frame = cost_benefit.per_segment(customers, cost, config, lapse_days=500, **ASSUMPTIONS)
    assert frame.set_index("segment").loc["gold", "verdict"] != "win_back"


def test_thresholds_come_from_client_yaml(cost):
    from conftest import MINIMAL_CONFIG

    section = {**CONFIG, "thresholds": {"max_cost_share": 0.15, "invest_min_return": 0.9}}
    config = ClientConfig.model_validate({**MINIMAL_CONFIG, "relationships": section,
                                          "assumptions": {"window_months": 12,
                                                          "discount_rate": 0.1,
                                                          "horizon_months": 36}})
    frame = cost_benefit.per_segment(customers_table(), cost, config)
    assert frame.set_index("segment").loc["gold", "verdict"] == "move_cheaper"


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
    # no margin, no value: the logged contacts alone make both segments lose money
    assert (frame["verdict"] == "stop").all()


def test_segment_totals_equal_customer_sums(cost):
    frame = cost_benefit.per_segment(customers_table(), cost, CONFIG, **ASSUMPTIONS)
    profit = cost_to_serve.customer_profit(customers_table(), cost)
    assert frame["profit"].sum() == pytest.approx(profit["profit"].sum())
    assert frame["cost_to_serve"].sum() == pytest.approx(cost.total)


def test_reasons_carry_the_rule_the_figures_and_the_impact(cost):
    frame = cost_benefit.per_segment(customers_table(), cost, CONFIG,
                                     thresholds={"max_cost_share": 0.15}, **ASSUMPTIONS)
    fmt = Formatter("en", "EUR")
    rows = frame.set_index("segment")
    move = cost_benefit.reason(rows.loc["gold"], fmt, VerdictThresholds(max_cost_share=0.15))
    assert "Rule 3" in move and "17%" in move and "15%" in move and "Self-service" in move
    assert "€49 a year" in move and f"€{49.2 * lifetime(0.8):,.0f} of variable cost" in move
    maintain = cost_benefit.reason(rows.loc["basic"], fmt)
    assert "Rule 5" in maintain and "55%" in maintain and "imputed" in maintain
    spanish = cost_benefit.reason(rows.loc["gold"], Formatter("es", "EUR"),
                                  VerdictThresholds(max_cost_share=0.15))
    assert "Autoservicio" in spanish and "17\xa0%" in spanish and "3 años" in spanish
    customers = case_customers(with_model=True)
    won = cost_benefit.per_segment(customers, cost, CASE_CONFIG, objective="retain",
                                   **ASSUMPTIONS).set_index("segment").loc["gold"]
    text = cost_benefit.reason(won, fmt)
    assert "Rule 1" in text and "€365" in text and "100%" in text and "180 days" in text
    assert f"€{0.2 * 340 * lifetime(0.59):,.0f}" in text


def test_figures_count_every_verdict(cost):
    frame = cost_benefit.per_segment(case_customers(with_model=True), cost, CASE_CONFIG,
                                     objective="retain", **ASSUMPTIONS)
    found = cost_benefit.figures(frame, Formatter("en", "EUR"))
    assert set(found["counts"]) == set(cost_benefit.VERDICTS) >= {"win_back"}
    assert found["counts"]["win_back"] == 1 and found["names"]["win_back"] == ["Gold"]
    assert found["objective"] == "retain" and found["horizon_years"] == 3
    assert found["totals"]["variable_cost"] == pytest.approx(72.5)
    assert found["totals"]["fixed_cost"] == pytest.approx(110)
    assert found["totals"]["imputed_share"] == pytest.approx(12 / 72.5)
    assert found["impact"]["win_back"] == pytest.approx(frame.loc[0, "impact"])


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
    assert "<table" in html and ("Maintain" if lang == "en" else "Mantener") in html


def test_whale_chart_is_thinned_for_large_bases():
    n = 20000
    rng = np.random.default_rng(0)
    customers = pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "segment": "all",
                              "margin_window": rng.normal(10, 20, n), "clv": 1.0})
    cost = cost_to_serve.compute(customers, None, {})
    fig = charts.whale_curve(cost_to_serve.whale_curve(customers, cost), Formatter("en"))
    assert len(fig.data[0].x) <= 1500 + 4
    assert not math.isnan(fig.data[1].y[0])

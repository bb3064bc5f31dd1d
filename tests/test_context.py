"""Context analysis: indicators on a hand-computable customer base, the objective's rules, SWOT."""

import datetime as dt

import pandas as pd
import pytest

from crmkit.analysis import context
from crmkit.core.i18n import Formatter
from crmkit.settings.client import ClientConfig

AS_OF = dt.date(2026, 6, 30)


@pytest.fixture
def base():
    customers = pd.DataFrame({"customer_id": list("ABCDE")})
    transactions = pd.DataFrame({
        "customer_id": ["A", "A", "A", "B", "C", "D", "D", "C"],
        "date": pd.to_datetime(["2024-08-01", "2025-08-01", "2026-01-10", "2024-09-01",
                                "2026-03-01", "2025-01-01", "2025-01-01", "2026-07-15"]),
        "amount": [100.0, 50.0, 50.0, 200.0, 30.0, 20.0, 10.0, 999.0],
    })
    return customers, transactions


def config(**overrides) -> ClientConfig:
    cap = {"score": 3, "note": ""}
    factor = {"impact": "medium", "time_frame": "short", "direction": "threat"}
    raw = {
        "name": "Test", "context": {
            "internal": {k: dict(cap) for k in context.CAPABILITIES},
            "external": {"competitors": dict(factor), "regulation": dict(factor),
                         "disruptive_technology": dict(factor, impact="low"),
                         "industry_maturity": dict(factor, stage="maturity")}}}
    for path, value in overrides.items():
        node = raw
        *parents, last = path.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    return ClientConfig.model_validate(raw)


def test_indicators_match_a_hand_count(base):
    customers, transactions = base
    ind = context.indicators(customers, transactions, AS_OF, window_months=12, lapse_days=180)
    assert (ind.customers, ind.buyers, ind.active_customers, ind.new_customers) == (5, 4, 2, 1)
    assert ind.new_customer_rate == 0.5
    # A bought on three days; D's two lines on one day are one purchase.
    assert ind.repeat_rate == 0.25
    # A, B and D bought in the previous year; B and D did not come back.
    assert ind.lapse_rate == pytest.approx(2 / 3)
    assert ind.lapsed_share == 0.5
    # The after-as_of purchase of C (999) is ignored: top buyer 200 of 460.
    assert ind.top20_revenue_share == pytest.approx(200 / 460)
    assert ind.revenue_window == 130 and ind.revenue_previous_window == 330
    assert ind.revenue_growth == pytest.approx(-200 / 330)
    assert ind.average_order_value == pytest.approx(130 / 3)
    assert ind.orders_per_active_customer == 1.5
    assert ind.satisfaction_top_two_box is None


def test_satisfaction_top_two_box_counts_four_and_five():
    customers = pd.DataFrame({"customer_id": ["A"]})
    transactions = pd.DataFrame({"customer_id": ["A"], "date": pd.to_datetime(["2026-01-01"]),
                                 "amount": [10.0]})
    survey = pd.DataFrame({"customer_id": list("ABCD"), "satisfaction": [5, 4, 3, 1]})
    ind = context.indicators(customers, transactions, AS_OF, survey=survey)
    assert ind.satisfaction_top_two_box == 0.5


def test_monthly_activity_splits_new_and_returning(base):
    customers, transactions = base
    monthly = context.monthly_activity(transactions, AS_OF)
    assert monthly.loc["2025-01-01", "revenue"] == 30
    assert monthly.loc["2026-01-01", "returning_customers"] == 1
    assert monthly.loc["2026-03-01", "new_customers"] == 1
    assert monthly["new_customers"].sum() == 4
    assert pd.Timestamp("2026-07-01") not in monthly.index


def test_objective_retains_a_base_that_leaks(base):
    customers, transactions = base
    fmt = Formatter("en", "EUR")
    ind = context.indicators(customers, transactions, AS_OF)
    rec = context.recommend_objective(config(), ind, "en", fmt)
    # maturity +2 retain +1 grow; competitor threat (medium) +1 retain; lapse 67 % +2 retain;
    # repeat 25 % (not < 25 %): nothing; new 50 % > 40 % +1 retain; falling revenue +1 retain.
    assert rec.points == {"attract": 0, "retain": 7, "grow": 1}
    assert rec.recommended == rec.chosen == "retain" and not rec.overridden
    assert "67%" in " ".join(rec.evidence["finding"])


def test_a_young_industry_with_few_new_customers_points_to_attract():
    customers = pd.DataFrame({"customer_id": list("AB")})
    transactions = pd.DataFrame({
        "customer_id": ["A", "A", "B", "B"],
        "date": pd.to_datetime(["2024-01-05", "2025-12-01", "2024-02-01", "2026-02-01"]),
        "amount": [10.0, 10.0, 10.0, 10.0]})
    ind = context.indicators(customers, transactions, AS_OF)
    cfg = config(**{"context.external.industry_maturity.stage": "growth",
                    "context.external.competitors.direction": "opportunity"})
    rec = context.recommend_objective(cfg, ind, "es", Formatter("es", "EUR"))
    assert rec.recommended == "attract"
    assert rec.points["attract"] == 2 + 1 + 2


def test_the_consultant_can_override_the_objective(base):
    customers, transactions = base
    ind = context.indicators(customers, transactions, AS_OF)
    rec = context.recommend_objective(config(objective="grow"), ind, "en",
                                      Formatter("en", "EUR"))
    assert rec.recommended == "retain" and rec.chosen == "grow" and rec.overridden


def test_ties_go_to_retention():
    ind = context.Indicators(
        as_of=AS_OF, window_months=12, customers=10, buyers=10, active_customers=8,
        new_customers=4, new_customer_rate=0.5, repeat_rate=0.3, lapse_rate=0.4,
        lapsed_share=0.2, top20_revenue_share=0.2, revenue_window=1.0,
        revenue_previous_window=1.0, revenue_growth=0.0, average_order_value=1.0,
        orders_per_active_customer=1.0, satisfaction_top_two_box=None)
    cfg = config(**{"context.external.competitors.direction": "opportunity",
                    "context.external.competitors.impact": "low",
                    "context.external.industry_maturity.stage": "growth"})
    rec = context.recommend_objective(cfg, ind, "en", Formatter("en", "EUR"))
    # growth stage +2 and competitors' opportunity +1 attract; lapse 40 % +2 and new 50 % +1 retain
    assert rec.points == {"attract": 3, "retain": 3, "grow": 0}
    assert rec.recommended == "retain"


def test_external_weights_discount_distant_factors_and_sign_threats():
    cfg = config(**{"context.external.regulation.impact": "high",
                    "context.external.regulation.time_frame": "long",
                    "context.external.regulation.direction": "opportunity"})
    factors = context.external_factors(cfg, "en").set_index("factor")
    assert factors.loc["regulation", "weight"] == 1.5
    assert factors.loc["competitors", "weight"] == -2.0


def test_swot_sorts_judgements_into_quadrants(base):
    customers, transactions = base
    cfg = config(**{"context.internal.people.score": 5, "context.internal.people.note": "keen",
                    "context.internal.financial.score": 1})
    ind = context.indicators(customers, transactions, AS_OF)
    quadrants = context.swot(cfg, ind, "en", Formatter("en", "EUR"))
    assert quadrants["strengths"][0] == "People: keen"
    assert quadrants["weaknesses"][0] == "Financial"
    assert any("67%" in w for w in quadrants["weaknesses"])
    assert len(quadrants["threats"]) == 4 and quadrants["opportunities"] == []
